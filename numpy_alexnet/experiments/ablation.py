"""``numpy-alexnet ablate``: the paper's other CIFAR-10 claims, measured.

Which design choices of the paper matter, on CIFAR-10, at a scale this project
can train?  Each *ablation* trains a net with and without one feature, for
several seeds, and compares their test errors:

=========  =========================================================  ====================
name       without -> with                                             claimed by
=========  =========================================================  ====================
lrn        conv-local net without LRN (13%) -> with LRN (11%)          section 3.3
pooling    non-overlapping 2x2/2 max-pools -> overlapping 3x3/2        section 3.4
dropout    ``cifar_conv_fc`` -> ``cifar_conv_fc_dropout`` (0.5, fc3)   section 4.2
crops      centre 24x24 crop -> random 24x24 crops with reflections    section 4.1
pca        crops and reflections -> those plus PCA colour              section 4.1
views      one centre view -> 10 views at test (same trained nets)     section 4.1
=========  =========================================================  ====================

Every net but the dropout pair is cuda-convnet's conv-local net
(``cifar_conv_local_11pct`` and its variants in ``models.py``); the base run,
shared by lrn, pooling, crops, pca and views, is the 11% net with crops and
reflections.  The recipe is the conv-local files' (``recipes.CONV_LOCAL_RECIPE``):
raw 0-255 pixels minus the mean image, 24x24 random crops with reflections,
batch 128, momentum 0.9, weight decay 0.004 on the local and fc weights only
(``decay_mults``), the test error on 10 views (4 corners, the centre, and
their reflections; softmax averaged); biases learn at twice their weights'
rate, as the files' epsB = 2 * epsW (``bias_lr_mult``, in every run's spec).
Deviations from that recipe, named: far fewer epochs than cuda-convnet's
~470 (the forms below), the rate divided by 10 at the form's ``milestones``
(cuda-convnet: for the last 10 and 20 epochs); and the training set is all of
it (or a subset) from the start, where cuda-convnet held out 10,000 images
for its first 300 epochs.

Runs are paired by seed: seed i of every configuration starts from its own
weights drawn with seed i and sees the same batches in the same order (the
same subset, the same shuffles, the same crops and reflections where the
augmentation is the same).  Per ablation the report gives the test error of
each arm (mean and standard deviation over seeds) and the gain, error
without minus error with, per seed, with its mean and a 95% t-interval over
seeds (``paired_difference``), beside the gain the paper claims and the one
the 2012 code logged (``ABLATIONS``; most of those are ILSVRC numbers, named
as such).

Forms (``FORMS``): ``--quick`` (minutes on a CPU: the machinery working, no
finding), ``--reduced`` (21 runs of 16,000 images for 8 epochs, a CPU's
work with ``--backend numba``: the direction of large effects at best; its
time is in docs/ablation.md) and the default full form (all 50,000 images, 100
epochs: a GPU's work).  ``runner.py`` runs, keeps, resumes and reports the
runs; a run's key holds a hash of its whole spec, the data's SHA-256 included.
"""
from __future__ import annotations

import hashlib
import json
import time

from ..argtypes import comma_list, integer, number, one_of
from ..data import BatchIterator, EvalTransform
from ..models import CONV_LOCAL_INPUT, build_model
from ..recipes import CONV_FC_RECIPE, CONV_LOCAL_RECIPE, bias_lr_mults, bias_rate
from ..training.recipe import assemble, eval_batch_size, prepare_data
from ..training.trainer import FixedSchedule, evaluate
from ..viz import _figure, _save
from .runner import Study
from .stats import mean_sd, paired_difference

# Training configurations: a named model and an augmentation ('none': the centre
# 24x24 crop; 'flip': random 24x24 crops with reflections; 'paper': those plus
# PCA colour).
CONFIGS = {
    "lrn":        dict(model="cifar_conv_local_11pct", augment="flip"),      # the base run
    "no-lrn":     dict(model="cifar_conv_local_13pct", augment="flip"),
    "pool2":      dict(model="cifar_conv_local_11pct_pool2", augment="flip"),
    "no-aug":     dict(model="cifar_conv_local_11pct", augment="none"),
    "pca":        dict(model="cifar_conv_local_11pct", augment="paper"),
    "fc":         dict(model="cifar_conv_fc", augment="flip"),
    "fc-dropout": dict(model="cifar_conv_fc_dropout", augment="flip"),
}

