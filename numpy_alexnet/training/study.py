"""The Figure-1 study (section 3.1): how much faster does ReLU reach 25% training error than tanh?

"A four-layer convolutional neural network with ReLUs (solid line) reaches a
25% training error rate on CIFAR-10 six times faster than an equivalent
network with tanh neurons (dashed line). The learning rates for each network
were chosen independently to make training as fast as possible. No
regularization of any kind was employed."

What is run, for each input *regime* and each activation:

1. a learning-rate sweep: ``sweep_epochs`` epochs at each rate of the grid
   (seed 0); the rate with the lowest training error at the end wins ("chosen
   ... to make training as fast as possible"); a run whose loss goes
   non-finite scores as diverged;
2. ``seeds`` runs at the chosen rate, each for at most ``cap`` epochs; the
   measurement is the first epoch whose running training error (over that
   epoch's batches, as cuda-convnet reported it) is at or below ``target``.

The measurement window: by default the running error is taken over each
epoch, as above.  ``window`` (``--window IMAGES``) takes it over each
``window // batch_size`` consecutive steps instead (5,000 images: 39 steps of
128, 4,992 images), and a run reaches the target at the end of the first such
window at or below it, mid-epoch if need be; its "epochs" are then passes over
the training set in steps of ``window / training images`` (0.1 for 5,000 of
50,000).  A window not smaller than the training set is the epoch.

Training: the Figure-1 net (``cifar_fig1``), plain momentum SGD (0.9), batch
128, no weight decay, no dropout, no augmentation, on the CIFAR-10 training
set.  Regimes:

* ``cuda-convnet``: raw 0-255 pixels minus the mean image, cuda-convnet's
  initialization (std 1e-4, 1e-2, 1e-2, 1e-2);
* ``unit``: the same inputs divided by their standard deviation (unit
  variance), 1/sqrt(fan-in) initialization.

The ratio is tanh epochs / ReLU epochs per seed (seed i of tanh against seed i
of ReLU), summarized by its mean, standard deviation, minimum and maximum, next
to the ratio of the mean epochs.  A tanh run that never reaches the target
counts as ``cap`` epochs and makes the ratio a lower bound (``lower_bound``);
a ReLU run that never reaches it leaves the ratio undefined.

Forms: ``--quick`` (minutes on a CPU; not the study: the cuda-convnet regime
only, all 50,000 images, one seed, the committed rates, a window of 5,000
images and a target of 43% instead of 25%, cap 10 epochs; chosen from a GPU
calibration, docs/replication.md), ``--reduced`` (full data, the committed chosen rates, one seed,
cap 60) and the default full form (sweep, 3 seeds, cap 100).  Each finished
run is kept as JSON under ``--work``, so an interrupted study re-run with the
same arguments skips what is done; a run cut off midway keeps checkpoints
under ``--work`` and goes on from the last one.  A run's name and settings
hold the data's hash, so other data never reuse it.  ``--report-only`` writes
the report of the runs under ``--work`` so far, but not over a complete report
of the same settings; reports and runs are written atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from ..argtypes import integer, number
from .recipe import data_identity

REGIMES = {
    "cuda-convnet": {"input_scale": "raw", "init": "cuda-convnet",
                     "description": "raw 0-255 pixels minus the mean image; cuda-convnet "
                                    "initialization (std 1e-4, 1e-2, 1e-2, 1e-2)"},
    "unit": {"input_scale": "unit", "init": "fan-in",
             "description": "mean-subtracted pixels divided by their standard deviation "
                            "(unit variance); 1/sqrt(fan-in) initialization"},
}
ACTIVATIONS = ("relu", "tanh")

# Learning-rate grids of the sweep (the loss is the batch mean).
GRIDS = {
    ("cuda-convnet", "relu"): (1e-3, 3e-3, 1e-2, 3e-2),
    ("cuda-convnet", "tanh"): (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
    ("unit", "relu"): (3e-3, 1e-2, 3e-2, 1e-1),
    ("unit", "tanh"): (3e-3, 1e-2, 3e-2, 1e-1, 3e-1),
}
# The rates the reduced and quick forms use without sweeping: the winners of
# the full form's sweep on all 50,000 images (5 epochs a rate, seed 0), run on
# an H100 with the CuPy backend (docs/results/relu_vs_tanh.json, "sweep").
CHOSEN = {
    ("cuda-convnet", "relu"): 3e-3,
    ("cuda-convnet", "tanh"): 1e-2,
    ("unit", "relu"): 3e-2,
    ("unit", "tanh"): 3e-2,
}

FORMS = {
    # window: images per measurement of the running training error (None: one epoch)
    "full":    dict(subset=None, seeds=3, cap=100, sweep=True, sweep_epochs=5, sweep_subset=None,
                    stop_at_target=False, regimes=("cuda-convnet", "unit"), target=0.25,
                    window=None),
    "reduced": dict(subset=None, seeds=1, cap=60, sweep=False, sweep_epochs=0, sweep_subset=None,
                    stop_at_target=True, regimes=("cuda-convnet", "unit"), target=0.25,
                    window=None),
    # The quick form, from a GPU calibration (docs/replication.md): on all 50,000 images,
    # measured every 5,000, ReLU reached 43% after 1.6, 1.7, 1.5 epochs and tanh after 5.9,
    # 5.9, 5.6 (ratio 3.63 mean, 3.47 least, 3 seeds); a subset shrinks the effect.
    "quick":   dict(subset=None, seeds=1, cap=10, sweep=False, sweep_epochs=0, sweep_subset=None,
                    stop_at_target=True, regimes=("cuda-convnet",), target=0.43, window=5000),
}
# Epochs a quick-form run is expected to take (the calibration's means), for the time left.
QUICK_EXPECTED_EPOCHS = {("cuda-convnet", "relu"): 1.6, ("cuda-convnet", "tanh"): 5.8}

# What the paper shows, and what the full study here measured, for the figure and summary.
PAPER_CLAIM = ("the paper (section 3.1, Figure 1): ReLU reaches 25% training error on "
               "CIFAR-10 about six times faster than tanh")
# The paper's Figure 1 read off the figure: (epochs, training error) of each curve.
PAPER_CURVES = {
    "relu": ((0, 0.75), (2, 0.37), (3.4, 0.30), (4.8, 0.27), (6, 0.25)),
    "tanh": ((0, 0.75), (5, 0.43), (10, 0.36), (17, 0.32), (20, 0.32), (25, 0.29), (30, 0.27),
             (36, 0.25)),
}
# The full study's committed result, docs/results/relu_vs_tanh.json (3 seeds, all 50,000
# images, per-epoch running error, target 25%; tests/test_quick_form.py checks it matches).
FULL_STUDY = {
    "cuda-convnet": {"ratio_mean": 6.26, "ratio_std": 0.44, "relu_epochs": (8, 9, 8),
                     "tanh_epochs": (53, 52, 51)},
    "unit": {"ratio_mean": 1.43, "ratio_std": 0.0, "relu_epochs": (7, 7, 7),
             "tanh_epochs": (10, 10, 10)},
}
# What the regimes' names mean, in a phrase a newcomer can follow.
PLAIN = {
    "cuda-convnet": "the paper's own setting: raw pixels minus the mean image, "
                    "cuda-convnet's small initial weights",
    "unit": "a modern setting: unit-variance inputs, 1/sqrt(fan-in) initial weights",
}
NEXT_COMMANDS = (
    "the full study on a GPU (about 12 runs at once): numpy-alexnet relu-vs-tanh --data "
    "../shared/data/cifar10-jpeg.tar.gz --backend cupy --jobs 12 --stop-at-target",
    "on a CPU, its reduced form (one seed, about 1.75 h): numpy-alexnet relu-vs-tanh --reduced "
    "--data ../shared/data/cifar10-jpeg.tar.gz",
)


def comma_list(item, expected: str):
    """An argparse type: a comma list of one or more entries, each read by ``item``.

    ``item(text)`` returns the entry or raises ValueError (or argparse's
    ArgumentTypeError); the error names the bad entry and what was expected.
    """
    def parse(text: str) -> tuple:
        entries = [e.strip() for e in text.split(",") if e.strip()]
        if not entries:
            raise argparse.ArgumentTypeError(f"expected a comma list of {expected}, got {text!r}")
        out = []
        for e in entries:
            try:
                out.append(item(e))
            except (ValueError, argparse.ArgumentTypeError):
                raise argparse.ArgumentTypeError(
                    f"expected a comma list of {expected}, got {e!r} in {text!r}") from None
        return tuple(out)
    return parse


def one_of(names):
    """An entry type for :func:`comma_list`: the text itself if it is one of ``names``."""
    def name(text: str) -> str:
        if text not in names:
            raise ValueError(text)
        return text
    return name


def add_run_arguments(p, out: str, out_help: str) -> None:
    """The flags every study shares: where it writes, its per-run work folder, progress,
    parallel runs and a report from the runs so far."""
    p.add_argument("--out", default=out, help=out_help)
    p.add_argument("--work", default=None,
                   help="per-run results kept to resume an interrupted study (default OUT/work)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--jobs", type=integer(1), default=1,
                   help="training runs at once, each in a process of its own (default 1). On "
                        "a GPU the runs share the device, which one small-batch run leaves "
                        "mostly idle; on a CPU use it only with cores to spare")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: write the report from the runs under --work, an "
                        "unfinished run as far as its last epoch (marked in progress); it "
                        "never replaces a complete report of the same settings")


def add_arguments(p) -> None:
    p.add_argument("--data", required=True, help="CIFAR-10, e.g. ../shared/data/cifar10-jpeg.tar.gz")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--quick", action="store_const", dest="form", const="quick",
                      help="minutes on a CPU: the cuda-convnet regime, all 50,000 images, the "
                           "committed rates, one seed, the running error over every 5,000 "
                           "images, target 43%%, cap 10 epochs")
    form.add_argument("--reduced", action="store_const", dest="form", const="reduced",
                      help="full data, the committed rates, one seed per activation and regime, "
                           "cap 60 epochs")
    p.set_defaults(form="full")
    p.add_argument("--regimes", type=comma_list(one_of(REGIMES), "regimes (cuda-convnet or unit)"),
                   default=None, help="comma list of cuda-convnet, unit (default: the form's)")
    p.add_argument("--seeds", type=integer(1), default=None, help="runs per activation at the chosen rate")
    p.add_argument("--cap", type=integer(1), default=None, help="most epochs a run may take")
    p.add_argument("--target", type=number(above=0, below=1), default=None,
                   help="training error to reach (default: the form's: 0.25, the paper's; "
                        "0.43 for --quick)")
    p.add_argument("--window", type=integer(1), default=None,
                   help="measure the running training error over every WINDOW images instead "
                        "of every epoch (default: the form's: 5,000 for --quick, else one epoch)")
    p.add_argument("--subset", type=integer(1), default=None,
                   help="training images (default all 50,000)")
    p.add_argument("--sweep", dest="sweep", action="store_true", default=None,
                   help="choose the rates by a sweep (default in the full form)")
    p.add_argument("--no-sweep", dest="sweep", action="store_false",
                   help="use the committed rates (or --lr-relu/--lr-tanh)")
    p.add_argument("--sweep-epochs", type=integer(1), default=None, help="epochs per sweep run (5)")
    p.add_argument("--lr-grid", type=comma_list(number(above=0), "rates > 0"), default=None,
                   help="comma list of rates to sweep for both activations (default: the "
                        "regime's grid)")
    p.add_argument("--lr-relu", type=number(above=0), default=None, help="ReLU rate without a sweep")
    p.add_argument("--lr-tanh", type=number(above=0), default=None, help="tanh rate without a sweep")
    p.add_argument("--stop-at-target", dest="stop_at_target", action="store_true", default=None,
                   help="end a run at the epoch it reaches the target (default but in the full form)")
    p.add_argument("--train-to-cap", dest="stop_at_target", action="store_false",
                   help="train every run to the cap (full curves in the figure)")
    p.add_argument("--batch-size", type=integer(1), default=128)
    p.add_argument("--momentum", type=number(at_least=0, below=1), default=0.9)
    add_run_arguments(p, "runs/relu_vs_tanh", "where relu_vs_tanh[_FORM].json and .png go "
                      "(the committed ones: docs/results)")


def settings_from_args(args) -> dict:
    f = dict(FORMS[args.form])
    for k in ("seeds", "cap", "subset", "sweep", "sweep_epochs", "stop_at_target", "regimes",
              "target", "window"):
        v = getattr(args, k, None)
        if v is not None:
            f[k] = v
    if f["sweep"] and not f["sweep_epochs"]:
        f["sweep_epochs"] = 5
    if f["window"] is not None and f["window"] < args.batch_size:
        raise ValueError(f"--window {f['window']} is smaller than one batch ({args.batch_size} "
                         "images); expected at least --batch-size images")
    f["lr_grid"] = args.lr_grid
    f.update(form=args.form, batch_size=args.batch_size,
             momentum=args.momentum, weight_decay=0.0, augmentation="none", dropout="none",
             lr_relu=args.lr_relu, lr_tanh=args.lr_tanh, backend=args.backend,
             backend_reason=getattr(args, "backend_reason", None),
             devices=args.devices, jobs=args.jobs, data=data_identity(args.data))
    return f


def machine_description(backend: str = "numpy", device=None) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    out = f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"
    if backend == "cupy":
        try:
            import cupy
            name = cupy.cuda.runtime.getDeviceProperties(int(device or 0))["name"]
            out += f"; GPU {name.decode() if isinstance(name, bytes) else name}"
        except Exception as err:          # pragma: no cover - depends on the machine
            out += f"; GPU unknown ({err})"
    return out


def epochs_to_target(errors, target: float) -> int | None:
    """The first epoch (1-based) whose training error is <= target; None if none is."""
    for i, e in enumerate(errors):
        if e is not None and e <= target:
            return i + 1
    return None


def window_errors(step_errors, window_steps: int) -> list[float]:
    """The running training error over each ``window_steps`` consecutive steps (whole windows).

    ``step_errors``: each step's error rate in order (steps.csv's ``error``); the
    windows run on across epochs.  Each window's error is the mean of its
    steps' errors (all but an epoch's last batch are full, so this is the
    error over its images to a fraction of a percent).
    """
    n = len(step_errors) // window_steps
    a = np.asarray(step_errors[:n * window_steps], dtype=np.float64)
    return [float(e) for e in a.reshape(n, window_steps).mean(axis=1)]   # (windows, steps) -> (windows,)


def window_epochs(count: int, window: int, train_images: int) -> list[float]:
    """The epochs (passes over the training set) at the end of each of ``count`` windows."""
    return [round((k + 1) * window / train_images, 4) for k in range(count)]


def epochs_at_target(epochs: list, errors: list, target: float):
    """The first of ``epochs`` whose error is <= target; None if none is."""
    for ep, e in zip(epochs, errors):
        if e is not None and e <= target:
            return ep
    return None


def summarize(relu_epochs: list, tanh_epochs: list, cap: int, censored_at: list | None = None) -> dict:
    """Per-seed ratios tanh/ReLU with their spread.

    A tanh run that did not reach the target counts as ``cap`` epochs (or, for a
    run still in progress, as the epochs in ``censored_at``) and makes the
    ratio a lower bound.
    """
    censored_at = list(censored_at) if censored_at is not None else [cap] * len(tanh_epochs)
    ratios, lower_bound, undefined = [], False, False
    for r, t, c in zip(relu_epochs, tanh_epochs, censored_at):
        if r is None:
            undefined = True
            continue
        if t is None:
            lower_bound = True
            t = c
        ratios.append(t / r)
    out = {"relu_epochs": relu_epochs, "tanh_epochs": tanh_epochs, "ratios": ratios,
           "lower_bound": lower_bound, "undefined_pairs": undefined, "cap": cap,
           "tanh_censored_at": censored_at}
    if ratios:
        a = np.asarray(ratios, dtype=np.float64)
        out.update(ratio_mean=float(a.mean()), ratio_std=float(a.std(ddof=1)) if len(a) > 1 else None,
                   ratio_min=float(a.min()), ratio_max=float(a.max()))
    reached_r = [r for r in relu_epochs if r is not None]
    tanh_c = [c if t is None else t for t, c in zip(tanh_epochs, censored_at)]
    if reached_r and len(reached_r) == len(relu_epochs):
        out["ratio_of_means"] = float(np.mean(tanh_c) / np.mean(reached_r))
    return out


def _window_trainer_class():
    """Trainer, measuring the running error every ``window_steps`` steps and stopping there.

    Made on first use, so that importing this module imports no training code.
    """
    from .trainer import Trainer

    class WindowTrainer(Trainer):
        """A Trainer that stops at the end of the first window at or below ``target_error``.

        The loop asks for no further step once ``max_steps`` is reached, so
        reaching the target sets ``max_steps`` to this step; the base class's
        line about a max_steps stop is not printed for it (the study says it).
        """

        def __init__(self, *args, window_steps: int, stop_in_window: bool, **kwargs):
            super().__init__(*args, **kwargs)
            self.window_steps, self.stop_in_window = window_steps, stop_in_window
            self.reached = False
            self._study_log, self.log = self.log, self._log

        def _log(self, msg):
            if not (self.reached and msg.startswith("stopped at step")):
                self._study_log(msg)

        def train_step(self, x, y):
            loss, wrong = super().train_step(x, y)
            step, W = self.step + 1, self.window_steps     # this step, 1-based (counted later)
            if self.stop_in_window and step % W == 0:
                errs = [r["error"] for r in self.step_log[len(self.step_log) - (W - 1):]]
                if float(np.mean(errs + [wrong / len(y)])) <= self.target_error:
                    self.reached = True
                    self.max_steps = step
            return loss, wrong

    return WindowTrainer


class _Study:
    def __init__(self, args, settings):
        self.args, self.s = args, settings
        self.out = Path(args.out)
        self.work = Path(args.work) if args.work else self.out / "work"
        self.data: dict = {}
        self.runs_started = 0                       # runs of this study met so far, done or not
        self.trained = {"images": 0, "seconds": 0.0}  # trained in this process, for the time left

    # -- data per regime (loaded once; the cache makes it fast) -----------------
    def regime_data(self, regime: str) -> dict:
        if regime not in self.data:
            from ..data import CIFAR10_CLASSES
            from .recipe import prepare_data
            d = prepare_data(
                self.args.data, 32, subset=self.s["subset"], input_scale=REGIMES[regime]["input_scale"],
                augment="none", progress=not self.args.quiet)
            # CIFAR-10 has 10 classes and the nets 10 outputs.  The names are not
            # compared, so a 10-class stand-in (as the tests' class0..class9) works.
            if len(d["classes"]) != len(CIFAR10_CLASSES):
                found = ", ".join(d["classes"][:12]) + (", ..." if len(d["classes"]) > 12 else "")
                raise ValueError(f"{self.args.data} has {len(d['classes'])} classes ({found}); "
                                 f"the study is CIFAR-10's 10 ({', '.join(CIFAR10_CLASSES)})")
            self.data[regime] = d
        return self.data[regime]

    # -- one training run --------------------------------------------------------
    def key(self, regime, act, lr, seed, epochs, kind) -> str:
        """The run's name under ``--work``; with the data's hash, so other data never meet it."""
        return f"{kind}-{regime}-{act}-lr{lr:g}-seed{seed}-ep{epochs}{self.key_tail()}"

    def key_tail(self) -> str:
        """The end of every run's key: the subset and the data's hash."""
        data = self.s["data"]
        tag = (data.get("sha256") or data["tree_sha256"])[:8]
        window = f"-w{self.s['window']}" if self.s.get("window") else ""
        return f"-n{self.s['subset'] or 'all'}{window}-data{tag}"

    def has_runs(self) -> bool:
        """Whether ``--work`` holds a run on this data and subset, finished or in progress."""
        tail = self.key_tail()
        return any(self.work.glob(f"*{tail}.json")) or any(self.work.glob(f"*{tail}/metrics.json"))

    def window_steps(self, train_images: int) -> int | None:
        """Steps per measurement window, or None to measure per epoch (no window, or one
        not smaller than the training set)."""
        w = self.s.get("window")
        return None if not w or w >= train_images else w // self.s["batch_size"]

    def trainer(self, regime, act, lr, seed, spec, run_dir, stop_at_target, d, W):
        """The run's net, placed on the backend, and its trainer (windowed when W is set)."""
        from ..models import build_model
        from .recipe import assemble, place
        net = build_model(f"cifar_fig1_{act}", 10, seed, REGIMES[regime]["init"])
        devices = tuple(int(x) for x in self.s["devices"].split(",")) if self.s["devices"] else ()
        net, device = place(net, self.s["backend"], devices)
        # A run in progress keeps a checkpoint at every epoch's end and every 100 steps
        # under WORK/KEY/, so a study stopped mid-run goes on from there when re-run.
        common = dict(validate=False, out_dir=run_dir, checkpoint_every=100, plot=False,
                      config={"study_run": spec, "train_images": len(d["train"])},
                      target_error=self.s["target"], progress=not self.args.quiet,
                      quiet=self.args.quiet,
                      log=lambda m: self.say(f"    {regime} {act} lr {lr:g} seed {seed}: "
                                             # the trainer's ETA runs to the cap, not the target
                                             + m.replace("(ETA ", "(to the cap: ")))
        if W is None:
            common.update(stop_at_target=stop_at_target)
        else:
            common.update(trainer_class=_window_trainer_class(), window_steps=W,
                          stop_in_window=stop_at_target)
        return assemble(net, d, batch_size=self.s["batch_size"], seed=seed, lr=lr,
                        momentum=self.s["momentum"], weight_decay=0.0,
                        backend=self.s["backend"], device=device, **common)

    def run(self, regime: str, act: str, lr: float, seed: int, epochs: int, kind: str,
            stop_at_target: bool) -> dict:
        key = self.key(regime, act, lr, seed, epochs, kind)
        spec = self.spec(regime, act, lr, seed, epochs, kind, stop_at_target)
        path = self.work / f"{key}.json"
        self.runs_started += 1
        done = self.done(regime, act, lr, seed, epochs, kind, stop_at_target)
        if done:
            self.say(f"  {self.progress_line()}{key}: done before ({path})")
            return done
        run_dir = self.work / key
        if getattr(self.args, "report_only", False):
            return self.progress_so_far(key, spec, run_dir)
        from .checkpoint import atomic_write_text
        from .trainer import NonFiniteLossError
        d = self.regime_data(regime)
        n_train = len(d["train"])
        self.say(f"  {self.progress_line(regime, act, kind)}{regime} {act} lr {lr:g} seed {seed}"
                 + (f" (sweep, {epochs} epochs)" if kind == "sweep" else ""))
        W = self.window_steps(n_train)
        tr = self.trainer(regime, act, lr, seed, spec, run_dir, stop_at_target, d, W)
        earlier = 0.0
        if tr.latest_path.exists():
            tr.resume()
            earlier = sum(r["seconds"] for r in tr.history) + tr.running["seconds"]
            self.say(f"  {key}: resumed at epoch {tr.epoch + 1}, batch {tr.batch}")
        t0 = time.perf_counter()
        step0 = tr.step
        diverged = None
        # A windowed run stopped at its target and cut off before its JSON was written has
        # nothing left to train (the stop itself is not in the checkpoint).
        done_before = W is not None and stop_at_target and self.windowed(
            [r["error"] for r in tr.step_log], W, n_train)["epochs_to_target"] is not None
        try:
            if not done_before:
                tr.fit(epochs)
        except NonFiniteLossError as err:
            diverged = f"non-finite loss at step {err.step} (epoch {err.epoch})"
        seconds = time.perf_counter() - t0
        self.trained["images"] += (tr.step - step0) * self.s["batch_size"]
        self.trained["seconds"] += seconds
        errs = [r["train_error"] for r in tr.history]
        res = {"spec": spec, "train_error": errs, "train_loss": [r["train_loss"] for r in tr.history],
               "epochs_run": len(errs), "diverged": diverged,
               "epochs_to_target": epochs_to_target(errs, self.s["target"]),
               "seconds": round(earlier + seconds, 1), "steps": tr.step,
               "input_scale": d["scale"], "train_images": n_train}
        if W is not None:
            res.update(self.windowed([r["error"] for r in tr.step_log], W, n_train))
        atomic_write_text(path, json.dumps(res))
        e2t = res["epochs_to_target"]
        last = (res["window_error"][-1] if W is not None and res["window_error"]
                else errs[-1] if errs else None)      # None: diverged before any measure
        self.say(f"  {regime} {act} lr {lr:g} seed {seed}: "
                 + (f"diverged ({diverged})" if diverged else
                    f"training error {last:.4f} after {res['epochs_run']:g} epochs; "
                    + (f"reached {self.s['target']:.0%} at epoch {e2t:g}" if e2t else
                       f"did not reach {self.s['target']:.0%}"))
                 + f" ({res['seconds']:.0f} s)")
        return res

    def windowed(self, step_errors: list, W: int, n_train: int) -> dict:
        """A run's measurement over windows of W steps: the curve, the epochs run and to target."""
        errs = window_errors(step_errors, W)
        eps = window_epochs(len(errs), self.s["window"], n_train)
        return {"window_steps": W, "window_error": errs, "window_epochs": eps,
                "epochs_run": eps[-1] if eps else 0,
                "epochs_to_target": epochs_at_target(eps, errs, self.s["target"])}

    def plan(self) -> list[tuple]:
        """(regime, activation, kind) of every run of the study, in the order ``go`` meets them."""
        out = []
        for regime in self.s["regimes"]:
            if self.s["sweep"]:
                out += [(regime, act, "sweep") for act in ACTIVATIONS
                        for _ in self.grid(regime, act)]
            out += [(regime, act, "run") for act in ACTIVATIONS for _ in range(self.s["seeds"])]
        return out

    def progress_line(self, regime=None, act=None, kind=None) -> str:
        """'run 2 of 2, about 9 min left: ' before a run (the time once a run has been timed)."""
        plan = self.plan()
        out = f"run {self.runs_started} of {len(plan)}"
        if regime is None:
            return out + ": "
        # The epochs of this run and the later ones: a sweep's, the quick form's calibration
        # where its settings apply (then 'about'), else the cap (then 'at most').
        quick = (self.s.get("window") == FORMS["quick"]["window"]
                 and self.s["target"] == FORMS["quick"]["target"] and not self.s["subset"])
        guesses = [self.s["sweep_epochs"] if k == "sweep" else
                   QUICK_EXPECTED_EPOCHS.get((r, a)) if quick else None
                   for r, a, k in plan[self.runs_started - 1:]]
        about = all(g is not None for g in guesses)
        ep = sum(g if g is not None else self.s["cap"] for g in guesses)
        if self.trained["images"] and self.trained["seconds"] > 0:
            rate = self.trained["images"] / self.trained["seconds"]
            n = len(self.regime_data(regime)["train"])
            out += (f", {'about' if about else 'at most'} {ep * n / rate / 60:.0f} min left "
                    f"({ep:.1f} epochs at {rate:.0f} img/s)")
        elif about:
            out += f", about {ep:.1f} epochs to train (the time is known after this run)"
        return out + ": "

    def progress_so_far(self, key: str, spec: dict, run_dir: Path) -> dict:
        """An unfinished run as far as the epochs its metrics.json holds (``--report-only``)."""
        path = run_dir / "metrics.json"
        metrics = json.loads(path.read_text()) if path.exists() else {}
        rows = metrics.get("epochs", [])
        errs = [r["train_error"] for r in rows]
        self.say(f"  {key}: in progress, {len(errs)} epoch(s) so far" if rows else
                 f"  {key}: not started")
        res = {"spec": spec, "train_error": errs, "train_loss": [r["train_loss"] for r in rows],
               "epochs_run": len(errs), "diverged": None, "in_progress": True,
               "epochs_to_target": epochs_to_target(errs, self.s["target"]),
               "seconds": round(sum(r["seconds"] for r in rows), 1),
               "steps": rows[-1]["step"] if rows else 0}
        n_train = metrics.get("config", {}).get("train_images")
        W = self.window_steps(n_train) if n_train else None
        if W is not None:                  # the windows of the steps up to the last epoch's end
            import csv
            with open(run_dir / "steps.csv", newline="") as f:
                steps = [float(r["error"]) for r in csv.DictReader(f)
                         if int(r["step"]) <= res["steps"]]
            res.update(self.windowed(steps, W, n_train))
        return res

    def say(self, msg):
        print(msg, file=sys.stderr, flush=True)

    # -- the study ---------------------------------------------------------------------
    def grid(self, regime: str, act: str) -> tuple:
        """The rates the sweep tries: ``--lr-grid``, else the regime's grid."""
        return self.s["lr_grid"] or GRIDS[(regime, act)]

    def sweep(self, regime: str, act: str) -> tuple[float, list]:
        results = []
        grid = self.grid(regime, act)
        for lr in grid:
            r = self.run(regime, act, lr, 0, self.s["sweep_epochs"], "sweep", False)
            score = np.inf if r["diverged"] or not r["train_error"] else r["train_error"][-1]
            results.append({"lr": lr, "train_error": r["train_error"], "diverged": r["diverged"],
                            "score": None if np.isinf(score) else score, "seconds": r["seconds"]})
        ok = [x for x in results if x["score"] is not None]
        unstarted = [x["lr"] for x in results if not x["diverged"] and not x["train_error"]]
        if not ok and unstarted:                  # --report-only before the sweep trained
            raise ValueError(f"{regime}/{act}: no rate of the sweep has trained an epoch yet "
                             f"(not started: {unstarted}); run the study without --report-only")
        if not ok:
            raise ValueError(f"{regime}/{act}: every rate of the sweep diverged: {grid}")
        return min(ok, key=lambda x: x["score"])["lr"], results

    def train_in_parallel(self) -> None:
        """``--jobs N``: train every run of the study in N worker processes, ahead of ``go``.

        First the sweeps (all regimes and activations at once), then the seeded
        runs at the rates the sweeps chose.  Each run writes its JSON under
        ``--work`` as always, so ``go`` afterwards finds every run done and only
        assembles the report; what is printed and saved is the same as with one
        job.  The data are prepared here first, so that the workers read the
        decoded cache rather than decoding it at once.
        """
        import concurrent.futures as cf
        import multiprocessing

        s = self.s
        for regime in s["regimes"]:
            self.regime_data(regime)

        def run_all(specs, what):
            specs = [sp for sp in specs if not self.done(*sp)]
            if not specs:
                return
            self.say(f"{what}: {len(specs)} run(s), {s['jobs']} at a time")
            # 'spawn': a forked child must not inherit a CUDA context (or Numba's threads).
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=s["jobs"], mp_context=ctx) as pool:
                for fut in cf.as_completed([pool.submit(_worker_run, self.args, s, sp)
                                            for sp in specs]):
                    fut.result()                     # a worker's error stops the study here

        if s["sweep"]:
            run_all([(regime, act, lr, 0, s["sweep_epochs"], "sweep", False)
                     for regime in s["regimes"] for act in ACTIVATIONS
                     for lr in self.grid(regime, act)], "sweeps")
        rates = {(regime, act): self.rate(regime, act)[0]       # once each: it reads the sweep
                 for regime in s["regimes"] for act in ACTIVATIONS}
        run_all([(regime, act, lr, seed, s["cap"], "run", s["stop_at_target"])
                 for (regime, act), lr in rates.items() for seed in range(s["seeds"])],
                "runs at the chosen rates")

    def spec(self, regime, act, lr, seed, epochs, kind, stop_at_target) -> dict:
        """What a finished run under ``--work`` must match to be reused.

        The backend is not part of it: numpy, numba and cupy train the same run
        to float tolerance, so runs trained on a GPU serve a study on a CPU and
        the other way round.
        """
        spec = {"regime": regime, "activation": act, "lr": lr, "seed": seed, "epochs": epochs,
                "kind": kind, "subset": self.s["subset"], "target": self.s["target"],
                "stop_at_target": stop_at_target, "batch_size": self.s["batch_size"],
                "momentum": self.s["momentum"], "data": self.s["data"]}
        if self.s.get("window"):          # absent from the runs measured per epoch, as before
            spec["window"] = self.s["window"]
        return spec

    def done(self, regime, act, lr, seed, epochs, kind, stop_at_target) -> dict | None:
        """This run's result if it is already under ``--work`` with the same settings."""
        path = self.work / f"{self.key(regime, act, lr, seed, epochs, kind)}.json"
        if path.exists():
            done = json.loads(path.read_text())
            if done.get("spec") == self.spec(regime, act, lr, seed, epochs, kind, stop_at_target):
                return done
        return None

    def chosen(self, regime: str, act: str) -> float:
        given = self.s["lr_relu"] if act == "relu" else self.s["lr_tanh"]
        return float(given) if given is not None else CHOSEN[(regime, act)]

    def rate(self, regime: str, act: str) -> tuple[float, list | None]:
        """(the rate of the seeded runs, the sweep's results or None without a sweep)."""
        return self.sweep(regime, act) if self.s["sweep"] else (self.chosen(regime, act), None)

    def go(self) -> dict:
        s = self.s
        t0 = time.perf_counter()
        report = {"study": "relu-vs-tanh (paper section 3.1, Figure 1)", "form": s["form"],
                  "is_full_study": s["form"] == "full",
                  "command": "numpy-alexnet " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                  "machine": machine_description(s["backend"], (s["devices"] or "0").split(",")[0]),
                  "backend": s["backend"],
                  "devices": s["devices"], "settings": dict(s, regimes=list(s["regimes"])),
                  "regimes": {}}
        from .recipe import library_versions
        report["versions"] = library_versions()
        if s["jobs"] > 1 and not getattr(self.args, "report_only", False):
            self.train_in_parallel()
        for regime in s["regimes"]:
            self.say(f"regime {regime}: {REGIMES[regime]['description']}")
            entry = {"description": REGIMES[regime]["description"], "plain": PLAIN[regime],
                     "sweep": {}, "chosen_lr": {}, "runs": []}
            for act in ACTIVATIONS:
                entry["chosen_lr"][act], results = self.rate(regime, act)
                if results is not None:
                    entry["sweep"][act] = results
                    self.say(f"  sweep {regime} {act}: chose lr {entry['chosen_lr'][act]:g}")
            per_act, censor = {}, []
            for act in ACTIVATIONS:
                per_act[act] = []
                for seed in range(s["seeds"]):
                    r = self.run(regime, act, entry["chosen_lr"][act], seed, s["cap"], "run",
                                 s["stop_at_target"])
                    run = {"activation": act, "lr": entry["chosen_lr"][act], "seed": seed,
                           "train_error": r["train_error"], "train_loss": r["train_loss"],
                           "epochs_run": r["epochs_run"], "epochs_to_target": r["epochs_to_target"],
                           "reached_target": r["epochs_to_target"] is not None,
                           "diverged": r["diverged"], "seconds": r["seconds"],
                           "in_progress": r.get("in_progress", False)}
                    if "window_error" in r:     # measured over windows of steps, not epochs
                        run.update({k: r[k] for k in ("window_steps", "window_epochs",
                                                      "window_error")})
                    entry["runs"].append(run)
                    per_act[act].append(r["epochs_to_target"])
                    if act == "tanh":   # a tanh run short of the target counts as its last epoch
                        censor.append(r["epochs_run"] if run["in_progress"] else s["cap"])
            if not getattr(self.args, "report_only", False):
                entry["input_scale_factor"] = self.regime_data(regime)["scale"]
            entry["summary"] = summarize(per_act["relu"], per_act["tanh"], s["cap"], censor)
            entry["complete"] = not any(r["in_progress"] for r in entry["runs"])
            report["regimes"][regime] = entry
        report["complete"] = all(e["complete"] for e in report["regimes"].values())
        report["total_seconds"] = round(time.perf_counter() - t0, 1)
        report["run_seconds_sum"] = round(sum(
            [r["seconds"] for e in report["regimes"].values() for r in e["runs"]]
            + [x.get("seconds", 0) for e in report["regimes"].values()
               for res in e["sweep"].values() for x in res]), 1)
        return report


