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

The measurement window (``running_error.py``): ``--window IMAGES`` takes the
running error over each ``window // batch_size`` consecutive steps instead
(5,000 images: 39 steps of 128), and a run's "epochs" are then passes over the
training set in steps of ``window / training images`` (0.1 for 5,000 of
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

Forms (``FORMS``): ``--quick`` (minutes on a CPU, not the study: a 43% target
over windows of 5,000 images, from a GPU calibration, docs/replication.md),
``--reduced`` and the default full form.  ``runner.py`` runs, keeps, resumes
and reports the runs.
"""
from __future__ import annotations

import csv

from ..argtypes import comma_list, integer, number, one_of
from ..models import CIFAR_INPUT, build_model
from ..training.recipe import assemble, prepare_data
from ..viz import _first_below, relu_vs_tanh_plot
from .running_error import (WindowTrainer, epochs_at_target, epochs_to_target, window_epochs,
                            window_errors)
from .runner import Study
from .stats import mean_sd

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
    # The quick form: on all 50,000 images, measured every 5,000, ReLU reaches 43% several
    # times as fast as tanh, seed after seed (docs/results/relu_vs_tanh_quick_calibration.json,
    # docs/replication.md); a subset shrinks the effect.
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


# The settings of its own that make two reports the same study (the runner adds those of
# every study: the form, batch size, momentum and data).
STUDY_SETTINGS = ("regimes", "subset", "seeds", "cap", "target", "sweep", "sweep_epochs",
                  "lr_grid", "lr_relu", "lr_tanh", "stop_at_target", "window")


# --------------------------------------------------------------------------- #
# The ratio
# --------------------------------------------------------------------------- #
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
        spread = mean_sd(ratios)
        out.update(ratio_mean=spread["mean"], ratio_std=spread["sd"],
                   ratio_min=float(min(ratios)), ratio_max=float(max(ratios)))
    reached_r = [r for r in relu_epochs if r is not None]
    tanh_c = [c if t is None else t for t, c in zip(tanh_epochs, censored_at)]
    if reached_r and len(reached_r) == len(relu_epochs):
        out["ratio_of_means"] = mean_sd(tanh_c)["mean"] / mean_sd(reached_r)["mean"]
    return out


# --------------------------------------------------------------------------- #
# What the report says
# --------------------------------------------------------------------------- #
def paper_epochs_at(act: str, target: float) -> float | None:
    """Epochs the paper's curve of ``act`` takes to reach ``target`` (read off, interpolated)."""
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
    """The paper's Figure 1 beside this report's runs, a panel a regime, with what was shown."""
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


# --------------------------------------------------------------------------- #
# The study
# --------------------------------------------------------------------------- #
class ReluVsTanh(Study):
    """``numpy-alexnet relu-vs-tanh``: the runs of the sweep and at the chosen rates, per regime.

    A run's spec: regime, activation, lr, seed, epochs, kind ('sweep' or
    'run'), subset, target, stop_at_target, batch_size, momentum, data (and
    window, where the error is measured over windows of steps).
    """
    name, stem, title = "relu-vs-tanh", "relu_vs_tanh", "relu-vs-tanh (paper section 3.1, Figure 1)"
    out_help = "where relu_vs_tanh[_FORM].json and .png go (the committed ones: docs/results)"
    forms, same_study = FORMS, STUDY_SETTINGS
    form_flags = ("seeds", "cap", "subset", "sweep", "sweep_epochs", "stop_at_target", "regimes",
                  "target", "window")
    format_table, figure = staticmethod(format_table), staticmethod(figure)

    quick_help = ("minutes on a CPU: the cuda-convnet regime, all 50,000 images, the committed "
                  "rates, one seed, the running error over every 5,000 images, target 43%%, "
                  "cap 10 epochs")
    reduced_help = ("full data, the committed rates, one seed per activation and regime, "
                    "cap 60 epochs")

    @staticmethod
    def add_arguments(p) -> None:
        p.add_argument("--regimes",
                       type=comma_list(one_of(REGIMES), "regimes (cuda-convnet or unit)"),
                       default=None, help="comma list of cuda-convnet, unit (default: the form's)")
        p.add_argument("--seeds", type=integer(1), default=None,
                       help="runs per activation at the chosen rate")
        p.add_argument("--cap", type=integer(1), default=None, help="most epochs a run may take")
        p.add_argument("--target", type=number(above=0, below=1), default=None,
                       help="training error to reach (default: the form's: 0.25, the paper's; "
                            "0.43 for --quick)")
        p.add_argument("--window", type=integer(1), default=None,
                       help="measure the running training error over every WINDOW images "
                            "instead of every epoch (default: the form's: 5,000 for --quick, "
                            "else one epoch)")
        p.add_argument("--subset", type=integer(1), default=None,
                       help="training images (default all 50,000)")
        p.add_argument("--sweep", dest="sweep", action="store_true", default=None,
                       help="choose the rates by a sweep (default in the full form)")
        p.add_argument("--no-sweep", dest="sweep", action="store_false",
                       help="use the committed rates (or --lr-relu/--lr-tanh)")
        p.add_argument("--sweep-epochs", type=integer(1), default=None,
                       help="epochs per sweep run (5)")
        p.add_argument("--lr-grid", type=comma_list(number(above=0), "rates > 0"), default=None,
                       help="comma list of rates to sweep for both activations (default: the "
                            "regime's grid)")
        p.add_argument("--lr-relu", type=number(above=0), default=None,
                       help="ReLU rate without a sweep")
        p.add_argument("--lr-tanh", type=number(above=0), default=None,
                       help="tanh rate without a sweep")
        p.add_argument("--stop-at-target", dest="stop_at_target", action="store_true", default=None,
                       help="end a run at the epoch it reaches the target (default but in the full "
                            "form)")
        p.add_argument("--train-to-cap", dest="stop_at_target", action="store_false",
                       help="train every run to the cap (full curves in the figure)")

    @staticmethod
    def own_settings(args, f: dict) -> dict:
        if f["sweep"] and not f["sweep_epochs"]:
            f["sweep_epochs"] = 5
        if f["window"] is not None and f["window"] < args.batch_size:
            raise ValueError(f"--window {f['window']} is smaller than one batch ({args.batch_size} "
                             "images); expected at least --batch-size images")
        f.update(lr_grid=args.lr_grid, lr_relu=args.lr_relu, lr_tanh=args.lr_tanh,
                 weight_decay=0.0, augmentation="none", dropout="none")
        return f

    def start_lines(self) -> list[str]:
        s = self.s
        sub = f"{s['subset']:,} training images" if s["subset"] else "all training images"
        window = f"every {s['window']:,} images" if s["window"] else "every epoch"
        return [f"{s['form']} form: regimes {', '.join(s['regimes'])}; {sub}; {s['seeds']} "
                f"seed(s); cap {s['cap']} epochs",
                f"target {s['target']:.0%} running training error, measured {window}; "
                + ("rates by a sweep" if s["sweep"] else "the committed rates")
                + ("; each run stops at the target" if s["stop_at_target"] else "")]

    # -- the runs --------------------------------------------------------------------------
    def spec(self, regime, act, lr, seed, epochs, kind, stop_at_target) -> dict:
        """What a finished run under ``--work`` must match to be reused: not the backend
        (numpy, numba and cupy train the same run to float tolerance)."""
        spec = {"regime": regime, "activation": act, "lr": lr, "seed": seed, "epochs": epochs,
                "kind": kind, "subset": self.s["subset"], "target": self.s["target"],
                "stop_at_target": stop_at_target, "batch_size": self.s["batch_size"],
                "momentum": self.s["momentum"], "data": self.s["data"]}
        if self.s.get("window"):          # absent from the runs measured per epoch
            spec["window"] = self.s["window"]
        return spec

    def sweep_specs(self, regime: str, act: str) -> list[dict]:
        return [self.spec(regime, act, lr, 0, self.s["sweep_epochs"], "sweep", False)
                for lr in self.s["lr_grid"] or GRIDS[(regime, act)]]

    def seeded_specs(self, regime: str, act: str, lr: float) -> list[dict]:
        return [self.spec(regime, act, lr, seed, self.s["cap"], "run", self.s["stop_at_target"])
                for seed in range(self.s["seeds"])]

    def phases(self):
        """The sweeps, then the runs at the rates they chose (read once the sweeps are done)."""
        acts = [(regime, act) for regime in self.s["regimes"] for act in ACTIVATIONS]
        if self.s["sweep"]:
            yield "sweeps", [sp for ra in acts for sp in self.sweep_specs(*ra)]
        yield "runs at the chosen rates", [sp for ra in acts
                                           for sp in self.seeded_specs(*ra, self.rate(*ra)[0])]

    def plan(self) -> list[tuple[float, bool]]:
        """(epochs expected, whether only a bound) of every run, in the order ``analyse`` meets
        them: a sweep's epochs, the quick form's calibration where its settings apply, else
        at most the cap."""
        s, out = self.s, []
        quick = (s.get("window") == FORMS["quick"]["window"]
                 and s["target"] == FORMS["quick"]["target"] and not s["subset"])
        for regime in s["regimes"]:
            if s["sweep"]:
                out += [(s["sweep_epochs"], False) for act in ACTIVATIONS
                        for _ in self.sweep_specs(regime, act)]
            for act in ACTIVATIONS:
                guess = QUICK_EXPECTED_EPOCHS.get((regime, act)) if quick else None
                expected = (min(guess, s["cap"]), False) if guess else (s["cap"], True)
                out += [expected] * s["seeds"]
        return out

    def key(self, spec: dict) -> str:
        """The run's name under ``--work``: its settings, then ``key_tail``."""
        return (f"{spec['kind']}-{spec['regime']}-{spec['activation']}-lr{spec['lr']:g}"
                f"-seed{spec['seed']}-ep{spec['epochs']}{self.key_tail()}")

    def key_tail(self) -> str:
        """The end of every run's key: the subset, the window and the data's hash, so other
        data never meet it."""
        tag = (self.s["data"].get("sha256") or self.s["data"]["tree_sha256"])[:8]
        window = f"-w{self.s['window']}" if self.s.get("window") else ""
        return f"-n{self.s['subset'] or 'all'}{window}-data{tag}"

    def has_runs(self) -> bool:
        """Whether ``--work`` holds a run on this data, subset and window, finished or not."""
        tail = self.key_tail()
        return any(self.work.glob(f"*{tail}.json")) or any(self.work.glob(f"*{tail}/metrics.json"))

    def describe(self, spec: dict) -> str:
        return (f"{spec['regime']} {spec['activation']} lr {spec['lr']:g} seed {spec['seed']}"
                + (f" (sweep, {spec['epochs']} epochs)" if spec["kind"] == "sweep" else ""))

    def prepared(self, spec: dict) -> dict:
        """The data of the run's regime (loaded once; the cache makes it fast)."""
        regime = spec["regime"]
        if regime not in self.data:
            self.data[regime] = self.cifar10(prepare_data(
                self.args.data, CIFAR_INPUT, subset=self.s["subset"], augment="none",
                input_scale=REGIMES[regime]["input_scale"], progress=not self.quiet))
        return self.data[regime]

    def window_steps(self, train_images: int) -> int | None:
        """Steps per measurement window, or None to measure per epoch (no window, or one
        not smaller than the training set)."""
        w = self.s.get("window")
        return None if not w or w >= train_images else w // self.s["batch_size"]

    def trainer(self, spec: dict, run_dir, d: dict):
        """The run's net, placed on the backend, and its trainer (windowed when measured so)."""
        regime, act = spec["regime"], spec["activation"]
        net, device = self.place(build_model(f"cifar_fig1_{act}", 10, spec["seed"],
                                             REGIMES[regime]["init"]))
        options = self.run_options(spec, run_dir)
        log = options["log"]          # the trainer's ETA runs to the cap, not the target
        options["config"]["train_images"] = len(d["train"])
        options.update(target_error=spec["target"],
                       log=lambda m: log(m.replace("(ETA ", "(to the cap: ")))
        W = self.window_steps(len(d["train"]))
        if W is None:
            options.update(stop_at_target=spec["stop_at_target"])
        else:
            options.update(trainer_class=WindowTrainer, window_steps=W,
                           stop_in_window=spec["stop_at_target"])
        return assemble(net, d, batch_size=spec["batch_size"], seed=spec["seed"], lr=spec["lr"],
                        momentum=spec["momentum"], weight_decay=0.0, backend=self.s["backend"],
                        device=device, **options)

    def finished(self, spec: dict, tr, d: dict) -> bool:
        """A windowed run stopped at its target and cut off before its JSON was written has
        nothing left to train (the stop itself is not in the checkpoint)."""
        W = self.window_steps(len(d["train"]))
        return W is not None and spec["stop_at_target"] and self.windowed(
            [r["error"] for r in tr.step_log], W, len(d["train"]))["epochs_to_target"] is not None

    def measured(self, spec: dict, res: dict, tr, d: dict) -> dict:
        n_train, W = len(d["train"]), self.window_steps(len(d["train"]))
        res.update(epochs_to_target=epochs_to_target(res["train_error"], spec["target"]),
                   input_scale=d["scale"], train_images=n_train)
        if W is not None:
            res.update(self.windowed([r["error"] for r in tr.step_log], W, n_train))
        return res

    def windowed(self, step_errors: list, W: int, n_train: int) -> dict:
        """A run's measurement over windows of W steps: the curve, the epochs run and to target."""
        errs = window_errors(step_errors, W)
        eps = window_epochs(len(errs), self.s["window"], n_train)
        return {"window_steps": W, "window_error": errs, "window_epochs": eps,
                "epochs_run": eps[-1] if eps else 0,
                "epochs_to_target": epochs_at_target(eps, errs, self.s["target"])}

    def partial(self, spec: dict, res: dict, run_dir, metrics: dict) -> dict:
        """An unfinished run, per epoch or over the windows up to its last epoch's end."""
        res["epochs_to_target"] = epochs_to_target(res["train_error"], spec["target"])
        n_train = metrics.get("config", {}).get("train_images")
        W = self.window_steps(n_train) if n_train else None
        if W is not None:
            with open(run_dir / "steps.csv", newline="") as f:
                steps = [float(r["error"]) for r in csv.DictReader(f)
                         if int(r["step"]) <= res["steps"]]
            res.update(self.windowed(steps, W, n_train))
        return res

    def outcome(self, res: dict) -> str:
        if res["diverged"]:
            return f"diverged ({res['diverged']}) ({res['seconds']:.0f} s)"
        last = res["window_error"][-1] if res.get("window_error") else res["train_error"][-1]
        e2t, target = res["epochs_to_target"], res["spec"]["target"]
        return (f"training error {last:.4f} after {res['epochs_run']:g} epochs; "
                + (f"reached {target:.0%} at epoch {e2t:g}" if e2t else
                   f"did not reach {target:.0%}") + f" ({res['seconds']:.0f} s)")

    # -- the analysis ----------------------------------------------------------------------
    def rate(self, regime: str, act: str) -> tuple[float, list | None]:
        """(the rate of the seeded runs, the sweep's results or None without a sweep)."""
        if self.s["sweep"]:
            return self.sweep(regime, act)
        given = self.s["lr_relu"] if act == "relu" else self.s["lr_tanh"]
        return (float(given) if given is not None else CHOSEN[(regime, act)]), None

    def sweep(self, regime: str, act: str) -> tuple[float, list]:
        """The rate with the lowest training error after the sweep's epochs, and every rate's."""
        results = []
        for spec in self.sweep_specs(regime, act):
            r = self.result(spec)
            score = None if r["diverged"] or not r["train_error"] else r["train_error"][-1]
            results.append({"lr": spec["lr"], "train_error": r["train_error"],
                            "diverged": r["diverged"], "score": score, "seconds": r["seconds"]})
        ok = [x for x in results if x["score"] is not None]
        unstarted = [x["lr"] for x in results if not x["diverged"] and not x["train_error"]]
        if not ok and unstarted:                  # --report-only before the sweep trained
            raise ValueError(f"{regime}/{act}: no rate of the sweep has trained an epoch yet "
                             f"(not started: {unstarted}); run the study without --report-only")
        if not ok:
            raise ValueError(f"{regime}/{act}: every rate of the sweep diverged: "
                             f"{[x['lr'] for x in results]}")
        return min(ok, key=lambda x: x["score"])["lr"], results

    def analyse(self) -> dict:
        return {"is_full_study": self.s["form"] == "full",
                "regimes": {regime: self.regime_entry(regime) for regime in self.s["regimes"]}}

    def regime_entry(self, regime: str) -> dict:
        """One regime's rates, runs and the tanh/ReLU ratio."""
        s = self.s
        self.say(f"regime {regime}: {REGIMES[regime]['description']}")
        entry = {"description": REGIMES[regime]["description"], "plain": PLAIN[regime],
                 "sweep": {}, "chosen_lr": {}, "runs": []}
        for act in ACTIVATIONS:
            entry["chosen_lr"][act], results = self.rate(regime, act)
            if results is not None:
                entry["sweep"][act] = results
                self.say(f"  sweep {regime} {act}: chose lr {entry['chosen_lr'][act]:g}")
        per_act, censor = {act: [] for act in ACTIVATIONS}, []
        for act in ACTIVATIONS:
            for spec in self.seeded_specs(regime, act, entry["chosen_lr"][act]):
                r = self.result(spec)
                run = {"activation": act, "lr": spec["lr"], "seed": spec["seed"],
                       "reached_target": r["epochs_to_target"] is not None,
                       "in_progress": r.get("in_progress", False),
                       **{k: r[k] for k in ("train_error", "train_loss", "epochs_run",
                                            "epochs_to_target", "diverged", "seconds")},
                       **{k: r[k] for k in ("window_steps", "window_epochs", "window_error")
                          if k in r}}              # measured over windows of steps, not epochs
                entry["runs"].append(run)
                per_act[act].append(r["epochs_to_target"])
                if act == "tanh":   # a tanh run short of the target counts as its last epoch
                    censor.append(r["epochs_run"] if run["in_progress"] else s["cap"])
        if not self.report_only:
            entry["input_scale_factor"] = self.prepared(spec)["scale"]
        entry["summary"] = summarize(per_act["relu"], per_act["tanh"], s["cap"], censor)
        entry["complete"] = not any(r["in_progress"] for r in entry["runs"])
        return entry

    def shown(self, report: dict) -> list[str]:
        return what_was_shown(report)