# What is compared, and what was claimed.  An arm is (configuration, test views).
# A gain is the test error without the feature minus the error with it, in
# percentage points: positive means the feature helps.  The claims are the
# paper's text and the 2012 code's own logs (its layer-params files); None
# where there is no number.
ABLATIONS = {
    "lrn": {
        "title": "local response normalization (conv-local net)",
        "without": ("no-lrn", "ten"), "with": ("lrn", "ten"),
        "paper": {"gain": 2.0, "on": "CIFAR-10 test error: 13% without, 11% with (section 3.3)"},
        "code": {"gain": 1.37, "on": "ILSVRC-2012 validation top-1, 10 views: 42.03% without "
                                     "(layer-params-148), 40.66% with"},
    },
    "pooling": {
        "title": "overlapping 3x3/2 against non-overlapping 2x2/2 max-pooling",
        "without": ("pool2", "ten"), "with": ("lrn", "ten"),
        "paper": {"gain": 0.4, "on": "ILSVRC top-1 (section 3.4; top-5 0.3)"},
        "code": {"gain": 0.40, "on": "ILSVRC-2012 validation top-1, 10 views: 41.06% with 2x2/2 "
                                     "(layer-params-147), 40.66% with 3x3/2"},
    },
    "dropout": {
        "title": "dropout 0.5 on the hidden fc layer (cifar_conv_fc)",
        "without": ("fc", "ten"), "with": ("fc-dropout", "ten"),
        "paper": {"gain": None, "on": "no number: without dropout the net 'exhibits substantial "
                                      "overfitting' (section 4.2)"},
        "code": {"gain": None, "on": "not logged"},
    },
    "crops": {
        "title": "random crops with reflections against the centre crop",
        "without": ("no-aug", "ten"), "with": ("lrn", "ten"),
        "paper": {"gain": None, "on": "no number: without it 'substantial overfitting' "
                                      "(section 4.1)"},
        "code": {"gain": None, "on": "not logged"},
    },
    "pca": {
        "title": "PCA colour on top of crops with reflections",
        "without": ("lrn", "ten"), "with": ("pca", "ten"),
        "paper": {"gain": 1.0, "on": "ILSVRC top-1, 'by over 1%' (section 4.1): a lower bound"},
        "code": {"gain": None, "on": "not logged"},
    },
    "views": {
        "title": "10 views against the centre view at test (the base nets)",
        "without": ("lrn", "center"), "with": ("lrn", "ten"),
        "paper": {"gain": None, "on": "no single-net number (section 4.1)"},
        "code": {"gain": 1.55, "on": "ILSVRC-2010 test top-1 of the paper's net: 39.02% centre "
                                     "crop, 37.47% 10 views (layer-params-145-2010)"},
    },
}

# cuda-convnet trained the conv-local nets for about 470 epochs (300 + 150 + 10 + 10).
CUDA_CONVNET_EPOCHS = 470

FORMS = {
    "full":    dict(subset=None, test_subset=None, epochs=100, milestones=(80, 90), seeds=3,
                    note="all 50,000 training and 10,000 test images, 100 epochs (80 at the "
                         "rate, 10 at a tenth, 10 at a hundredth) against cuda-convnet's ~470, "
                         "3 seeds: a GPU's work. It can test the claims at CIFAR-10 scale, "
                         "short of cuda-convnet's training length; the ILSVRC claims are "
                         "compared with CIFAR-10 gains, which need not be the same size"),
    "reduced": dict(subset=16000, test_subset=4000, epochs=8, milestones=(6,), seeds=3,
                    note="16,000 training images, 8 epochs (the last 2 at a tenth of the "
                         "rate), 4,000 test images, 3 seeds: a CPU's work with --backend "
                         "numba. Far from convergence (the nets end at 39-47% test error "
                         "where the full recipe reaches 11-13%), so it cannot show what "
                         "regularizers (dropout, crops, PCA colour) do against long "
                         "training's overfitting; at best it shows the direction of large "
                         "effects, and its intervals say how little 3 seeds pin down"),
    "quick":   dict(subset=1000, test_subset=200, epochs=2, milestones=(), seeds=2,
                    note="1,000 training images, 2 epochs, 200 test images, 2 seeds: minutes "
                         "on a CPU, to watch the machinery work. It shows nothing about the "
                         "claims: the nets have barely left chance, and 2 seeds give a t-interval "
                         "with 1 degree of freedom"),
}

