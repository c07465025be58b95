"""``numpy-alexnet ablate``: its statistics on known numbers, the quick form as
documented, and runs reused and resumed.

A tiny CIFAR-like image folder (10 classes, one 32x32 training image and one
test image a class) stands in for CIFAR-10, so a run is a step or two.
"""
import json
import math

import numpy as np
import pytest

from numpy_alexnet.cli import main
from numpy_alexnet.models import MODELS, build_model
from numpy_alexnet.experiments.ablation import (ABLATIONS, CONFIGS, FORMS, configs_needed,
                                                decay_mults_for)
from numpy_alexnet.experiments.stats import mean_sd, paired_difference, t_quantile_975

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _folder(root, classes, splits=(("train", 1), ("test", 1)), seed=0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split, n in splits:
        for c, name in enumerate(classes):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
                img[..., c % 3] = 20 * c
                Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("data") / "cifar", CIFAR10)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "cache"))


def _args(data, out, *extra, work=None):
    return ["ablate", "--quick", "--data", str(data), "--out", str(out), "--quiet",
            *(["--work", str(work)] if work else []), *extra]


def _report(out):
    return json.loads((out / "ablation_quick.json").read_text())


# --------------------------------------------------------------------------- #
# The statistics, on numbers worked by hand
# --------------------------------------------------------------------------- #
def test_t_quantiles_match_the_table_and_the_expansion():
    assert t_quantile_975(1) == 12.706 and t_quantile_975(2) == 4.303
    assert t_quantile_975(30) == 2.042
    # Published values beyond the table: t(0.975; 40) = 2.0211, 60: 2.0003, 120: 1.9799.
    for df, t in ((40, 2.0211), (60, 2.0003), (120, 1.9799)):
        assert abs(t_quantile_975(df) - t) < 1e-3
    with pytest.raises(ValueError, match="at least 1 degree of freedom"):
        t_quantile_975(0)


def test_paired_difference_on_known_numbers():
    # Gains 2, 1, 2: mean 5/3, sd sqrt(1/3), half-width t(0.975; 2) * sd / sqrt(3) = 4.303 / 3.
    g = paired_difference([13.0, 12.0, 14.0], [11.0, 11.0, 12.0])
    assert g["gains"] == [2.0, 1.0, 2.0] and g["n"] == 3 and g["seeds"] == [0, 1, 2]
    assert g["mean"] == pytest.approx(5 / 3)
    assert g["sd"] == pytest.approx(math.sqrt(1 / 3))
    assert g["ci95"] == pytest.approx([5 / 3 - 4.303 / 3, 5 / 3 + 4.303 / 3])
    # Pairing matters: the same arms unpaired would differ by as much, but the
    # per-seed gains here are all equal, so the interval has no width.
    same = paired_difference([20.0, 30.0, 40.0], [19.0, 29.0, 39.0])
    assert same["mean"] == pytest.approx(1.0) and same["ci95"] == pytest.approx([1.0, 1.0])
    # A seed missing on either side is left out; one pair gives no interval.
    part = paired_difference([13.0, None, 14.0], [11.0, 11.0, None])
    assert part["seeds"] == [0] and part["mean"] == 2.0 and part["ci95"] is None
    assert paired_difference([None], [1.0])["mean"] is None


def test_mean_sd_uses_n_minus_one_and_skips_missing():
    assert mean_sd([1.0, 2.0, 3.0, None]) == {"n": 3, "mean": 2.0, "sd": 1.0}
    assert mean_sd([5.0]) == {"n": 1, "mean": 5.0, "sd": None}


# --------------------------------------------------------------------------- #
# The study as data
# --------------------------------------------------------------------------- #
def test_every_ablation_compares_two_known_arms_and_its_models_exist():
    for name, a in ABLATIONS.items():
        for side in ("without", "with"):
            config, view = a[side]
            assert config in CONFIGS and view in ("center", "ten"), name
        assert a["without"] != a["with"], name
        for who in ("paper", "code"):
            assert a[who]["on"] and (a[who]["gain"] is None or a[who]["gain"] > 0), (name, who)
    for c in CONFIGS.values():
        assert c["model"] in MODELS and c["augment"] in ("none", "flip", "paper")
    assert configs_needed(["views"]) == ["lrn"]
    assert configs_needed(["lrn", "pooling"]) == ["lrn", "no-lrn", "pool2"]