def _worker_run(args, settings: dict, spec: tuple) -> None:
    """One training run in a worker process of ``--jobs`` (no progress bar: they would mix)."""
    import argparse
    args = argparse.Namespace(**dict(vars(args), quiet=True))
    _Study(args, settings).run(*spec)


def stem_for(form: str) -> str:
    return "relu_vs_tanh" if form == "full" else f"relu_vs_tanh_{form}"


def paper_epochs_at(act: str, target: float) -> float | None:
    """Epochs the paper's curve of ``act`` takes to reach ``target`` (read off, interpolated)."""
    from ..viz import _first_below
    return _first_below(PAPER_CURVES[act], target)


def _epochs_text(values) -> str:
    return ", ".join("-" if v is None else f"{v:g}" for v in values)


def what_was_shown(report: dict) -> list[str]:
    """Plain sentences for the terminal and the figure: the claim, this run, the full study, next."""
    s = report["settings"]
    t = s["target"]
    lines = [f"The claim: {PAPER_CLAIM}."]
    if t != 0.25:
        r, h = paper_epochs_at("relu", t), paper_epochs_at("tanh", t)
        lines.append(f"This run's target is {t:.0%}, not the paper's 25%, so that it ends in "
                     "minutes" + (f"; the paper's own curves reach {t:.0%} after about {r:.1f} "
                                  f"(ReLU) and {h:.1f} (tanh) epochs: {h / r:.1f} times faster"
                                  if r and h else "") + ".")
    if s.get("window"):
        lines.append(f"Running training error measured over every {s['window']:,} images "
                     f"(a window of {s['window'] // s['batch_size']} steps), not over each epoch.")
    for regime, e in report["regimes"].items():
        sm = e["summary"]
        head = f"{regime} ({PLAIN[regime]}): "
        if "ratio_mean" in sm:
            lb = "at least " if sm["lower_bound"] else ""
            verdict = ("the paper's effect" if sm["ratio_mean"] >= 3 else
                       "ReLU faster, by less than in the paper" if sm["ratio_mean"] > 1.2 else
                       "no clear ReLU advantage")
            head += (f"ReLU reached {t:.0%} after {_epochs_text(sm['relu_epochs'])} epochs, tanh "
                     f"after {_tanh_text(sm)}: "
                     f"{lb}{sm['ratio_mean']:.2f} times faster ({verdict}).")
        else:
            head += f"ReLU did not reach {t:.0%} within {sm['cap']} epochs: no ratio."
        if not report.get("is_full_study"):
            head += (f" The full study (25%, 3 seeds, all 50,000 images) measured "
                     f"{_full_ratio(regime)}.")
        lines.append(head)
    for regime in REGIMES:
        if regime not in report["regimes"]:
            lines.append(f"{regime} ({PLAIN[regime]}) was not run: the full study measured only "
                         f"{FULL_STUDY[regime]['ratio_mean']:.2f} there, too small to show in "
                         f"minutes; --regimes cuda-convnet,unit adds it.")
    if not report.get("is_full_study"):
        lines.append("Next, " + NEXT_COMMANDS[0] + "; " + NEXT_COMMANDS[1] + ".")
    return lines