# The settings of its own that make two reports the same study (the runner adds those of
# every study: the form, batch size, momentum and data).
STUDY_SETTINGS = ("ablations", "subset", "test_subset", "seeds", "epochs", "milestones", "lr",
                  "bias_lr_mult", "weight_decay")


def changed_settings(settings: dict) -> dict:
    """The form's settings that the command changed (--subset, --epochs, ...), as {name: value}."""
    form = FORMS[settings["form"]]
    keys = ("subset", "test_subset", "epochs", "milestones", "seeds")
    return {k: settings[k] for k in keys
            if json.dumps(settings[k]) != json.dumps(form[k])}


def form_label(settings: dict) -> str:
    """'full form', or 'full form with subset 25000, epochs 8 (not the full study)'."""
    changed = changed_settings(settings)
    if not changed:
        return f"{settings['form']} form"

    def shown(v):
        if isinstance(v, (list, tuple)):
            return ",".join(map(str, v)) or "none"
        return str(v)
    told = ", ".join(f"{k.replace('_', '-')} {shown(v)}" for k, v in changed.items())
    return f"{settings['form']} form with {told} (not the form as defined)"


def configs_needed(ablations) -> list[str]:
    """The training configurations the chosen ablations compare, in CONFIGS order."""
    used = {ABLATIONS[a][side][0] for a in ablations for side in ("without", "with")}
    return [c for c in CONFIGS if c in used]


def decay_mults_for(model: str) -> dict:
    """The recipe's weight-decay multipliers of ``model`` (no decay on convs and biases)."""
    recipe = CONV_FC_RECIPE if model.startswith("cifar_conv_fc") else CONV_LOCAL_RECIPE
    return dict(recipe["decay_mults"])


def test_errors(net, d: dict, batch_size: int, mover=None) -> dict:
    """Top-1 and top-5 test errors and loss of ``net`` on the centre view and on 10 views."""
    out = {}
    for view in ("center", "ten"):
        tf = EvalTransform(d["mean_image"], CONV_LOCAL_INPUT, view, d["scale"])
        batches = BatchIterator(d["x_val"], d["y_val"], eval_batch_size(batch_size, view),
                                shuffle=False, transform=tf, to_device=mover)
        res = evaluate(net, batches, chunk=batch_size)
        out[view] = {"top1": res["top1"], "top5": res.get("top5"), "loss": res["loss"]}
    return out


def summarize_ablation(name: str, runs: dict) -> dict:
    """One ablation's arms (test errors in %, per seed, mean, sd) and the paired gain."""
    a = ABLATIONS[name]
    arms = {}
    for side in ("without", "with"):
        config, view = a[side]
        errs = [None if r["test"] is None else 100.0 * r["test"][view]["top1"]
                for r in runs[config]]
        arms[side] = {"config": config, "model": CONFIGS[config]["model"],
                      "augment": CONFIGS[config]["augment"], "view": view, "errors_pct": errs,
                      "seeds_done": sum(e is not None for e in errs),
                      **{k: v for k, v in mean_sd(errs).items() if k != "n"}}
    return {"title": a["title"], "without": arms["without"], "with": arms["with"],
            "gain_pct_points": paired_difference(arms["without"]["errors_pct"],
                                                 arms["with"]["errors_pct"]),
            "paper": a["paper"], "code_2012": a["code"]}


def _arm_cell(arm: dict, seeds: int) -> str:
    if arm["mean"] is None:
        return "not yet"
    sd = f" ± {arm['sd']:.2f}" if arm["sd"] is not None else ""
    part = f" ({arm['seeds_done']} of {seeds} seeds)" if arm["seeds_done"] < seeds else ""
    return f"{arm['mean']:.2f}{sd}{part}"


def _arm_label(arm: dict) -> str:
    view = "10 views" if arm["view"] == "ten" else "centre"
    return f"{arm['model']}, {arm['augment']}, {view}"