def test_the_ablation_nets_differ_from_the_base_only_where_named():
    base = build_model("cifar_conv_local_11pct", num_classes=10)
    pool2 = build_model("cifar_conv_local_11pct_pool2", num_classes=10)
    assert [l.name for l in base] == [l.name for l in pool2]
    assert (base.layers[3].kh, base.layers[3].stride) == (3, 2)
    assert (pool2.layers[3].kh, pool2.layers[3].stride) == (2, 2)
    assert pool2.shapes()[-1] == (10,) and pool2.layers[8].params["W"].shape[:2] == (6, 6)
    fc, drop = build_model("cifar_conv_fc", num_classes=10), build_model("cifar_conv_fc_dropout", num_classes=10)
    names = [l.name for l in drop]
    assert names[-3:] == ["relu3", "drop3", "fc4"] and names[:-2] + ["fc4"] == [l.name for l in fc]
    # The recipe's decay multipliers name parameters that exist in each net.
    from numpy_alexnet.optim import MomentumSGD
    for c in CONFIGS.values():
        net = build_model(c["model"], num_classes=10)
        MomentumSGD(net, weight_decay=0.004, decay_mults=decay_mults_for(c["model"]))


# --------------------------------------------------------------------------- #
# The quick form, as documented
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def quick(data, tmp_path_factory):
    """The quick form with nothing but its documented flags (and a folder to write in)."""
    out = tmp_path_factory.mktemp("quick")
    mp = pytest.MonkeyPatch()
    mp.setenv("NUMPY_ALEXNET_CACHE", str(out / "cache"))
    try:
        assert main(_args(data, out)) == 0
    finally:
        mp.undo()
    return out


def test_the_quick_form_runs_with_its_documented_settings(quick):
    r = _report(quick)
    f = FORMS["quick"]
    s = r["settings"]
    assert (s["subset"], s["test_subset"], s["epochs"], s["seeds"], s["milestones"]) == \
        (1000, 200, 2, 2, []) == (f["subset"], f["test_subset"], f["epochs"], f["seeds"],
                                  list(f["milestones"]))
    assert (s["lr"], s["weight_decay"], s["batch_size"], s["momentum"]) == (0.001, 0.004, 128, 0.9)
    assert r["form"] == "quick" and r["is_full_study"] is False and r["complete"] is True
    assert r["images"] == {"train": 10, "test": 10}          # the stand-in's, under the subsets
    assert "shows nothing about the claims" in r["what_it_can_show"]
    assert list(r["ablations"]) == list(ABLATIONS)
    assert set(r["configs"]) == set(CONFIGS)
    for config, c in r["configs"].items():
        assert [run["seed"] for run in c["runs"]] == [0, 1]
        for run in c["runs"]:
            assert run["epochs_run"] == 2 and run["diverged"] is None
            for view in ("center", "ten"):
                assert 0 <= run["test"][view]["top1"] <= 1
    # The gain of each ablation is its arms' per-seed test errors, paired.
    for name, e in r["ablations"].items():
        for side in ("without", "with"):
            config, view = ABLATIONS[name][side]
            assert e[side]["errors_pct"] == [100 * run["test"][view]["top1"]
                                             for run in r["configs"][config]["runs"]]
        w, v = e["without"]["errors_pct"], e["with"]["errors_pct"]
        assert e["gain_pct_points"]["gains"] == pytest.approx([a - b for a, b in zip(w, v)])
    assert r["ablations"]["lrn"]["paper"]["gain"] == 2.0
    table = (quick / "ablation_quick.md").read_text()
    assert table == r["table_markdown"] + "\n"
    assert all(f"| {name} |" in table for name in ABLATIONS)
    assert (quick / "ablation_quick.png").stat().st_size > 0
    assert not list(quick.glob(".*.tmp*"))


