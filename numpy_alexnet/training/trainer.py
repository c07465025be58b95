"""The training loop: epochs of shuffled batches, validation, schedules, checkpoints.

    trainer = Trainer(net, MomentumSGD(net, lr=0.01), train_batches,
                      val_batches=val_batches, schedule=PaperSchedule(),
                      out_dir="runs/x", checkpoint_every=100)
    history = trainer.fit(epochs=90)          # or trainer.resume(); trainer.fit(90)

What is measured (one row per epoch, in ``metrics.csv`` and ``metrics.json``):

* ``train_loss``, ``train_error``: the mean loss and top-1 error over the
  epoch's training batches *as they were trained on* (dropout on, augmented
  inputs, weights changing during the epoch).  This is the running training
  error of cuda-convnet and of the paper's Figure 1.
* ``val_loss``, ``val_top1``, ``val_top5``: on the validation batches, with
  the network in test mode, once at the end of the epoch.

Schedules (section 5): :class:`PaperSchedule` divides the learning rate by 10
when the validation error stops improving, three times at most;
:class:`FixedSchedule` keeps it (optionally dividing at given epochs).

The guard against divergence: a loss that is NaN or infinite, or more than
``divergence_factor`` (10) times its recent level (the median of the last 20
steps' losses, or the loss of a uniform guess, ln K, if that is higher),
stops the run *before* that batch's update, with :class:`NonFiniteLossError`
naming the step.  Before any checkpoint is written, the weights must be
finite and the loss of the last batch at those weights in the same range,
so the last checkpoint is one that a lower rate (``--new-lr``) can go on
from; a checkpoint is never written after the guard trips.  The factor is
this project's choice (the paper's runs were watched by hand).
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..data.metrics import softmax, topk_errors
from ..files import atomic_write_text
from ..layers import SoftmaxCrossEntropy
from ..progress import progress_bar
from .checkpoint import load_checkpoint, restore_due_best, save_checkpoint


class NonFiniteLossError(RuntimeError):
    """The loss became NaN, infinite or far above its recent level (or a weight
    non-finite); the run was stopped."""

    def __init__(self, message: str, step: int, epoch: int, batch: int):
        super().__init__(message)
        self.step, self.epoch, self.batch = step, epoch, batch


# --------------------------------------------------------------------------- #
# Learning-rate schedules
# --------------------------------------------------------------------------- #
class FixedSchedule:
    """A constant learning rate, divided by ``factor`` at each epoch in ``milestones``."""

    name = "fixed"

    def __init__(self, milestones=(), factor: float = 10.0):
        self.milestones = sorted(int(m) for m in milestones)
        self.factor = float(factor)

    def step(self, epoch: int, lr: float, metric: float | None) -> float:
        """The learning rate for the epoch after ``epoch`` (1-based, just finished)."""
        return lr / self.factor if epoch in self.milestones else lr

    def state_dict(self) -> dict:
        return {"name": self.name, "milestones": self.milestones, "factor": self.factor}

    def load_state_dict(self, state: dict) -> None:
        self.milestones, self.factor = list(state["milestones"]), float(state["factor"])


class PaperSchedule:
    """Section 5: divide by 10 "when the validation error rate stopped improving".

    After each epoch: if ``metric`` (validation top-1 error; the training error
    when there is no validation set) is not below the best so far by more than
    ``min_delta`` for ``patience`` epochs in a row, divide the rate by
    ``factor``, at most ``max_reductions`` (3) times.  The paper gives no
    patience; 1 is the literal reading and the default here.
    """

    name = "paper"

    def __init__(self, factor: float = 10.0, patience: int = 1, max_reductions: int = 3,
                 min_delta: float = 0.0):
        self.factor, self.patience = float(factor), int(patience)
        self.max_reductions, self.min_delta = int(max_reductions), float(min_delta)
        self.best = math.inf
        self.bad_epochs = 0
        self.reductions = 0

    def step(self, epoch: int, lr: float, metric: float | None) -> float:
        if metric is None:
            return lr
        if metric < self.best - self.min_delta:
            self.best, self.bad_epochs = float(metric), 0
            return lr
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.reductions < self.max_reductions:
            self.reductions += 1
            self.bad_epochs = 0
            return lr / self.factor
        return lr

    def state_dict(self) -> dict:
        return {"name": self.name, "factor": self.factor, "patience": self.patience,
                "max_reductions": self.max_reductions, "min_delta": self.min_delta,
                "best": None if math.isinf(self.best) else self.best,
                "bad_epochs": self.bad_epochs, "reductions": self.reductions}

    def load_state_dict(self, state: dict) -> None:
        self.factor, self.patience = float(state["factor"]), int(state["patience"])
        self.max_reductions, self.min_delta = int(state["max_reductions"]), float(state["min_delta"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.bad_epochs, self.reductions = int(state["bad_epochs"]), int(state["reductions"])


SCHEDULES = {"paper": PaperSchedule, "fixed": FixedSchedule}


# --------------------------------------------------------------------------- #
# Evaluation
# --------------------------------------------------------------------------- #
def evaluate(net, batches, chunk: int | None = None, ks=(1, 5), stop=None) -> dict | None:
    """Loss and top-k errors of ``net`` in test mode over ``batches`` of (x, y).

    x may be (B, C, H, W) or the ten crops (10, B, C, H, W) of
    ``EvalTransform(mode='ten')``: then the softmax outputs of the ten are
    averaged (section 4.1).  ``chunk`` bounds how many images go through the
    network at once (ten crops multiply the batch by 10).  ``stop``: a callable
    asked before each batch; when it returns true, None is returned at once.
    """
    total, loss_sum, wrong = 0, 0.0, {k: 0.0 for k in ks}
    for x, y in batches:
        if stop is not None and stop():
            return None
        y = to_numpy(y)
        ten = x.ndim == 5
        flat = x.reshape((-1,) + tuple(x.shape[2:])) if ten else x   # (10, B, ...) -> (10B, ...)
        step = chunk or flat.shape[0]
        logits = np.concatenate([to_numpy(net.forward(flat[i:i + step], train=False))
                                 for i in range(0, flat.shape[0], step)])
        logits = logits.astype(np.float64)
        if ten:
            probs = softmax(logits).reshape(10, -1, logits.shape[1]).mean(axis=0)  # (10B, K) -> (B, K)
        else:
            probs = softmax(logits)
        n = len(y)
        loss_sum += float(-np.log(np.maximum(probs[np.arange(n), y], 1e-300)).sum())
        for k, e in topk_errors(probs, y, ks).items():
            wrong[k] += e * n
        total += n
    if total == 0:
        raise ValueError("evaluate: no batches")
    out = {"loss": loss_sum / total}
    out.update({f"top{k}": wrong[k] / total for k in ks if k <= probs.shape[1]})
    return out


# --------------------------------------------------------------------------- #
# Progress
# --------------------------------------------------------------------------- #
def _bar(total, initial, desc, enabled):
    return progress_bar(enabled, total=total, initial=initial, desc=desc, unit="batch",
                        dynamic_ncols=True)


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


DIVERGENCE_FACTOR = 10.0     # a loss this many times its recent level stops the run
RECENT_STEPS = 20            # the steps whose median loss is the recent level

METRIC_FIELDS = ("epoch", "step", "lr", "train_loss", "train_error", "val_loss", "val_top1",
                 "val_top5", "seconds", "images_per_s")


# --------------------------------------------------------------------------- #
# The trainer
# --------------------------------------------------------------------------- #
class Trainer:
    """Trains ``net`` with ``optimizer`` on ``train_batches`` (a BatchIterator).

    val_batches: a callable returning an iterable of (x, y) (or an object with
        ``epoch_iter``/``__iter__``), evaluated after every epoch; None skips it.
    schedule: PaperSchedule() (default) or FixedSchedule().
    out_dir: where ``checkpoints/latest.npz``, ``checkpoints/best.npz``,
        ``metrics.csv``, ``metrics.json``, ``steps.csv`` and ``curves.png`` go;
        None writes nothing.
    checkpoint_every: also write ``latest`` every this many steps (0: only at
        the end of each epoch).
    max_steps: stop (with a checkpoint) after this many steps in all.
    max_seconds: stop (with a checkpoint) at the first step boundary after this
        many seconds of this call to ``fit``.
    target_error / stop_at_target: stop at the end of the first epoch whose
        training error is at or below the target (for the Figure-1 study).
    progress: a tqdm bar per epoch; quiet: no per-epoch lines either.
    extra: arrays saved into every checkpoint (e.g. the mean image).
    divergence_factor: the guard's factor (see the module's docstring); None
        checks finiteness only.

    Everything after ``train_batches`` is keyword-only.  ``request_stop(reason)``
    (what the command line's signal handler calls) stops at the next step
    boundary, or ends the epoch's validation early, with a checkpoint;
    ``set_lr(lr, reason)`` changes the rate of a resumed run and records it in
    ``lr_changes`` (checkpoints and ``metrics.json``).
    """

    def __init__(self, net, optimizer, train_batches, *, val_batches=None, schedule=None,
                 out_dir=None, checkpoint_every: int = 0, max_steps: int | None = None,
                 target_error: float | None = None, stop_at_target: bool = False,
                 progress: bool = True, quiet: bool = False, config: dict | None = None,
                 extra: dict | None = None, eval_chunk: int | None = None, plot: bool = True,
                 max_seconds: float | None = None, log=None,
                 divergence_factor: float | None = DIVERGENCE_FACTOR):
        self.net, self.optimizer, self.train_batches = net, optimizer, train_batches
        self.val_batches = val_batches
        self.schedule = schedule if schedule is not None else PaperSchedule()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.checkpoint_every, self.max_steps = int(checkpoint_every or 0), max_steps
        self.max_seconds = max_seconds
        self._deadline = None
        self.target_error, self.stop_at_target = target_error, stop_at_target
        self.progress, self.quiet = progress and not quiet, quiet
        self.config = dict(config or {})
        self.extra = dict(extra or {})
        self.eval_chunk, self.plot = eval_chunk, plot
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.loss_fn = SoftmaxCrossEntropy(name="loss")
        self.divergence_factor = divergence_factor
        self._last_batch = None                    # (x, y) last trained on: the save check
        self._chance_loss = 0.0                    # ln K, the loss of a uniform guess
        # Position: the epoch in progress (0-based) and its next batch.
        self.epoch, self.batch, self.step = 0, 0, 0
        self.running = {"loss": 0.0, "wrong": 0, "seen": 0, "seconds": 0.0}
        self.history: list[dict] = []
        self.step_log: list[dict] = []
        self.best_metric: float | None = None
        self.best_step: int | None = None          # the step of checkpoints/best.npz
        self.stopped: str | None = None
        self.stop_requested: str | None = None     # set by request_stop (a signal handler)
        self.lr_changes: list[dict] = []           # rates set by hand on resume (set_lr)

    # -- paths -------------------------------------------------------------------
    @property
    def latest_path(self) -> Path | None:
        return self.out_dir / "checkpoints" / "latest.npz" if self.out_dir else None

    @property
    def best_path(self) -> Path | None:
        return self.out_dir / "checkpoints" / "best.npz" if self.out_dir else None

    # -- state -------------------------------------------------------------------
    def meta(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step,
                "running": dict(self.running), "history": self.history,
                "best_metric": self.best_metric, "best_step": self.best_step,
                "schedule": self.schedule.state_dict(),
                "config": self.config, "lr_changes": self.lr_changes}

    def request_stop(self, reason: str) -> None:
        """Stop after the step in progress, with a checkpoint (safe to call from a signal handler)."""
        self.stop_requested = reason

    def set_lr(self, lr: float, reason: str) -> None:
        """Go on with learning rate ``lr`` from here (e.g. lower after a non-finite stop).

        The velocities are scaled by the same factor: section 5's velocity holds
        the rate (v <- 0.9 v - lr dL/dw), so kept as it is it would go on making
        steps of the old rate for about 1 / (1 - momentum) steps, the very steps
        that made a run diverge.  Recorded in ``lr_changes`` (checkpoints and
        metrics.json): step, epoch, batch, the rate before and after, and ``reason``.
        """
        self.lr_changes.append({"step": self.step, "epoch": self.epoch + 1, "batch": self.batch,
                                "from": self.optimizer.lr, "to": float(lr), "reason": reason})
        for v in self.optimizer.velocity.values():
            v *= float(lr) / self.optimizer.lr
        self.optimizer.lr = float(lr)

    def save(self, path) -> Path:
        """Write a checkpoint of the current position (weights must be finite)."""
        self._check_weights_finite()
        return save_checkpoint(path, self.net, self.optimizer, self.meta(), self.extra)

    def resume(self, path=None) -> dict:
        """Load a checkpoint (default ``latest``) and continue from its position.

        A ``best.npz`` that this position owes (a write that failed after
        ``latest``'s) is written first.
        """
        path = Path(path) if path is not None else self.latest_path
        ck = load_checkpoint(path, self.net, self.optimizer)
        m = ck["meta"]
        self.epoch, self.batch, self.step = int(m["epoch"]), int(m["batch"]), int(m["step"])
        self.running = dict(m["running"])
        self.history = list(m["history"])
        self.best_metric = m["best_metric"]
        self.best_step = m.get("best_step")
        self.lr_changes = list(m.get("lr_changes", []))
        if m["schedule"]["name"] != self.schedule.name:
            raise ValueError(f"{path}: the checkpoint's schedule is {m['schedule']['name']!r}, "
                             f"this run's is {self.schedule.name!r}")
        self.schedule.load_state_dict(m["schedule"])
        self._trim_step_log()
        if self.out_dir is not None:
            restore_due_best(path, self.best_path)
        return ck

    # -- the loop --------------------------------------------------------------------
    def fit(self, epochs: int) -> list[dict]:
        """Train until ``epochs`` epochs are complete (counting those already done)."""
        self.stopped = None
        t_start = time.perf_counter()
        self._deadline = None if self.max_seconds is None else t_start + self.max_seconds
        steps_at_start = self.step
        while self.epoch < epochs:
            if self.max_steps is not None and self.step >= self.max_steps:
                self.stopped = f"max_steps={self.max_steps}"
                break
            if not self._run_epoch(epochs, t_start, steps_at_start):
                break                       # max_steps reached mid-epoch
            if self.stopped:
                break
        self._write_metrics()
        return self.history

    def _run_epoch(self, epochs: int, t_start: float, steps_at_start: int) -> bool:
        e, n_batches = self.epoch, len(self.train_batches)
        bar = _bar(n_batches, self.batch, f"epoch {e + 1}/{epochs}", self.progress)
        t0 = time.perf_counter()
        seconds_before = self.running["seconds"]
        try:
            for x, y in self.train_batches.epoch_iter(e, self.batch):
                if self.max_steps is not None and self.step >= self.max_steps:
                    self.stopped = f"max_steps={self.max_steps}"
                    break
                if self._deadline is not None and time.perf_counter() >= self._deadline:
                    self.stopped = f"time limit {self.max_seconds:g} s"
                    break
                if self.stop_requested:
                    self.stopped = self.stop_requested
                    break
                loss, wrong = self.train_step(x, y)
                n = int(len(y))
                self.batch += 1
                self.step += 1
                r = self.running
                r["loss"] += loss * n
                r["wrong"] += wrong
                r["seen"] += n
                r["seconds"] = seconds_before + time.perf_counter() - t0
                self.step_log.append({"step": self.step, "epoch": e + 1, "batch": self.batch,
                                      "lr": self.optimizer.lr, "loss": loss, "error": wrong / n})
                bar.update(1)
                bar.set_postfix_str(f"loss {r['loss'] / r['seen']:.4f} err {r['wrong'] / r['seen']:.3f} "
                                    f"{r['seen'] / max(r['seconds'], 1e-9):.0f} img/s")
                if self.checkpoint_every and self.step % self.checkpoint_every == 0 \
                        and self.batch < n_batches:
                    self._save_latest()
        finally:
            bar.close()
        if self.batch < n_batches:          # stopped by max_steps or the time limit
            self._save_latest()
            self._write_steps()
            if not self.quiet:
                r = self.running
                self.log(f"stopped at step {self.step} ({self.stopped}), epoch {e + 1} batch "
                         f"{self.batch}/{n_batches}: running loss {r['loss'] / max(r['seen'], 1):.4f}, "
                         f"error {r['wrong'] / max(r['seen'], 1):.4f}")
            return False
        self._end_epoch(epochs, t_start, steps_at_start)
        return True

    def train_step(self, x, y) -> tuple[float, int]:
        """Forward, loss, backward, update on one batch: (loss, number wrong)."""
        logits = self.net.forward(x, train=True)
        loss = float(self.loss_fn.forward(logits, y))
        self._chance_loss = math.log(logits.shape[1])
        problem = self._loss_problem(loss)
        if problem:
            where = f"step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch + 1})"
            raise NonFiniteLossError(
                f"{problem} at {where}, learning rate {self.optimizer.lr:g}; training stopped "
                f"before this batch's update and {self._kept()}. "
                "Try a smaller learning rate or check the input scale.",
                self.step + 1, self.epoch + 1, self.batch + 1)
        self.net.backward(self.loss_fn.backward(), input_grad=False)   # no dx of the images
        self.optimizer.step()
        self._last_batch = (x, y)
        pred = to_numpy(logits).argmax(axis=1)
        wrong = int((pred != to_numpy(y)).sum())
        return loss, wrong

    def _end_epoch(self, epochs, t_start, steps_at_start):
        r = self.running
        row = {"epoch": self.epoch + 1, "step": self.step, "lr": self.optimizer.lr,
               "train_loss": r["loss"] / r["seen"], "train_error": r["wrong"] / r["seen"],
               "val_loss": None, "val_top1": None, "val_top5": None,
               "seconds": r["seconds"], "images_per_s": r["seen"] / max(r["seconds"], 1e-9)}
        if self.val_batches is not None:
            batches = self.val_batches() if callable(self.val_batches) else self.val_batches
            v = evaluate(self.net, batches, self.eval_chunk, stop=lambda: self.stop_requested)
            if v is None:     # stopped: save at the epoch's last batch; resume validates again
                self.stopped = self.stop_requested
                self._save_latest()
                return
            row.update(val_loss=v["loss"], val_top1=v["top1"], val_top5=v.get("top5"))
        self.history.append(row)
        metric = row["val_top1"] if row["val_top1"] is not None else row["train_error"]
        improved = self.best_metric is None or metric < self.best_metric
        if improved:
            self.best_metric, self.best_step = metric, self.step
        # The position moves to the start of the next epoch before anything is saved.
        self.optimizer.lr = self.schedule.step(self.epoch + 1, self.optimizer.lr, metric)
        self.epoch, self.batch = self.epoch + 1, 0
        self.running = {"loss": 0.0, "wrong": 0, "seen": 0, "seconds": 0.0}
        if self.out_dir is not None:
            self._save_latest()
            if improved:
                self.save(self.best_path)
            self._write_metrics()
        if not self.quiet:
            done = self.step - steps_at_start
            per_step = (time.perf_counter() - t_start) / max(done, 1)
            left = (epochs - self.epoch) * len(self.train_batches) * per_step
            val = (f", val loss {row['val_loss']:.4f} top-1 {row['val_top1']:.4f}"
                   + (f" top-5 {row['val_top5']:.4f}" if row["val_top5"] is not None else "")
                   if row["val_top1"] is not None else "")
            lr_note = (f" -> {self.optimizer.lr:g}" if self.optimizer.lr != row["lr"] else "")
            self.log(f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f} "
                     f"error {row['train_error']:.4f}{val}; lr {row['lr']:g}{lr_note}; "
                     f"{row['images_per_s']:.0f} img/s; {_fmt_time(row['seconds'])} "
                     f"(ETA {_fmt_time(left)})")
        if self.target_error is not None and self.stop_at_target \
                and row["train_error"] <= self.target_error:
            self.stopped = f"training error {row['train_error']:.4f} <= target {self.target_error}"

    # -- the guard -------------------------------------------------------------------
    def _loss_problem(self, loss: float) -> str | None:
        """Why ``loss`` shows a diverged run (non-finite, or far above its recent level), or None."""
        if not math.isfinite(loss):
            return f"non-finite loss ({loss})"
        if self.divergence_factor is None or not self.step_log:
            return None
        level = max(float(np.median([r["loss"] for r in self.step_log[-RECENT_STEPS:]])),
                    self._chance_loss)
        if loss > self.divergence_factor * level:
            return (f"diverging loss ({loss:.4g}, more than {self.divergence_factor:g} times its "
                    f"recent level {level:.4g})")
        return None

    def _kept(self) -> str:
        return (f"the last good checkpoint {self.latest_path} was left untouched"
                if self.latest_path is not None and self.latest_path.exists()
                else "no checkpoint had been written yet")

    def _check_before_saving(self):
        """The weights to be saved are finite and the last batch's loss at them is in range."""
        self._check_weights_finite()
        if self._last_batch is None:
            return
        x, y = self._last_batch
        loss = float(self.loss_fn.forward(self.net.forward(x, train=False), y))
        problem = self._loss_problem(loss)
        if problem:
            raise NonFiniteLossError(
                f"{problem} on the last batch at the weights of step {self.step}, learning "
                f"rate {self.optimizer.lr:g}: not writing a checkpoint of them, and "
                f"{self._kept()}. Try a smaller learning rate.",
                self.step, self.epoch + 1, self.batch)

    # -- files ---------------------------------------------------------------------
    def _check_weights_finite(self):
        for name, layer, key in self.net.named_params():
            if not bool(np.isfinite(to_numpy(layer.params[key])).all()):
                raise NonFiniteLossError(
                    f"non-finite weights in {name} at step {self.step}; not writing a checkpoint "
                    "(the last good one was left untouched)", self.step, self.epoch + 1, self.batch)

    def _save_latest(self):
        if self.out_dir is not None:
            self._check_before_saving()
            self.save(self.latest_path)
            self._write_steps()

    def _trim_step_log(self):
        """On resume: the per-step log up to the checkpoint's step (later rows never happened)."""
        self.step_log = []
        path = self.out_dir / "steps.csv" if self.out_dir else None
        if path is not None and path.exists():
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    if int(row["step"]) <= self.step:
                        self.step_log.append({k: (float(v) if k in ("lr", "loss", "error") else int(v))
                                              for k, v in row.items()})

    def _write_steps(self):
        if self.out_dir is None:
            return
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=("step", "epoch", "batch", "lr", "loss", "error"))
        w.writeheader()
        w.writerows(self.step_log)
        atomic_write_text(self.out_dir / "steps.csv", buf.getvalue())

    def _write_metrics(self):
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
        w.writeheader()
        for row in self.history:
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_FIELDS})
        atomic_write_text(self.out_dir / "metrics.csv", buf.getvalue())
        atomic_write_text(self.out_dir / "metrics.json",
                          json.dumps({"config": self.config, "epochs": self.history,
                                      "lr_changes": self.lr_changes}, indent=2))
        if self.plot and self.history:
            try:
                from ..viz import training_curves
                training_curves(self.history, self.out_dir / "curves.png",
                                title=self.config.get("model", self.net.name))
            except ImportError:              # matplotlib missing: metrics are still written
                pass
