"""``numpy-alexnet ablate``: the paper's other CIFAR-10 claims, measured (issue 17).

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
reflections.  The recipe is the conv-local files' (``CONV_LOCAL_RECIPE``):
raw 0-255 pixels minus the mean image, 24x24 random crops with reflections,
batch 128, momentum 0.9, weight decay 0.004 on the local and fc weights only
(``decay_mults``), the test error on 10 views (4 corners, the centre, and
their reflections; softmax averaged).  Deviations from that recipe, named:
one learning rate for weights and biases (cuda-convnet gives biases twice the
weights' rate; ``MomentumSGD`` has per-layer, not per-parameter, rates); far
fewer epochs than cuda-convnet's ~470 (the forms below), the rate divided by
10 at the form's ``milestones`` (cuda-convnet: for the last 10 and 20 epochs);
and the training set is all of it (or a subset) from the start, where
cuda-convnet held out 10,000 images for its first 300 epochs.

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
finding), ``--reduced`` (within 2 hours on a 2-core CPU with ``--backend
numba``: 21 runs of 16,000 images for 8 epochs, planned at about 70 minutes
from runs of 0.18 s a step measured on an idle 2-core AMD EPYC: the direction
of large effects at best) and the default full form (all 50,000 images, 100
epochs: a GPU's work).  Each finished run is kept as
JSON under ``--work``, keyed by its settings and the data's SHA-256, so a
study re-run reuses what is done; a run cut off midway goes on from its last
checkpoint.  ``--report-only`` writes the report of the runs so far, never over
a complete report of the same settings.  The JSON report, the figure and the
markdown table are written atomically.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ..argtypes import integer, number

# --------------------------------------------------------------------------- #
# What this study shares: the run recipe (preparing the data, placing a net on
# a backend, assembling optimizer and trainer), models by name, and the
# relu-vs-tanh study's generic helpers.
# --------------------------------------------------------------------------- #
from ..models import build_model
from .recipe import (assemble, data_identity, library_versions, mover, place, prepare_data,
                     print_start)
from .study import add_run_arguments, comma_list, machine_description, one_of

# --------------------------------------------------------------------------- #
# The study as data
# --------------------------------------------------------------------------- #
INPUT_SIZE = 24            # the conv-local recipe's random 24x24 crops of the 32x32 images

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
                         "rate), 4,000 test images, 3 seeds: about 70 minutes on an idle "
                         "2-core CPU with --backend numba, under 2 hours on a slower or "
                         "busier one (measured: 78 minutes, partly beside other work). Far from "
                         "convergence (the nets end at 39-47% test error "
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

# Two-sided 95% quantiles of Student's t, t(0.975; df) for df = 1..30.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


# --------------------------------------------------------------------------- #
# The statistics
# --------------------------------------------------------------------------- #
def t_quantile_975(df: int) -> float:
    """t(0.975; df): the table for df <= 30, Cornish-Fisher's expansion beyond (error < 1e-3)."""
    if df < 1:
        raise ValueError(f"a t-interval needs at least 1 degree of freedom (2 seeds), got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_sd(values: list) -> dict:
    """Mean and sample standard deviation (n - 1) of the values that are not None."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return {"n": int(v.size), "mean": float(v.mean()) if v.size else None,
            "sd": float(v.std(ddof=1)) if v.size > 1 else None}


def paired_difference(without: list, with_: list) -> dict:
    """The gain ``without[i] - with_[i]`` per seed i, its mean and 95% t-interval.

    Seeds where either arm has no value (a run diverged or has not finished)
    are left out; ``seeds`` says which were used.  The interval is
    mean +- t(0.975; n - 1) * sd / sqrt(n) over the n per-seed gains (a
    paired t-interval); it needs n >= 2.
    """
    seeds = [i for i, (a, b) in enumerate(zip(without, with_)) if a is not None and b is not None]
    d = np.asarray([without[i] - with_[i] for i in seeds], dtype=np.float64)
    out = {"seeds": seeds, "gains": d.tolist(), "n": len(seeds), "mean": None, "sd": None,
           "ci95": None}
    if len(seeds) >= 1:
        out["mean"] = float(d.mean())
    if len(seeds) >= 2:
        sd = float(d.std(ddof=1))
        half = t_quantile_975(len(seeds) - 1) * sd / math.sqrt(len(seeds))
        out.update(sd=sd, ci95=[out["mean"] - half, out["mean"] + half])
    return out


# --------------------------------------------------------------------------- #
# The command line
# --------------------------------------------------------------------------- #
def add_arguments(p) -> None:
    p.add_argument("--data", required=True, help="CIFAR-10, e.g. ../shared/data/cifar10-jpeg.tar.gz")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--quick", action="store_const", dest="form", const="quick",
                      help="1,000 images, 2 epochs, 200 test images, 2 seeds: minutes on a CPU; "
                           "shows the machinery, not the claims")
    form.add_argument("--reduced", action="store_const", dest="form", const="reduced",
                      help="16,000 images, 8 epochs, 4,000 test images, 3 seeds: about 70 minutes "
                           "on an idle 2-core CPU with --backend numba, under 2 hours on a "
                           "slower one")
    p.set_defaults(form="full")
    p.add_argument("--ablations", type=comma_list(one_of(ABLATIONS), f"ablations ({', '.join(ABLATIONS)})"),
                   default=None, help=f"comma list of {', '.join(ABLATIONS)} (default: all)")
    p.add_argument("--seeds", type=integer(1), default=None, help="runs per configuration (default: the form's)")
    p.add_argument("--epochs", type=integer(1), default=None, help="epochs a run (default: the form's)")
    p.add_argument("--milestones", type=comma_list(integer(1), "epochs >= 1"), default=None,
                   help="epochs after which the rate is divided by 10 (default: the form's, those "
                        "before --epochs)")
    p.add_argument("--subset", type=integer(1), default=None,
                   help="training images (default: the form's; the full form all 50,000)")
    p.add_argument("--test-subset", type=integer(1), default=None,
                   help="test images (default: the form's; the full form all 10,000)")
    p.add_argument("--lr", type=number(above=0), default=None,
                   help="learning rate of weights and biases (default 0.001, the recipe's "
                        "weight rate)")
    p.add_argument("--weight-decay", type=number(at_least=0), default=None,
                   help="weight decay of the decayed weights (default 0.004, the recipe's)")
    p.add_argument("--batch-size", type=integer(1), default=128)
    p.add_argument("--momentum", type=number(at_least=0, below=1), default=0.9)
    add_run_arguments(p, "runs/ablation", "where ablation[_FORM].json, .png and .md go")


def settings_from_args(args) -> dict:
    from ..recipes import CONV_LOCAL_RECIPE
    f = {k: v for k, v in FORMS[args.form].items() if k != "note"}
    for k in ("seeds", "epochs", "subset", "test_subset"):
        v = getattr(args, k, None)
        if v is not None:
            f[k] = v
    if args.milestones is not None:
        bad = [m for m in args.milestones if m >= f["epochs"]]
        if bad:
            raise ValueError(f"--milestones {','.join(map(str, args.milestones))}: each must be "
                             f"an epoch before the last, 1 to {f['epochs'] - 1} with "
                             f"{f['epochs']} epochs; got {bad}")
        f["milestones"] = tuple(sorted(set(args.milestones)))
    else:
        f["milestones"] = tuple(m for m in f["milestones"] if m < f["epochs"])
    f["ablations"] = tuple(args.ablations or ABLATIONS)
    f.update(form=args.form, batch_size=args.batch_size, momentum=args.momentum,
             lr=args.lr if args.lr is not None else CONV_LOCAL_RECIPE["lr_weights"],
             weight_decay=(args.weight_decay if args.weight_decay is not None
                           else CONV_LOCAL_RECIPE["weight_decay"]),
             input_scale="raw", backend=args.backend, devices=args.devices, jobs=args.jobs,
             data=data_identity(args.data))
    return f


def overrides(settings: dict) -> dict:
    """The form's settings that the command changed (--subset, --epochs, ...), as {name: value}."""
    form = FORMS[settings["form"]]
    keys = ("subset", "test_subset", "epochs", "milestones", "seeds")
    return {k: settings[k] for k in keys
            if json.dumps(settings[k]) != json.dumps(form[k])}


def form_label(settings: dict) -> str:
    """'full form', or 'full form with subset 25000, epochs 8 (not the full study)'."""
    changed = overrides(settings)
    if not changed:
        return f"{settings['form']} form"
    def shown(v):
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    told = ", ".join(f"{k.replace('_', '-')} {shown(v)}" for k, v in changed.items())
    return f"{settings['form']} form with {told} (not the form as defined)"


def configs_needed(ablations) -> list[str]:
    """The training configurations the chosen ablations compare, in CONFIGS order."""
    used = {ABLATIONS[a][side][0] for a in ablations for side in ("without", "with")}
    return [c for c in CONFIGS if c in used]


def decay_mults_for(model: str) -> dict:
    """The recipe's weight-decay multipliers of ``model`` (no decay on convs and biases)."""
    from ..recipes import CONV_FC_RECIPE, CONV_LOCAL_RECIPE
    recipe = CONV_FC_RECIPE if model.startswith("cifar_conv_fc") else CONV_LOCAL_RECIPE
    return dict(recipe["decay_mults"])


# --------------------------------------------------------------------------- #
# The runs
# --------------------------------------------------------------------------- #
class _Ablation:
    def __init__(self, args, settings):
        self.args, self.s = args, settings
        self.out = Path(args.out)
        self.work = Path(args.work) if args.work else self.out / "work"
        self.data: dict = {}

    def say(self, msg):
        print(msg, file=sys.stderr, flush=True)

    def prepared(self, augment: str) -> dict:
        """The data with this augmentation (loaded once; the cache makes it fast)."""
        if augment not in self.data:
            from ..data import CIFAR10_CLASSES
            d = prepare_data(self.args.data, INPUT_SIZE, subset=self.s["subset"],
                             val_subset=self.s["test_subset"], input_scale="raw",
                             augment=augment, eval_crops="ten", val_split="test",
                             progress=not self.args.quiet)
            if len(d["classes"]) != len(CIFAR10_CLASSES):
                raise ValueError(f"{self.args.data} has {len(d['classes'])} classes; the "
                                 f"ablation is CIFAR-10's 10 ({', '.join(CIFAR10_CLASSES)})")
            self.data[augment] = d
        return self.data[augment]

    def spec(self, config: str, seed: int) -> dict:
        """Everything that makes a run what it is; a finished run is reused only if it matches.

        The backend is not part of it (numpy, numba and cupy train the same run
        to float tolerance), nor --jobs.
        """
        s, c = self.s, CONFIGS[config]
        return {"config": config, "model": c["model"], "augment": c["augment"], "seed": seed,
                "epochs": s["epochs"], "milestones": list(s["milestones"]),
                "subset": s["subset"], "test_subset": s["test_subset"], "lr": s["lr"],
                "momentum": s["momentum"], "weight_decay": s["weight_decay"],
                "decay_mults": decay_mults_for(c["model"]), "batch_size": s["batch_size"],
                "input_size": INPUT_SIZE, "input_scale": s["input_scale"], "data": s["data"]}

    def key(self, config: str, seed: int) -> str:
        """The run's name under ``--work``: readable, then a hash of its whole spec."""
        h = hashlib.sha256(json.dumps(self.spec(config, seed), sort_keys=True).encode())
        return f"{config}-seed{seed}-{h.hexdigest()[:12]}"

    def done(self, config: str, seed: int) -> dict | None:
        path = self.work / f"{self.key(config, seed)}.json"
        if path.exists():
            res = json.loads(path.read_text())
            if res.get("spec") == self.spec(config, seed):
                return res
        return None

    def has_runs(self) -> bool:
        """Whether ``--work`` holds any run of this study, finished or in progress."""
        return any((self.work / f"{self.key(c, seed)}.json").exists()
                   or (self.work / self.key(c, seed) / "metrics.json").exists()
                   for c in configs_needed(self.s["ablations"]) for seed in range(self.s["seeds"]))

    def run(self, config: str, seed: int) -> dict:
        """Train (or reuse, or go on with) one run, then test it on the centre and on 10 views."""
        key, spec = self.key(config, seed), self.spec(config, seed)
        done = self.done(config, seed)
        if done:
            self.say(f"  {key}: done before")
            return done
        run_dir = self.work / key
        if getattr(self.args, "report_only", False):
            return self.progress_so_far(key, spec, run_dir)
        from .checkpoint import atomic_write_text
        from .trainer import FixedSchedule, NonFiniteLossError
        d = self.prepared(spec["augment"])
        net = build_model(spec["model"], 10, seed)
        devices = tuple(int(x) for x in self.s["devices"].split(",")) if self.s["devices"] else ()
        net, device = place(net, self.s["backend"], devices)
        to_device = mover(self.s["backend"], device)
        # A checkpoint at every epoch's end and every 100 steps under WORK/KEY/:
        # a study stopped mid-run goes on from there when re-run.  Testing is
        # the study's own (centre and 10 views), so no validation per epoch.
        tr = assemble(net, d, batch_size=spec["batch_size"], seed=seed, lr=spec["lr"],
                      momentum=spec["momentum"], weight_decay=spec["weight_decay"],
                      decay_mults=spec["decay_mults"], backend=self.s["backend"], device=device,
                      schedule=FixedSchedule(spec["milestones"]), validate=False,
                      out_dir=run_dir, checkpoint_every=100, plot=False,
                      config={"ablate_run": spec}, progress=not self.args.quiet,
                      quiet=self.args.quiet,
                     log=lambda m: self.say(f"    {config} seed {seed}: {m}"))
        earlier = 0.0
        if tr.latest_path.exists():
            tr.resume()
            earlier = sum(r["seconds"] for r in tr.history)
            self.say(f"  {key}: resumed at epoch {tr.epoch + 1}, batch {tr.batch}")
        t0 = time.perf_counter()
        diverged, test = None, None
        try:
            tr.fit(spec["epochs"])
        except NonFiniteLossError as err:
            diverged = f"non-finite loss at step {err.step} (epoch {err.epoch})"
        train_seconds = earlier + time.perf_counter() - t0
        t1 = time.perf_counter()
        if diverged is None:
            test = test_errors(net, d, spec["batch_size"], to_device)
        res = {"spec": spec, "key": key, "train_error": [r["train_error"] for r in tr.history],
               "train_loss": [r["train_loss"] for r in tr.history], "epochs_run": len(tr.history),
               "diverged": diverged, "test": test, "seconds": round(train_seconds, 1),
               "test_seconds": round(time.perf_counter() - t1, 1), "steps": tr.step}
        atomic_write_text(self.work / f"{key}.json", json.dumps(res))
        self.say(f"  {config} seed {seed}: " + (f"diverged ({diverged})" if diverged else
                 f"test error {test['center']['top1']:.4f} centre, {test['ten']['top1']:.4f} "
                 f"10 views after {res['epochs_run']} epochs")
                 + f" ({res['seconds']:.0f} s training, {res['test_seconds']:.0f} s test)")
        return res

    def progress_so_far(self, key: str, spec: dict, run_dir: Path) -> dict:
        """An unfinished run as far as its metrics.json goes (``--report-only``)."""
        path = run_dir / "metrics.json"
        rows = json.loads(path.read_text())["epochs"] if path.exists() else []
        self.say(f"  {key}: in progress, {len(rows)} epoch(s) so far" if rows else
                 f"  {key}: not started")
        return {"spec": spec, "key": key, "train_error": [r["train_error"] for r in rows],
                "train_loss": [r["train_loss"] for r in rows], "epochs_run": len(rows),
                "diverged": None, "test": None, "in_progress": True,
                "seconds": round(sum(r["seconds"] for r in rows), 1), "test_seconds": 0.0,
                "steps": rows[-1]["step"] if rows else 0}

    def train_in_parallel(self) -> None:
        """``--jobs N``: every run in N worker processes, ahead of ``go`` (which then reuses them)."""
        import concurrent.futures as cf
        import multiprocessing
        todo = [(c, seed) for c in configs_needed(self.s["ablations"])
                for seed in range(self.s["seeds"]) if not self.done(c, seed)]
        if not todo:
            return
        for aug in {CONFIGS[c]["augment"] for c, _ in todo}:
            self.prepared(aug)                   # decode once; the workers read the cache
        self.say(f"runs: {len(todo)}, {self.s['jobs']} at a time")
        # 'spawn': a forked child must not inherit a CUDA context (or Numba's threads).
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=self.s["jobs"], mp_context=ctx) as pool:
            for fut in cf.as_completed([pool.submit(_worker_run, self.args, self.s, spec)
                                        for spec in todo]):
                fut.result()                     # a worker's error stops the study here

    def go(self) -> dict:
        s = self.s
        t0 = time.perf_counter()
        report = {"study": "ablate (paper sections 3.3, 3.4, 4.1, 4.2 on CIFAR-10)",
                  "form": s["form"], "overrides": overrides(s), "form_label": form_label(s),
                  "is_full_study": s["form"] == "full" and not overrides(s),
                  "what_it_can_show": FORMS[s["form"]]["note"],
                  "command": "numpy-alexnet " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                  "machine": machine_description(s["backend"], (s["devices"] or "0").split(",")[0]),
                  "backend": s["backend"], "devices": s["devices"],
                  "versions": library_versions(), "cuda_convnet_epochs": CUDA_CONVNET_EPOCHS,
                  "settings": json.loads(json.dumps(s)), "configs": {}, "ablations": {}}
        if s["jobs"] > 1 and not getattr(self.args, "report_only", False):
            self.train_in_parallel()
        runs = {}
        for config in configs_needed(s["ablations"]):
            self.say(f"{config}: {CONFIGS[config]['model']}, augmentation "
                     f"{CONFIGS[config]['augment']}")
            runs[config] = [self.run(config, seed) for seed in range(s["seeds"])]
            report["configs"][config] = dict(CONFIGS[config], runs=[
                {k: r.get(k) for k in ("key", "train_error", "train_loss", "epochs_run",
                                       "diverged", "test", "seconds", "test_seconds")}
                | {"seed": seed, "in_progress": r.get("in_progress", False)}
                for seed, r in enumerate(runs[config])])
        for name in s["ablations"]:
            report["ablations"][name] = summarize_ablation(name, runs)
        if self.data:                             # how many images the runs saw (not --report-only)
            d = next(iter(self.data.values()))
            report["images"] = {"train": int(len(d["y_train"])), "test": int(len(d["y_val"]))}
        report["complete"] = not any(r.get("in_progress") for rs in runs.values() for r in rs)
        report["total_seconds"] = round(time.perf_counter() - t0, 1)
        report["run_seconds_sum"] = round(sum(r["seconds"] + r["test_seconds"]
                                              for rs in runs.values() for r in rs), 1)
        return report