def _full_ratio(regime: str) -> str:
    """The full study's committed ratio: '6.26 ± 0.44', or '1.43 (all 3 seeds)' with no spread."""
    full = FULL_STUDY[regime]
    spread = (f" ± {full['ratio_std']:.2f}" if full["ratio_std"] else
              f" (all {len(full['relu_epochs'])} seeds)")
    return f"{full['ratio_mean']:.2f}{spread}"


def _tanh_text(sm: dict) -> str:
    return ", ".join(f"{t:g}" if t is not None else f"more than {c:g} (did not reach it)"
                     for t, c in zip(sm["tanh_epochs"], sm["tanh_censored_at"]))


def figure(report: dict, path) -> None:
    from ..viz import relu_vs_tanh_plot
    panels = []
    for regime, entry in report["regimes"].items():
        sm = entry["summary"]
        target = f"{report['settings']['target']:.0%}"
        running = {r["activation"] for r in entry["runs"] if r.get("in_progress")}
        if "ratio_mean" in sm:
            ratio = (f"tanh/ReLU epochs to {target} {'>=' if sm['lower_bound'] else '='} "
                     f"{sm['ratio_mean']:.2f}"
                     + (" (tanh still running)" if "tanh" in running else ""))
        elif "relu" in running:
            ratio = "no ratio yet: ReLU still running"
        else:
            ratio = f"ReLU did not reach {target} in {sm['cap']} epochs: no ratio"
        full = FULL_STUDY[regime]["ratio_mean"]
        runs = [dict(r) for r in entry["runs"]]
        for r in runs:
            if "window_error" in r:           # measured over windows: the curve is theirs
                r["train_error"], r["epochs"] = r["window_error"], r["window_epochs"]
        lr = entry["chosen_lr"]
        beside = "" if report.get("is_full_study") else f"(full study: {full:.2f} at 25%); "
        panels.append({"title": f"{regime}: {ratio}\n{beside}"
                                f"ReLU lr {lr['relu']:g}, tanh lr {lr['tanh']:g}"
                                + (f"; {', '.join(sorted(running))} still running" if running else ""),
                       "runs": runs})
    s = report["settings"]
    sub = f"{s['subset']:,} training images" if s["subset"] else "50,000 training images"
    relu_vs_tanh_plot(panels, path, target=s["target"], reference=PAPER_CURVES,
                      notes=what_was_shown(report),
                      suptitle=f"ReLU vs tanh (the paper's Figure 1), {report['form']} form"
                               + ("" if report["form"] == "full" else " (not the full study)")
                               + f": CIFAR-10, {sub}, batch {s['batch_size']}, "
                               f"{s['seeds']} seed(s), backend {report['backend']}")


