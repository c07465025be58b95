"""The one runner of the studies: many training runs, kept, resumed, run in parallel, reported.

A study (``relu_vs_tanh.py``, ``ablation.py``) is a subclass of :class:`Study`
that says only what is its own: its flags and forms, the runs it needs, how
one run trains and what it measures, and what the results show.  A run is
named by its *spec*, a dict of everything that makes it what it is.  The rest
is here, once:

* the run cache: a finished run is kept as ``WORK/KEY.json`` holding its spec,
  and a study run again reuses it when the spec matches (the data's SHA-256 is
  part of every spec, so other data never reuse it);
* resume: a run in progress keeps checkpoints under ``WORK/KEY/`` (at every
  epoch's end and every 100 steps) and goes on from the last one;
* ``--jobs N``: the runs not yet done train first, N at a time, each in a
  spawned worker process; the report then finds them done;
* progress: 'run 2 of 6, about 9 min left' before each run;
* signals, as ``train`` has them: SIGTERM, SIGHUP and SIGINT stop the run in
  progress after its step, with a checkpoint (workers too, quietly); the
  command prints one line ending with the command that goes on (the same one)
  and exits 128 + the signal;
* the report: JSON, table and figure written atomically; ``--report-only``
  writes it from the runs so far; an unfinished report never replaces a
  complete one of the same study.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import platform
import shlex
import signal
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..argtypes import device_indexes, integer, number
from ..data import CIFAR10_CLASSES
from ..files import atomic_write_text
from ..training.errors import RunError
from ..training.recipe import (data_identity, library_versions, mover, place, print_start,
                               write_config)
from ..training.runfiles import STOP_SIGNALS, SignalStop, stop_on_signals
from ..training.trainer import NonFiniteLossError

# Checkpoints of a run in progress: at every epoch's end and every this many steps.
CHECKPOINT_EVERY = 100


class Stopped(Exception):
    """A stop signal ended the study where the message says; everything finished is kept."""


class RunStop:
    """What a stop signal asks of a study: the run in training stops after its step.

    It stands as the trainer of ``stop_on_signals``' guard while the study
    works, so that a signal asks the run in training (``trainer``) to stop,
    with a checkpoint, and is remembered, so that no other run starts.  In a
    ``--jobs`` parent, ``event`` carries the stop to the worker processes.
    """

    def __init__(self):
        self.reason: str | None = None
        self.trainer = None
        self.event = None
        self.guard = None

    def request_stop(self, reason: str) -> None:
        self.reason = reason
        if self.trainer is not None:
            self.trainer.request_stop(reason)
        if self.event is not None:
            self.event.set()

    def attach(self, guard) -> None:
        """Stand as ``guard``'s trainer: signals stop at the next step boundary from now on."""
        self.guard, guard.trainer = guard, self

    @contextmanager
    def at_once(self):
        """Signals stop at once inside the block (preparing data: nothing to save yet)."""
        if self.guard is None:
            yield
            return
        self.guard.trainer = None
        try:
            yield
        finally:
            self.guard.trainer = self

    @contextmanager
    def training(self, trainer):
        """A signal inside the block (or one before it) stops ``trainer`` after its step."""
        self.trainer = trainer
        if self.reason:
            trainer.request_stop(self.reason)
        try:
            yield
        finally:
            self.trainer = None


def add_arguments(study, p) -> None:
    """The flags of ``study`` (a Study subclass) amid those every study shares."""
    p.add_argument("--data", required=True,
                   help="CIFAR-10, e.g. ../shared/data/cifar10-jpeg.tar.gz")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--quick", action="store_const", dest="form", const="quick",
                      help=study.quick_help)
    form.add_argument("--reduced", action="store_const", dest="form", const="reduced",
                      help=study.reduced_help)
    p.set_defaults(form="full")
    study.add_arguments(p)
    p.add_argument("--batch-size", type=integer(1), default=128)
    p.add_argument("--momentum", type=number(at_least=0, below=1), default=0.9)
    p.add_argument("--out", default=f"runs/{study.stem}", help=study.out_help)
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


