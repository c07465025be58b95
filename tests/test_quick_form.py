"""The README's first command: ``relu-vs-tanh --quick`` on the fast path, and what it reports.

A tiny stand-in for CIFAR-10 (random 32x32 images in CIFAR-10's 10 class
folders), as the other study tests use: the numbers mean nothing here, the
settings, the measurement and the report's sentences are what is checked.
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from numpy_alexnet.backend import numba_available, resolve_backend
from numpy_alexnet.cli import main
from numpy_alexnet.experiments import relu_vs_tanh as study

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """20 images a class (200 in all), train split only."""
    from PIL import Image
    root = tmp_path_factory.mktemp("quick_data")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CIFAR10):
        d = root / "train" / name
        d.mkdir(parents=True)
        for i in range(20):
            img = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
            img[..., c % 3] = 20 * c
            Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- #
# --backend auto
# --------------------------------------------------------------------------- #
@pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
def test_auto_picks_numba_where_it_imports():
    backend, why = resolve_backend("auto")
    assert backend == "numba"
    assert "Numba imports" in why


def test_auto_picks_numpy_where_numba_does_not_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)          # 'import numba' raises ImportError
    backend, why = resolve_backend("auto")
    assert backend == "numpy"
    assert "Numba does not import" in why and "numpy-alexnet[numba]" in why


def test_a_named_backend_is_kept_and_cupy_only_when_named(monkeypatch):
    assert resolve_backend("numpy") == ("numpy", "asked for with --backend")
    assert resolve_backend("cupy")[0] == "cupy"
    monkeypatch.setitem(sys.modules, "numba", None)
    assert resolve_backend("auto")[0] == "numpy"              # never cupy, even with no numba


@pytest.mark.parametrize("command", ["train", "eval", "relu-vs-tanh"])
def test_auto_is_the_default_of_every_training_command(command):
    from numpy_alexnet.cli import build_parser
    argv = {"train": ["train", "--data", "x"], "eval": ["eval", "ck.npz"],
            "relu-vs-tanh": ["relu-vs-tanh", "--data", "x"]}[command]
    assert build_parser().parse_args(argv).backend == "auto"


def test_the_start_says_which_backend_and_why(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    out = tmp_path / "out"
    assert main(["relu-vs-tanh", "--quick", "--regimes", "unit", "--subset", "10",
                 "--batch-size", "10", "--cap", "1", "--quiet", "--data", str(data),
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "backend numpy (--backend auto: Numba does not import" in err
    assert json.loads((out / "relu_vs_tanh_quick.json").read_text())["backend"] == "numpy"
    config = json.loads((out / "config.json").read_text())     # the full configuration
    assert config["config"]["backend"] == "numpy" and config["config"]["window"] == 5000
    assert "numpy" in config["versions"]


# --------------------------------------------------------------------------- #
# The measurement window
# --------------------------------------------------------------------------- #
def test_window_errors_are_means_over_whole_windows():
    steps = [0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert study.window_errors(steps, 3) == pytest.approx([0.7, 0.3])   # the 7th step: no window
    assert study.window_epochs(3, 5000, 50000) == [0.1, 0.2, 0.3]
    assert study.epochs_at_target([0.1, 0.2, 0.3], [0.8, 0.43, 0.3], 0.43) == 0.2
    assert study.epochs_at_target([0.1], [0.8], 0.43) is None


def _windowed(data, out, *extra):
    return ["relu-vs-tanh", "--quick", "--window", "50", "--batch-size", "10", "--quiet",
            "--data", str(data), "--out", str(out), "--work", str(out / "work"), *extra]


def test_a_window_measures_every_window_steps_across_epochs(data, tmp_path):
    """200 images, batch 10, window 50 images: 5 steps a window, 4 windows an epoch."""
    out = tmp_path / "out"
    assert main(_windowed(data, out, "--cap", "2", "--train-to-cap")) == 0
    rep = json.loads((out / "relu_vs_tanh_quick.json").read_text())
    run = rep["regimes"]["cuda-convnet"]["runs"][0]
    assert run["window_steps"] == 5
    assert run["window_epochs"] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    (work,) = [p for p in (out / "work").iterdir() if p.is_dir() and "-relu-" in p.name]
    with open(work / "steps.csv", newline="") as f:
        errs = [float(r["error"]) for r in csv.DictReader(f)]
    assert len(errs) == 40
    assert run["window_error"] == pytest.approx(np.reshape(errs, (8, 5)).mean(axis=1))
    assert len(run["train_error"]) == 2                       # the per-epoch rows stay


def test_a_window_stops_a_run_mid_epoch_at_the_target(data, tmp_path):
    """A target every window meets: each run ends after its first window, a quarter epoch in."""
    out = tmp_path / "out"
    assert main(_windowed(data, out, "--target", "0.999")) == 0
    rep = json.loads((out / "relu_vs_tanh_quick.json").read_text())
    for run in rep["regimes"]["cuda-convnet"]["runs"]:
        assert run["epochs_to_target"] == 0.25 and run["epochs_run"] == 0.25
        assert run["window_epochs"] == [0.25]
    assert rep["regimes"]["cuda-convnet"]["summary"]["ratios"] == [1.0]
    assert "| 0.25 | 0.25 | 1.00 |" in rep["table_markdown"]


def test_a_window_smaller_than_a_batch_is_refused(data, tmp_path, capsys):
    assert main(_windowed(data, tmp_path / "out", "--window", "5")) == 1
    err = capsys.readouterr().err
    assert "--window 5 is smaller than one batch (10 images)" in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- #
# The quick form as the README runs it
# --------------------------------------------------------------------------- #
def test_the_quick_form_runs_with_its_documented_settings(data, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["relu-vs-tanh", "--quick", "--quiet", "--data", str(data), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    rep = json.loads((out / "relu_vs_tanh_quick.json").read_text())
    s = rep["settings"]
    assert (s["form"], s["window"], s["target"], s["regimes"], s["subset"], s["seeds"], s["cap"],
            s["stop_at_target"], s["sweep"]) == \
        ("quick", 5000, 0.43, ["cuda-convnet"], None, 1, 10, True, False)
    assert list(rep["regimes"]) == ["cuda-convnet"]
    assert rep["regimes"]["cuda-convnet"]["chosen_lr"] == {"relu": 0.003, "tanh": 0.01}
    # What it showed, in the terminal, the JSON and the figure alike.
    said = "\n".join(rep["what_was_shown"])
    assert "about six times faster than tanh" in said
    assert "43%, not the paper's 25%" in said
    assert "6.26 ± 0.44" in said and "1.43" in said and "--regimes cuda-convnet,unit" in said
    assert "--backend cupy --jobs 12 --stop-at-target" in said and "--reduced" in said
    assert "43% (not the paper's 25%)" in rep["table_markdown"]
    assert "full study, 25%" in rep["table_markdown"]
    printed = " ".join(captured.out.split())                   # lines wrapped at 100 columns
    assert "about six times" in printed and "6.26 ± 0.44" in printed
    assert "run 1 of 2" in captured.err and "run 2 of 2" in captured.err
    assert "every 5,000 images" in captured.err
    assert (out / "relu_vs_tanh_quick.png").stat().st_size > 10_000


def test_the_full_studys_figures_are_the_committed_ones():
    rep = json.loads((ROOT / "docs" / "results" / "relu_vs_tanh.json").read_text())
    for regime, full in study.FULL_STUDY.items():
        sm = rep["regimes"][regime]["summary"]
        assert round(sm["ratio_mean"], 2) == full["ratio_mean"]
        assert round(sm["ratio_std"], 2) == full["ratio_std"]
        assert tuple(sm["relu_epochs"]) == full["relu_epochs"]
        assert tuple(sm["tanh_epochs"]) == full["tanh_epochs"]


def test_the_paper_curves_cross_the_targets_where_read():
    assert study.paper_epochs_at("relu", 0.25) == 6 and study.paper_epochs_at("tanh", 0.25) == 36
    assert study.paper_epochs_at("tanh", 0.43) == 5
    assert study.paper_epochs_at("relu", 0.43) == pytest.approx(2 * 0.32 / 0.38)


def test_the_help_says_percent_once(capsys):
    with pytest.raises(SystemExit):
        main(["relu-vs-tanh", "--help"])
    text = capsys.readouterr().out
    assert "25%" in text and "%%" not in text


def test_a_refused_study_writes_no_config(data, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["relu-vs-tanh", "--quick", "--report-only", "--quiet", "--data", str(data),
                 "--out", str(out)]) == 1
    assert "--report-only: no runs of this study" in capsys.readouterr().err
    assert not (out / "config.json").exists()


def test_a_run_cut_off_after_its_target_trains_no_further(data, tmp_path):
    """Its checkpoint is past the target but its JSON is lost: the re-run only reports it."""
    out = tmp_path / "out"
    assert main(_windowed(data, out, "--target", "0.999")) == 0
    for done in (out / "work").glob("*.json"):
        done.unlink()
    assert main(_windowed(data, out, "--target", "0.999")) == 0
    for run in json.loads((out / "relu_vs_tanh_quick.json").read_text())["regimes"]["cuda-convnet"]["runs"]:
        assert run["epochs_to_target"] == 0.25 and run["window_epochs"] == [0.25]
    steps = [json.loads(p.read_text())["steps"] for p in (out / "work").glob("*.json")]
    assert steps == [5, 5]


def test_a_run_whose_loss_goes_non_finite_is_recorded_as_diverged(data, tmp_path, capsys):
    """A rate far too high: the study records the run as diverged and goes on (the
    trainer's NonFiniteLossError is caught where the run is trained)."""
    out = tmp_path / "out"
    assert main(["relu-vs-tanh", "--quick", "--quiet", "--data", str(data), "--out", str(out),
                 "--lr-relu", "1e6", "--cap", "2"]) == 0
    rep = json.loads((out / "relu_vs_tanh_quick.json").read_text())
    relu = [r for r in rep["regimes"]["cuda-convnet"]["runs"] if r["activation"] == "relu"]
    assert relu and relu[0]["diverged"].startswith("non-finite loss"), relu