def format_table(report: dict) -> str:
    """The result as a Markdown table, with the full study's committed ratio beside it.

    A target other than the paper's 25% is said in the header.
    """
    t = report["settings"]["target"]
    to = f"{t:.0%}" + ("" if t == 0.25 else " (not the paper's 25%)")
    lines = [f"| regime | ReLU lr | tanh lr | ReLU epochs to {to} | tanh epochs to {to} | "
             "tanh/ReLU ratio (mean ± sd, range) | full study, 25% |",
             "|---|---|---|---|---|---|---|"]
    for regime, e in report["regimes"].items():
        sm = e["summary"]

        def eps(act):
            runs = [r for r in e["runs"] if r["activation"] == act]
            return ", ".join(f"{r['epochs_to_target']:g}" if r["epochs_to_target"] is not None
                             else (f">{r['epochs_run']:g} (still running)" if r.get("in_progress")
                                   else f">{sm['cap']}") for r in runs)
        if "ratio_mean" in sm:
            lb = ">= " if sm["lower_bound"] else ""
            sd = f" ± {sm['ratio_std']:.2f}" if sm.get("ratio_std") is not None else ""
            rng = (f", {sm['ratio_min']:.2f}-{sm['ratio_max']:.2f}"
                   if len(sm["ratios"]) > 1 else "")
            ratio = f"{lb}{sm['ratio_mean']:.2f}{sd}{rng}"
        elif any(r.get("in_progress") for r in e["runs"] if r["activation"] == "relu"):
            ratio = "not yet (ReLU still running)"
        else:
            ratio = "undefined (ReLU did not reach the target)"
        lines.append(f"| {regime} | {e['chosen_lr']['relu']:g} | {e['chosen_lr']['tanh']:g} | "
                     f"{eps('relu')} | {eps('tanh')} | {ratio} | {_full_ratio(regime)} |")
    return "\n".join(lines)