# --------------------------------------------------------------------------- #
# Reused and resumed
# --------------------------------------------------------------------------- #
def test_finished_runs_are_reused(quick, data, capsys):
    before = _report(quick)
    capsys.readouterr()
    assert main(_args(data, quick, "--ablations", "views,lrn")) == 0
    err = capsys.readouterr().err
    assert err.count("done before") == 4 and "epoch 1/" not in err
    again = _report(quick)
    assert list(again["ablations"]) == ["views", "lrn"]
    assert again["configs"]["lrn"]["runs"] == before["configs"]["lrn"]["runs"]


def test_other_settings_do_not_reuse_a_run(quick, data, tmp_path, capsys):
    """A run with another learning rate gets its own key: nothing is reused or resumed."""
    capsys.readouterr()
    assert main(_args(data, tmp_path, "--ablations", "views", "--lr", "0.002",
                      work=quick / "work")) == 0
    err = capsys.readouterr().err
    assert "done before" not in err and "resumed" not in err
    assert _report(tmp_path)["settings"]["lr"] == 0.002


def test_a_run_cut_off_midway_goes_on_from_its_checkpoint(quick, data, tmp_path, capsys):
    """The base runs stopped after epoch 1 of 2: --report-only reports them in progress (and
    does not replace a complete report), a re-run resumes them, with the same numbers."""
    one = tmp_path / "one"
    assert main(_args(data, one, "--ablations", "views", "--epochs", "1")) == 0
    work = tmp_path / "work"
    for seed in (0, 1):
        full = next(p.stem for p in (quick / "work").glob(f"lrn-seed{seed}-*.json")   # the key
                    if json.loads(p.read_text())["spec"]["lr"] == 0.001)              # of the fixture's
        cut = next(p for p in (one / "work").glob(f"lrn-seed{seed}-*") if p.is_dir())
        (work / full / "checkpoints").mkdir(parents=True)
        (cut / "checkpoints" / "latest.npz").replace(work / full / "checkpoints" / "latest.npz")
        (cut / "metrics.json").replace(work / full / "metrics.json")
    out = tmp_path / "out"
    assert main(_args(data, out, "--ablations", "views", "--report-only", work=work)) == 0
    part = _report(out)
    assert part["complete"] is False
    assert [(r["in_progress"], r["epochs_run"]) for r in part["configs"]["lrn"]["runs"]] == \
        [(True, 1), (True, 1)]
    assert part["ablations"]["views"]["gain_pct_points"]["mean"] is None
    assert "not yet" in part["table_markdown"]
    assert not list(work.glob("*.json"))                     # no run was finished by it

    # An unfinished study does not replace the complete report of the same settings.
    complete = tmp_path / "complete"
    assert main(_args(data, complete, "--ablations", "views", work=quick / "work")) == 0
    kept = (complete / "ablation_quick.json").read_bytes()
    capsys.readouterr()
    assert main(_args(data, complete, "--ablations", "views", "--report-only", work=work)) == 1
    assert "not replaced" in capsys.readouterr().err
    assert (complete / "ablation_quick.json").read_bytes() == kept

    assert main(_args(data, out, "--ablations", "views", work=work)) == 0
    assert capsys.readouterr().err.count("resumed at epoch 2, batch 0") == 2
    done, straight = _report(out)["configs"]["lrn"]["runs"], _report(quick)["configs"]["lrn"]["runs"]
    for a, b in zip(done, straight):
        assert a["epochs_run"] == 2 and not a["in_progress"]
        assert a["train_error"] == b["train_error"] and a["train_loss"] == b["train_loss"]
        assert a["test"] == b["test"]


# --------------------------------------------------------------------------- #
# Refused with a clear error
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("extra, expected", [
    (("--ablations", "lrn,colour"), "'colour'"),
    (("--seeds", "0"), "an integer >= 1"),
    (("--milestones", "2"), "--milestones 2: each must be an epoch before the last"),
    (("--lr", "0"), "a number > 0"),
])
def test_bad_values_are_refused_naming_the_flag(data, tmp_path, capsys, extra, expected):
    rc = None
    try:
        rc = main(_args(data, tmp_path / "out", *extra))
    except SystemExit as e:                     # argparse refuses a bad value with exit 2
        rc = e.code
    assert rc in (1, 2)
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out" / "ablation_quick.json").exists()