def machine_description(backend: str = "numpy", device=None) -> str:
    """The CPU (and GPU) a report was made on, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh
                        if line.startswith("model name")), cpu)
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


def is_complete_report_of(path: Path, settings: dict, keys: tuple) -> bool:
    """Whether ``path`` holds a complete report of a study with these settings (``keys``)."""
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    ours = json.loads(json.dumps({k: settings.get(k) for k in keys}))      # tuples as lists
    return (old.get("complete") is True
            and {k: old.get("settings", {}).get(k) for k in keys} == ours)


# The settings every study records that make two reports the same study (with the
# study's own ``same_study``; the backend and --jobs give the same runs, so they do not).
SAME_IN_EVERY_STUDY = ("form", "batch_size", "momentum", "data")


class Study:
    """Many training runs and what they show.  A subclass gives what is its own:

    ``name`` (the command), ``stem`` (the report's file name), ``title``,
    ``out_help``, ``forms`` with ``quick_help`` and ``reduced_help``,
    ``form_flags`` (the flags that change a form's setting), ``table_file``
    (also write STEM.md), ``same_study`` (its own settings that make two
    reports the same study, beside ``SAME_IN_EVERY_STUDY``);
    ``add_arguments`` and ``own_settings``; ``specs`` (every run), ``key``,
    ``describe``, ``prepared`` (its data), ``trainer``, ``outcome`` (one run);
    ``analyse``, ``format_table`` and ``figure`` (the report).  Where the study
    needs more, it replaces ``phases``, ``plan``, ``has_runs``, ``finished``,
    ``measured``, ``partial``, ``start_lines``, ``form_label`` or ``shown``.
    """
    name = stem = title = out_help = quick_help = reduced_help = ""
    table_file = False
    forms: dict = {}
    form_flags: tuple = ()
    same_study: tuple = ()

    def __init__(self, args, settings: dict | None = None):
        self.args = args
        self.s = settings if settings is not None else self.settings(args)
        self.out = Path(args.out)
        self.work = Path(args.work) if args.work else self.out / "work"
        self.report_only = bool(getattr(args, "report_only", False))
        self.quiet = bool(args.quiet)
        self.data: dict = {}
        self.stop = RunStop()
        self.results: list[dict] = []               # every run met by the report, in order
        self.started: int | None = 0                # runs met so far (None: in a worker)
        self.trained = {"images": 0, "seconds": 0.0}   # trained in this process, for the time left

    @classmethod
    def settings(cls, args) -> dict:
        """The study's settings: its form's (``forms``), changed by the flags of ``form_flags``
        that were given, its own (``own_settings``), then what every study records."""
        s = {k: v for k, v in cls.forms[args.form].items() if k != "note"}
        s.update({k: getattr(args, k) for k in cls.form_flags
                  if getattr(args, k, None) is not None})
        s = cls.own_settings(args, s)
        s.update(form=args.form, batch_size=args.batch_size, momentum=args.momentum,
                 backend=args.backend, backend_reason=getattr(args, "backend_reason", None),
                 devices=args.devices, jobs=args.jobs, data=data_identity(args.data))
        return s

    def say(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def stem_for(self, form: str) -> str:
        return self.stem if form == "full" else f"{self.stem}_{form}"

    def form_label(self) -> str:
        return f"{self.s['form']} form"

    # -- one run ---------------------------------------------------------------------------
    def done(self, spec: dict) -> dict | None:
        """The run of ``spec`` if it is already under ``--work`` with this very spec."""
        path = self.work / f"{self.key(spec)}.json"
        if path.exists():
            res = json.loads(path.read_text())
            if res.get("spec") == spec:
                return res
        return None

    def result(self, spec: dict) -> dict:
        """The run of ``spec``: reused from ``--work``, as far as it got (``--report-only``),
        or trained (going on from its last checkpoint); kept under ``--work`` when done."""
        key = self.key(spec)
        path = self.work / f"{key}.json"
        self.started = None if self.started is None else self.started + 1
        res = self.done(spec)
        if res is not None:
            self.say(f"  {self.progress()}{key}: done before ({path})")
        elif self.report_only:
            res = self.so_far(spec, key)
        else:
            with self.stop.at_once():
                d = self.prepared(spec)
            self.say(f"  {self.progress(d)}{self.describe(spec)}")
            res = self.train(spec, key, d)
            atomic_write_text(path, json.dumps(res))
            self.say(f"  {self.describe(spec)}: {self.outcome(res)}")
        self.results.append(res)
        return res

    def train(self, spec: dict, key: str, d: dict) -> dict:
        """Train the run of ``spec`` (from its last checkpoint, if any) and measure it."""
        if self.stop.reason:
            raise Stopped(f"stopped between runs; the runs finished are kept under {self.work}")
        tr = self.trainer(spec, self.work / key, d)
        earlier = 0.0
        if tr.latest_path.exists():
            self.same_run_or_refuse(key, spec, tr.resume()["meta"].get("config"))
            earlier = sum(r["seconds"] for r in tr.history) + tr.running["seconds"]
            self.say(f"  {key}: resumed at epoch {tr.epoch + 1}, batch {tr.batch}")
        t0, step0, diverged = time.perf_counter(), tr.step, None
        with self.stop.training(tr):
            try:
                if not self.finished(spec, tr, d):
                    tr.fit(spec["epochs"])
            except NonFiniteLossError as err:
                diverged = f"non-finite loss at step {err.step} (epoch {err.epoch})"
        if tr.stopped and self.stop.reason:
            raise Stopped(f"stopped the run {key} after step {tr.step}, with a checkpoint "
                          f"({tr.latest_path})")
        seconds = time.perf_counter() - t0
        self.trained["images"] += (tr.step - step0) * self.s["batch_size"]
        self.trained["seconds"] += seconds
        res = {"spec": spec, "train_error": [r["train_error"] for r in tr.history],
               "train_loss": [r["train_loss"] for r in tr.history],
               "epochs_run": len(tr.history), "diverged": diverged,
               "seconds": round(earlier + seconds, 1), "steps": tr.step}
        return self.measured(spec, res, tr, d)

    def same_run_or_refuse(self, key: str, spec: dict, recorded) -> None:
        """Refuse to go on from a checkpoint under ``WORK/KEY`` that another spec wrote (a
        setting the key does not name, such as --momentum, changed since).  As with ``train
        --resume``, the number of epochs may change, and a checkpoint that records no spec
        is not compared."""
        was = (recorded or {}).get("run")
        if was is None:
            return
        now = json.loads(json.dumps(spec))                                # tuples as lists
        changed = [k for k in sorted(set(was) | set(now))
                   if k != "epochs" and was.get(k) != now.get(k)]
        if changed:
            raise ValueError(
                f"{self.work / key} holds a run in progress made with other settings ("
                + "; ".join(f"{k}: {was.get(k)!r} there, {now.get(k)!r} now" for k in changed)
                + "): not going on from it; give another --work or --out, or remove that "
                  "folder to start the run again")

    def so_far(self, spec: dict, key: str) -> dict:
        """An unfinished run as far as the epochs its metrics.json holds (``--report-only``)."""
        run_dir = self.work / key
        path = run_dir / "metrics.json"
        metrics = json.loads(path.read_text()) if path.exists() else {}
        rows = metrics.get("epochs", [])
        self.say(f"  {key}: in progress, {len(rows)} epoch(s) so far" if rows else
                 f"  {key}: not started")
        res = {"spec": spec, "train_error": [r["train_error"] for r in rows],
               "train_loss": [r["train_loss"] for r in rows], "epochs_run": len(rows),
               "diverged": None, "in_progress": True,
               "seconds": round(sum(r["seconds"] for r in rows), 1),
               "steps": rows[-1]["step"] if rows else 0}
        return self.partial(spec, res, run_dir, metrics)

    def run_options(self, spec: dict, run_dir: Path) -> dict:
        """The Trainer settings of every run: checkpoints under ``run_dir`` (so that a stopped
        study goes on from them, the spec recorded in them), no validation (the study
        measures), its log lines."""
        return dict(validate=False, out_dir=run_dir, checkpoint_every=CHECKPOINT_EVERY,
                    plot=False, progress=not self.quiet, quiet=self.quiet, config={"run": spec},
                    log=lambda m: self.say(f"    {self.describe(spec)}: {m}"))

    def cifar10(self, d: dict) -> dict:
        """``d`` (from ``prepare_data``) if it has CIFAR-10's 10 classes, as the nets' 10 outputs.

        The names are not compared, so a 10-class stand-in (the tests') works.
        """
        if len(d["classes"]) != len(CIFAR10_CLASSES):
            found = ", ".join(d["classes"][:12]) + (", ..." if len(d["classes"]) > 12 else "")
            raise ValueError(f"{self.args.data} has {len(d['classes'])} classes ({found}); the "
                             f"{self.name} study is CIFAR-10's 10 ({', '.join(CIFAR10_CLASSES)})")
        return d

    def devices(self) -> tuple:
        return device_indexes(self.s["devices"])

    def place(self, net):
        """``net`` on the study's backend and device: (net, device)."""
        return place(net, self.s["backend"], self.devices())

    def mover(self):
        """What puts a batch on the study's device (None: batches stay host arrays)."""
        return mover(self.s["backend"], (self.devices() or (None,))[0])

    # -- what a study may keep as it is here -----------------------------------------------
    def phases(self):
        """(label or None, the specs of the runs that can train at once), in order."""
        yield None, self.specs()

    def plan(self) -> list[tuple[float, bool]]:
        """(epochs expected, whether that is only a bound) of every run, in the order
        ``analyse`` meets them."""
        return [(spec["epochs"], False) for spec in self.specs()]

    def has_runs(self) -> bool:
        """Whether ``--work`` holds any run of this study, finished or in progress."""
        return any((self.work / f"{self.key(sp)}.json").exists()
                   or (self.work / self.key(sp) / "metrics.json").exists() for sp in self.specs())

    def start_lines(self) -> list[str]:
        """What the study's start says about its settings."""
        return [f"{self.form_label()}: {len(self.plan())} runs"]

    def partial(self, spec: dict, res: dict, run_dir: Path, metrics: dict) -> dict:
        """An unfinished run's result (``--report-only``), with the study's own fields."""
        return res

    def finished(self, spec: dict, tr, d: dict) -> bool:
        """Whether a resumed run has nothing left to train though its epochs are not all done."""
        return False

    def measured(self, spec: dict, res: dict, tr, d: dict) -> dict:
        """A trained run's result, with what the study measures beyond the training curves."""
        return res

    def progress(self, d: dict | None = None) -> str:
        """'run 2 of 6, about 9 min left: ' before a run (the time once a run has been timed)."""
        if self.started is None:
            return ""
        plan = self.plan()
        out = f"run {self.started} of {len(plan)}"
        if d is None:
            return out + ": "
        left = plan[self.started - 1:]                # (epochs expected, whether only a bound)
        bound = any(at_most for _, at_most in left)
        epochs = sum(e for e, _ in left)
        if self.trained["images"] and self.trained["seconds"] > 0:
            rate = self.trained["images"] / self.trained["seconds"]
            minutes = epochs * len(d["train"]) / rate / 60
            out += (f", {'at most' if bound else 'about'} {minutes:.0f} min left "
                    f"({epochs:.1f} epochs at {rate:.0f} img/s)")
        elif not bound:
            out += f", about {epochs:.1f} epochs to train (the time is known after this run)"
        return out + ": "

    # -- the study -------------------------------------------------------------------------
    def go(self) -> dict:
        """Train (or reuse) every run and return the report."""
        t0 = time.perf_counter()
        s = self.s
        report = {"study": self.title, "form": s["form"],
                  "command": "numpy-alexnet " + shlex.join(self.argv()),
                  "machine": machine_description(s["backend"], (s["devices"] or "0").split(",")[0]),
                  "backend": s["backend"], "devices": s["devices"], "versions": library_versions(),
                  "settings": json.loads(json.dumps(s))}
        if s["jobs"] > 1 and not self.report_only:
            self.train_in_parallel()
        self.results, self.started = [], 0
        report.update(self.analyse())
        report["complete"] = not any(r.get("in_progress") for r in self.results)
        report["total_seconds"] = round(time.perf_counter() - t0, 1)
        report["run_seconds_sum"] = round(sum(r["seconds"] + r.get("test_seconds", 0.0)
                                              for r in self.results), 1)
        return report

    def argv(self) -> list[str]:
        return list(getattr(self.args, "argv", None) or sys.argv[1:])

    def train_in_parallel(self) -> None:
        """``--jobs N``: every run not yet done, phase by phase, in N worker processes.

        Each run writes its JSON under ``--work`` as always, so ``analyse`` then
        finds every run done; what is printed and saved is as with one job.  The
        data are prepared here first, so that the workers read the decoded cache.
        """
        # 'spawn': a forked child must not inherit a CUDA context (or Numba's threads).
        ctx = multiprocessing.get_context("spawn")
        self.stop.event = ctx.Event()
        try:
            for label, specs in self.phases():
                todo = [sp for sp in specs if self.done(sp) is None]
                if todo:
                    self.run_all(ctx, todo, label)
        finally:
            self.stop.event = None

    def run_all(self, ctx, todo: list[dict], label: str | None) -> None:
        """The runs of ``todo`` in ``--jobs`` spawned workers; a stop signal stops them all."""
        jobs = self.s["jobs"]
        with self.stop.at_once():
            for spec in todo:
                self.prepared(spec)                   # decode once; the workers read the cache
        self.say(f"{label}: {len(todo)} run(s), {jobs} at a time" if label else
                 f"runs: {len(todo)}, {jobs} at a time")
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_start,
                                    initargs=(self.stop.event,)) as pool:
            for fut in cf.as_completed([pool.submit(_worker_run, type(self), self.args, self.s,
                                                    spec) for spec in todo]):
                fut.result()                          # a worker's error stops the study here
        if self.stop.reason:
            raise Stopped(f"stopped the runs in progress after their step, with checkpoints "
                          f"under {self.work}")

    # -- the report ------------------------------------------------------------------------
    def write(self, report: dict) -> None:
        """The report as JSON (and Markdown), its figure, and what it shows, on the terminal."""
        stem = self.stem_for(self.s["form"])
        paths = [self.out / f"{stem}.json"] + ([self.out / f"{stem}.md"] if self.table_file
                                               else []) + [self.out / f"{stem}.png"]
        if not report["complete"] and is_complete_report_of(paths[0], self.s,
                                                            SAME_IN_EVERY_STUDY + self.same_study):
            unfinished = sum(bool(r.get("in_progress")) for r in self.results)
            raise ValueError(f"{paths[0]} is the complete report of a study with these settings, "
                             f"and this one is unfinished ({unfinished} run(s) in progress or not "
                             "started): not replaced; give another --out to write it")
        report["figure"] = paths[-1].name
        report["table_markdown"] = self.format_table(report)
        shown = self.shown(report)
        if shown:
            report["what_was_shown"] = shown
        atomic_write_text(paths[0], json.dumps(report, indent=1))
        if self.table_file:
            atomic_write_text(paths[1], report["table_markdown"] + "\n")
        try:
            self.figure(report, paths[-1])            # written whole or not at all (viz)
        except ImportError as err:
            print(f"numpy-alexnet {self.name}: no figure ({err})", file=sys.stderr)
        print(report["table_markdown"])
        if shown:
            print()
            for line in shown:
                print(textwrap.fill(line, 100, subsequent_indent="  "))
        print(f"\n{self.form_label()} on {report['machine']}, backend {report['backend']}, "
              f"{report['total_seconds']:.0f} s (training runs {report['run_seconds_sum']:.0f} s); "
              f"wrote {', '.join(map(str, paths[:-1]))} and {paths[-1]}")

    def shown(self, report: dict) -> list[str]:
        """Plain sentences of what the report shows (none unless the study has them)."""
        return []


# --------------------------------------------------------------------------- #
# The command
# --------------------------------------------------------------------------- #
def run(study_class, args) -> dict:
    """``numpy-alexnet relu-vs-tanh`` or ``ablate``: the study of ``study_class``, reported."""
    study = study_class(args)
    files = ".json, .md and .png" if study.table_file else ".json and .png"
    print_start(study.name, study.s, study.start_lines()
                + [f"writes {study.out / study.stem_for(study.s['form'])}{files}"])
    if study.report_only and not study.has_runs():
        raise ValueError(f"--report-only: no runs of this study under {study.work} (none on this "
                         "data, finished or in progress); expected the --work folder the study "
                         "trains in (default OUT/work)")
    write_config(args.out, study.name, study.s)
    again = "numpy-alexnet " + shlex.join(study.argv())
    guard = None
    try:
        with stop_on_signals() as guard:
            study.stop.attach(guard)
            report = study.go()
            if study.stop.reason:                     # a signal while the last run was measured
                raise Stopped(f"stopped after the last run; the runs are kept under {study.work}")
    except Stopped as stop:
        raise RunError(f"{guard.name}: {stop}; run the same command to go on: {again}",
                       128 + guard.signum) from None
    except (SignalStop, SystemError) as err:
        stop = err if isinstance(err, SignalStop) else err.__context__
        if not isinstance(stop, SignalStop):          # a SystemError of its own: not ours
            raise
        when = "a second time" if study.stop.reason else "while the data were prepared"
        raise RunError(f"{stop} {when}: stopped at once; what was written before is whole; run "
                       f"the same command to go on: {again}", 128 + stop.signum) from None
    study.write(report)
    return report


# --------------------------------------------------------------------------- #
# Worker processes (--jobs)
# --------------------------------------------------------------------------- #
_worker_stop = RunStop()          # this worker's: the parent's stop event sets it


def _worker_start(event) -> None:
    """A worker ignores stop signals (a terminal's Ctrl-C reaches every process of the group);
    the parent's ``event`` stops its run instead, after the step, with a checkpoint."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)

    def wait():
        event.wait()
        _worker_stop.request_stop("the study was stopped")
    threading.Thread(target=wait, daemon=True).start()


def _worker_run(study_class, args, settings: dict, spec: dict) -> None:
    """One run of ``--jobs`` in a worker process (no progress bars: they would mix)."""
    study = study_class(argparse.Namespace(**dict(vars(args), quiet=True)), settings)
    study.stop, study.started = _worker_stop, None
    if _worker_stop.reason:
        return
    try:
        study.result(spec)
    except Stopped:
        pass                      # its checkpoint is written; the parent says how to go on