# The settings that make two reports the same study (the backend and --jobs do not).
STUDY_SETTINGS = ("form", "regimes", "subset", "seeds", "cap", "target", "sweep", "sweep_epochs",
                  "lr_grid", "lr_relu", "lr_tanh", "stop_at_target", "batch_size", "momentum",
                  "window")


def run_study(args) -> dict:
    from .checkpoint import atomic_write_text
    from .recipe import print_start, write_config
    from .reports import is_complete_report_of, write_figure
    settings = settings_from_args(args)
    sub = f"{settings['subset']:,} training images" if settings["subset"] else "all training images"
    window = (f"every {settings['window']:,} images" if settings["window"] else "every epoch")
    print_start("relu-vs-tanh", settings, [
        f"{settings['form']} form: regimes {', '.join(settings['regimes'])}; {sub}; "
        f"{settings['seeds']} seed(s); cap {settings['cap']} epochs",
        f"target {settings['target']:.0%} running training error, measured {window}; "
        + ("rates by a sweep" if settings["sweep"] else "the committed rates")
        + ("; each run stops at the target" if settings["stop_at_target"] else ""),
        f"writes {Path(args.out) / stem_for(settings['form'])}.json and .png"])
    study = _Study(args, settings)
    if args.report_only and not study.has_runs():
        raise ValueError(f"--report-only: no runs of this study under {study.work} (none on this "
                         "data, finished or in progress); expected the --work folder the study "
                         "trains in (default OUT/work)")
    write_config(args.out, "relu-vs-tanh", settings)
    report = study.go()
    out = Path(args.out)
    stem = stem_for(settings["form"])
    json_path, png_path = out / f"{stem}.json", out / f"{stem}.png"
    if not report["complete"] and is_complete_report_of(json_path, settings, STUDY_SETTINGS):
        unfinished = sum(r["in_progress"] for e in report["regimes"].values() for r in e["runs"])
        raise ValueError(f"{json_path} is the complete report of a study with these settings, and "
                         f"this one is unfinished ({unfinished} run(s) in progress or not "
                         "started): not replaced; give another --out to write it")
    report["figure"] = png_path.name
    report["table_markdown"] = format_table(report)
    report["what_was_shown"] = what_was_shown(report)
    atomic_write_text(json_path, json.dumps(report, indent=1))
    try:
        write_figure(figure, report, png_path)
    except ImportError as err:
        print(f"numpy-alexnet relu-vs-tanh: no figure ({err})", file=sys.stderr)
    print(report["table_markdown"])
    print()
    for line in report["what_was_shown"]:
        print(textwrap.fill(line, 100, subsequent_indent="  "))
    print(f"\n{settings['form']} form on {report['machine']}, backend {report['backend']}, "
          f"{report['total_seconds']:.0f} s (training runs {report['run_seconds_sum']:.0f} s); "
          f"wrote {json_path} and {png_path}")
    return report