def test_errors(net, d: dict, batch_size: int, mover=None) -> dict:
    """Top-1 and top-5 test errors and loss of ``net`` on the centre view and on 10 views."""
    from ..data import BatchIterator, EvalTransform
    from .trainer import evaluate
    out = {}
    for view in ("center", "ten"):
        tf = EvalTransform(d["mean_image"], INPUT_SIZE, view, d["scale"])
        bs = max(1, batch_size // 10) if view == "ten" else batch_size   # 10 crops an image
        res = evaluate(net, BatchIterator(d["x_val"], d["y_val"], bs, shuffle=False, transform=tf,
                                          to_device=mover), chunk=batch_size)
        out[view] = {"top1": res["top1"], "top5": res.get("top5"), "loss": res["loss"]}
    return out


def _worker_run(args, settings: dict, spec: tuple) -> None:
    """One run in a worker process of ``--jobs`` (no progress bars: they would mix)."""
    args = argparse.Namespace(**dict(vars(args), quiet=True))
    _Ablation(args, settings).run(*spec)


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


# --------------------------------------------------------------------------- #
# The report: a table, a figure, the JSON
# --------------------------------------------------------------------------- #
def stem_for(form: str) -> str:
    return "ablation" if form == "full" else f"ablation_{form}"


def _arm_cell(arm: dict, seeds: int) -> str:
    if arm["mean"] is None:
        return "not yet"
    sd = f" ± {arm['sd']:.2f}" if arm["sd"] is not None else ""
    part = f" ({arm['seeds_done']} of {seeds} seeds)" if arm["seeds_done"] < seeds else ""
    return f"{arm['mean']:.2f}{sd}{part}"


def _arm_label(arm: dict) -> str:
    view = "10 views" if arm["view"] == "ten" else "centre"
    return f"{arm['model']}, {arm['augment']}, {view}"


def format_table(report: dict) -> str:
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


def figure(report: dict, path) -> None:
    """Left: each arm's test error per seed and its mean; right: the gains, their 95%
    intervals, and the paper's and the 2012 code's claims."""
    from ..viz import _figure, _save
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


# The settings that make two reports the same study (the backend and --jobs do not).
STUDY_SETTINGS = ("form", "ablations", "subset", "test_subset", "seeds", "epochs", "milestones",
                  "lr", "weight_decay", "batch_size", "momentum", "data")


def run_ablation(args) -> dict:
    from .checkpoint import atomic_write_text
    from .reports import is_complete_report_of, write_figure
    settings = settings_from_args(args)
    print_start("ablate", dict(settings, backend_reason=getattr(args, "backend_reason", None)), [
        f"{form_label(settings)}: ablations {', '.join(settings['ablations'])}; "
        f"{settings['seeds']} seed(s), {settings['epochs']} epochs",
        f"writes {Path(args.out) / stem_for(settings['form'])}.json, .md and .png"])
    print(f"  {form_label(settings)}; the {settings['form']} form as defined: "
          f"{FORMS[settings['form']]['note']}", file=sys.stderr)
    study = _Ablation(args, settings)
    if args.report_only and not study.has_runs():
        raise ValueError(f"--report-only: no runs of this study under {study.work}; expected "
                         "the --work folder the study trains in (default OUT/work)")
    report = study.go()
    out = Path(args.out)
    stem = stem_for(settings["form"])
    json_path, png_path, md_path = (out / f"{stem}.json", out / f"{stem}.png", out / f"{stem}.md")
    if not report["complete"] and is_complete_report_of(json_path, settings, STUDY_SETTINGS):
        raise ValueError(f"{json_path} is the complete report of a study with these settings, "
                         "and this one is unfinished: not replaced; give another --out to write it")
    report["figure"] = png_path.name
    report["table_markdown"] = format_table(report)
    atomic_write_text(json_path, json.dumps(report, indent=1))
    atomic_write_text(md_path, report["table_markdown"] + "\n")
    try:
        write_figure(figure, report, png_path)
    except ImportError as err:
        print(f"numpy-alexnet ablate: no figure ({err})", file=sys.stderr)
    print(report["table_markdown"])
    print(f"\n{form_label(settings)} on {report['machine']}, backend {report['backend']}, "
          f"{report['total_seconds']:.0f} s (runs {report['run_seconds_sum']:.0f} s); wrote "
          f"{json_path}, {md_path} and {png_path}")
    return report