# --------------------------------------------------------------------------- #
# The study
# --------------------------------------------------------------------------- #
class Ablation(Study):
    """``numpy-alexnet ablate``: every configuration the chosen ablations compare, per seed.

    A run's spec: config, model, augment, seed, epochs, milestones, subset,
    test_subset, lr, bias_lr_mult, momentum, weight_decay, decay_mults,
    batch_size, input_size, input_scale, data.
    """
    name, stem = "ablate", "ablation"
    title = "ablate (paper sections 3.3, 3.4, 4.1, 4.2 on CIFAR-10)"
    out_help = "where ablation[_FORM].json, .png and .md go"
    quick_help = ("1,000 images, 2 epochs, 200 test images, 2 seeds: minutes on a CPU; shows the "
                  "machinery, not the claims")
    reduced_help = ("16,000 images, 8 epochs, 4,000 test images, 3 seeds: a CPU's work with "
                    "--backend numba (78 minutes on 2 cores, docs/ablation.md)")
    table_file = True
    forms, same_study = FORMS, STUDY_SETTINGS
    form_flags = ("seeds", "epochs", "subset", "test_subset")

    @staticmethod
    def add_arguments(p) -> None:
        p.add_argument("--ablations", type=comma_list(one_of(ABLATIONS),
                                                      f"ablations ({', '.join(ABLATIONS)})"),
                       default=None, help=f"comma list of {', '.join(ABLATIONS)} (default: all)")
        p.add_argument("--seeds", type=integer(1), default=None,
                       help="runs per configuration (default: the form's)")
        p.add_argument("--epochs", type=integer(1), default=None,
                       help="epochs a run (default: the form's)")
        p.add_argument("--milestones", type=comma_list(integer(1), "epochs >= 1"), default=None,
                       help="epochs after which the rate is divided by 10 (default: the form's, "
                            "those before --epochs)")
        p.add_argument("--subset", type=integer(1), default=None,
                       help="training images (default: the form's; the full form all 50,000)")
        p.add_argument("--test-subset", type=integer(1), default=None,
                       help="test images (default: the form's; the full form all 10,000)")
        p.add_argument("--lr", type=number(above=0), default=None,
                       help="learning rate of the weights, epsW (default 0.001, the recipe's); "
                            "biases learn at twice it, as the recipe's epsB = 2 * epsW")
        p.add_argument("--weight-decay", type=number(at_least=0), default=None,
                       help="weight decay of the decayed weights (default 0.004, the recipe's)")

    @staticmethod
    def own_settings(args, f: dict) -> dict:
        if args.milestones is not None:
            bad = [m for m in args.milestones if m >= f["epochs"]]
            if bad:
                raise ValueError(f"--milestones {','.join(map(str, args.milestones))}: each must be "
                                 f"an epoch before the last, 1 to {f['epochs'] - 1} with "
                                 f"{f['epochs']} epochs; got {bad}")
            f["milestones"] = tuple(sorted(set(args.milestones)))
        else:
            f["milestones"] = tuple(m for m in f["milestones"] if m < f["epochs"])
        f.update(ablations=tuple(args.ablations or ABLATIONS),
                 lr=args.lr if args.lr is not None else CONV_LOCAL_RECIPE["lr_weights"],
                 bias_lr_mult=bias_rate(CONV_LOCAL_RECIPE),
                 weight_decay=(args.weight_decay if args.weight_decay is not None
                               else CONV_LOCAL_RECIPE["weight_decay"]), input_scale="raw")
        return f

    def form_label(self) -> str:
        return form_label(self.s)

    def start_lines(self) -> list[str]:
        s = self.s
        return [f"{self.form_label()}: ablations {', '.join(s['ablations'])}; {s['seeds']} "
                f"seed(s), {s['epochs']} epochs",
                f"{self.form_label()}; the {s['form']} form as defined: {FORMS[s['form']]['note']}"]

    # -- the runs --------------------------------------------------------------------------
    def spec(self, config: str, seed: int) -> dict:
        """Everything that makes a run what it is; a finished run is reused only if it matches.

        The backend is not part of it (numpy, numba and cupy train the same run
        to float tolerance), nor --jobs.
        """
        s, c = self.s, CONFIGS[config]
        return {"config": config, "model": c["model"], "augment": c["augment"], "seed": seed,
                "epochs": s["epochs"], "milestones": list(s["milestones"]),
                "subset": s["subset"], "test_subset": s["test_subset"], "lr": s["lr"],
                "bias_lr_mult": s["bias_lr_mult"], "momentum": s["momentum"],
                "weight_decay": s["weight_decay"], "decay_mults": decay_mults_for(c["model"]),
                "batch_size": s["batch_size"], "input_size": CONV_LOCAL_INPUT,
                "input_scale": s["input_scale"], "data": s["data"]}

    def specs(self) -> list[dict]:
        """Every run: each configuration the ablations need, each seed."""
        return [self.spec(config, seed) for config in configs_needed(self.s["ablations"])
                for seed in range(self.s["seeds"])]

    def key(self, spec: dict) -> str:
        """The run's name under ``--work``: readable, then a hash of its whole spec."""
        h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
        return f"{spec['config']}-seed{spec['seed']}-{h.hexdigest()[:12]}"

    def describe(self, spec: dict) -> str:
        return f"{spec['config']} seed {spec['seed']}"

    def prepared(self, spec: dict) -> dict:
        """The data with the run's augmentation (loaded once; the cache makes it fast)."""
        augment = spec["augment"]
        if augment not in self.data:
            self.data[augment] = self.cifar10(prepare_data(
                self.args.data, CONV_LOCAL_INPUT, subset=self.s["subset"],
                val_subset=self.s["test_subset"], input_scale="raw", augment=augment,
                eval_crops="ten", val_split="test", progress=not self.quiet))
        return self.data[augment]

    def trainer(self, spec: dict, run_dir, d: dict):
        """The run's net on the backend, and its trainer: momentum SGD with the recipe's bias
        rate and decay multipliers, the rate divided by 10 at the milestones.  Testing is the
        study's own (centre and 10 views), after training."""
        net, device = self.place(build_model(spec["model"], 10, spec["seed"]))
        return assemble(net, d, batch_size=spec["batch_size"], seed=spec["seed"], lr=spec["lr"],
                        momentum=spec["momentum"], weight_decay=spec["weight_decay"],
                        lr_mults=bias_lr_mults(net, spec["bias_lr_mult"]),
                        decay_mults=spec["decay_mults"], backend=self.s["backend"], device=device,
                        schedule=FixedSchedule(spec["milestones"]),
                        **self.run_options(spec, run_dir))

    def measured(self, spec: dict, res: dict, tr, d: dict) -> dict:
        """The run's test errors, on the centre view and on 10 views (none if it diverged)."""
        t0 = time.perf_counter()
        res.update(key=self.key(spec), test=None if res["diverged"] else
                   test_errors(tr.net, d, spec["batch_size"], self.mover()))
        res["test_seconds"] = round(time.perf_counter() - t0, 1)
        return res

    def partial(self, spec: dict, res: dict, run_dir, metrics: dict) -> dict:
        return dict(res, key=self.key(spec), test=None, test_seconds=0.0)

    def outcome(self, res: dict) -> str:
        if res["diverged"]:
            return f"diverged ({res['diverged']})"
        test = res["test"]
        return (f"test error {test['center']['top1']:.4f} centre, {test['ten']['top1']:.4f} "
                f"10 views after {res['epochs_run']} epochs ({res['seconds']:.0f} s training, "
                f"{res['test_seconds']:.0f} s test)")

    # -- the analysis ----------------------------------------------------------------------
    def analyse(self) -> dict:
        s, runs = self.s, {}
        for config in configs_needed(s["ablations"]):
            self.say(f"{config}: {CONFIGS[config]['model']}, augmentation "
                     f"{CONFIGS[config]['augment']}")
            runs[config] = [self.result(self.spec(config, seed)) for seed in range(s["seeds"])]
        keep = ("key", "train_error", "train_loss", "epochs_run", "diverged", "test", "seconds",
                "test_seconds")
        out = {"overrides": changed_settings(s), "form_label": self.form_label(),
               "is_full_study": s["form"] == "full" and not changed_settings(s),
               "what_it_can_show": FORMS[s["form"]]["note"],
               "cuda_convnet_epochs": CUDA_CONVNET_EPOCHS,
               "configs": {config: dict(CONFIGS[config], runs=[
                   {k: r.get(k) for k in keep} | {"seed": seed,
                                                   "in_progress": r.get("in_progress", False)}
                   for seed, r in enumerate(rs)]) for config, rs in runs.items()},
               "ablations": {name: summarize_ablation(name, runs) for name in s["ablations"]}}
        if self.data:                             # how many images the runs saw (not --report-only)
            d = next(iter(self.data.values()))
            out["images"] = {"train": int(len(d["y_train"])), "test": int(len(d["y_val"]))}
        return out

    # -- the report ------------------------------------------------------------------------
    @staticmethod
    def format_table(report: dict) -> str:
        """The gains as a Markdown table beside the paper's and the 2012 code's, and the claims."""
        seeds = report["settings"]["seeds"]
        lines = ["| ablation | without | test error % | with | test error % | gain, points "
                 "(95% interval) | paper | 2012 code |", "|---|---|---|---|---|---|---|---|"]
        for name, e in report["ablations"].items():
            g = e["gain_pct_points"]
            if g["mean"] is None:
                gain = "not yet"
            else:
                ci = (f" ({g['ci95'][0]:+.2f} to {g['ci95'][1]:+.2f})" if g["ci95"] else
                      " (one seed: no interval)")
                gain = f"{g['mean']:+.2f}{ci}"

            def claim(c):
                return "-" if c["gain"] is None else f"{c['gain']:+.2f}"
            lines.append(f"| {name} | {_arm_label(e['without'])} | {_arm_cell(e['without'], seeds)} | "
                         f"{_arm_label(e['with'])} | {_arm_cell(e['with'], seeds)} | {gain} | "
                         f"{claim(e['paper'])} | {claim(e['code_2012'])} |")
        lines.append("")
        lines.append("Gain: test error without the feature minus with it, per seed (paired), mean and "
                     "95% t-interval over seeds; positive means the feature helps. Claims:")
        for name, e in report["ablations"].items():
            lines.append(f"- {name}: paper: {e['paper']['on']}; 2012 code: {e['code_2012']['on']}.")
        return "\n".join(lines)

    @staticmethod
    def figure(report: dict, path) -> None:
        """Left: each arm's test error per seed and its mean; right: the gains, their 95%
        intervals, and the paper's and the 2012 code's claims."""
        names = list(report["ablations"])
        fig = _figure((12, 1.1 * len(names) + 1.8))
        left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        ticks, labels = [], []
        for i, name in enumerate(names):
            e = report["ablations"][name]
            for j, side in enumerate(("without", "with")):
                y = -(3 * i + j)
                arm = e[side]
                errs = [v for v in arm["errors_pct"] if v is not None]
                left.plot(errs, [y] * len(errs), "o", color="C0" if side == "with" else "C3",
                          alpha=0.5, ms=4)
                if arm["mean"] is not None:
                    left.plot([arm["mean"]], [y], "|", color="k", ms=14, mew=2)
                ticks.append(y)
                labels.append(f"{name}: {side} ({arm['config']}, "
                              f"{'10 views' if arm['view'] == 'ten' else 'centre'})")
        left.set_yticks(ticks, labels, fontsize=8)
        left.set_xlabel("test error (%): seeds (dots), mean (bar)")
        for i, name in enumerate(names):
            e, y = report["ablations"][name], -i
            g = e["gain_pct_points"]
            right.plot(g["gains"], [y] * len(g["gains"]), "o", color="C0", alpha=0.5, ms=4)
            if g["ci95"]:
                right.plot(g["ci95"], [y, y], "-", color="C0", lw=2)
            if g["mean"] is not None:
                right.plot([g["mean"]], [y], "|", color="C0", ms=14, mew=2)
            if e["paper"]["gain"] is not None:
                right.plot([e["paper"]["gain"]], [y + 0.2], "D", color="C2", ms=6)
            if e["code_2012"]["gain"] is not None:
                right.plot([e["code_2012"]["gain"]], [y - 0.2], "^", color="C1", ms=7)
        right.axvline(0, color="0.6", lw=1)
        right.set_yticks([-i for i in range(len(names))], names)
        right.set_xlabel("gain (points): seeds, mean and 95% interval (blue); paper (green "
                         "diamond), 2012 code (orange triangle)", fontsize=8)
        s = report["settings"]
        n = report.get("images", {}).get("train", s["subset"])
        sub = f"{n:,} training images" if n else "all training images"
        label = form_label(s)
        fig.suptitle(f"Ablations on CIFAR-10, {label}"
                     + ("" if report["is_full_study"] or "not the form" in label
                        else " (not the full study)")
                     + f": {sub}, {s['epochs']} epochs, {s['seeds']} seeds, backend {report['backend']}",
                     fontsize=10)
        _save(fig, path)