def test_report_only_without_runs_is_refused(data, tmp_path, capsys):
    assert main(_args(data, tmp_path / "out", "--report-only")) == 1
    assert "no runs of this study under" in capsys.readouterr().err


def test_data_without_a_test_split_or_ten_classes_is_refused(tmp_path, capsys):
    no_test = _folder(tmp_path / "no_test", CIFAR10, splits=(("train", 1),))
    assert main(_args(no_test, tmp_path / "a", "--ablations", "views")) == 1
    assert "no split 'test'" in capsys.readouterr().err
    two = _folder(tmp_path / "two", ("cat", "dog"))
    assert main(_args(two, tmp_path / "b", "--ablations", "views")) == 1
    assert "has 2 classes" in capsys.readouterr().err


def test_jobs_train_in_worker_processes_with_the_same_numbers(data, tmp_path):
    """--jobs 2: the runs train in two worker processes and give the same report.

    Both studies run as fresh processes, as from the command line (the float32
    bits depend on the BLAS thread count, which the Numba backend sets for a
    whole process; see the relu-vs-tanh study's test of --jobs).
    """
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMPY_ALEXNET_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    one, two = tmp_path / "one", tmp_path / "two"
    for out, jobs in ((one, []), (two, ["--jobs", "2"])):
        res = subprocess.run([sys.executable, "-m", "numpy_alexnet",
                              *_args(data, out, "--ablations", "views"), *jobs],
                             env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
    assert "runs: 2, 2 at a time" in res.stderr
    a, b = _report(one)["configs"]["lrn"]["runs"], _report(two)["configs"]["lrn"]["runs"]
    for ra, rb in zip(a, b):
        assert (ra["train_loss"], ra["test"]) == (rb["train_loss"], rb["test"])


# --------------------------------------------------------------------------- #
# The recipe's rates: biases at twice their weights' (cuda-convnet's epsB = 2 * epsW)
# --------------------------------------------------------------------------- #
def test_an_ablation_runs_optimizer_gives_biases_twice_the_weights_rate(data, tmp_path):
    """One step from a gradient of ones, no velocity yet: every bias moves by 2 * lr, every
    weight by lr (plus its decay, lr * wd * w, where the recipe decays it)."""
    from numpy_alexnet.cli import build_parser
    from numpy_alexnet.experiments.ablation import Ablation
    args = build_parser().parse_args(_args(data, tmp_path / "out"))
    args.backend = "numpy"
    study = Ablation(args)
    assert study.s["bias_lr_mult"] == 2.0
    for config in ("lrn", "fc-dropout"):
        spec = study.spec(config, 0)
        assert spec["bias_lr_mult"] == 2.0
        tr = study.trainer(spec, tmp_path / config, study.prepared(spec))
        params = list(tr.net.named_params())
        before = {name: layer.params[key].astype(np.float64) for name, layer, key in params}
        for _, layer, key in params:
            layer.grads[key] = np.ones_like(layer.params[key])
        tr.optimizer.step()
        lr, wd = spec["lr"], spec["weight_decay"]
        for name, layer, key in params:
            moved = before[name] - layer.params[key]
            decay = spec["decay_mults"].get(name, spec["decay_mults"].get(layer.name, 1.0))
            expected = 2 * lr if key == "b" else lr * (1 + wd * decay * before[name])
            np.testing.assert_allclose(moved, expected, rtol=1e-4, atol=1e-9, err_msg=name)
            if key == "b":
                assert decay == 0.0, name                      # the recipe never decays a bias


def test_the_report_and_every_run_record_the_bias_rate(quick):
    assert _report(quick)["settings"]["bias_lr_mult"] == 2.0
    specs = [json.loads(p.read_text())["spec"] for p in (quick / "work").glob("*.json")]
    assert specs and all(s["bias_lr_mult"] == 2.0 for s in specs)
