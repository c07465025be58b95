"""``numpy-alexnet relu-vs-tanh`` refuses bad input with a clear error and loses nothing saved.

Tiny image folders (one 32x32 image a class), one batch an epoch and a cap of
one epoch, so each study here trains in well under a second a run.
"""
import json

import numpy as np
import pytest

from numpy_alexnet.cli import main

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _folder(root, classes, seed):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        d = root / "train" / name
        d.mkdir(parents=True)
        img = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
        img[..., c % 3] = 20 * c
        Image.fromarray(img).save(d / "000.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two CIFAR-like sets with the same classes and different pixels, and a 2-class set."""
    base = tmp_path_factory.mktemp("data")
    return {"good": _folder(base / "good", CIFAR10, 0),
            "other": _folder(base / "other", CIFAR10, 1),
            "two": _folder(base / "two", ("cat", "dog"), 2)}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "cache"))


def _study(data, out, *extra, work=None):
    return ["relu-vs-tanh", "--quick", "--regimes", "unit", "--subset", "10", "--batch-size", "10",
            "--cap", "1", "--quiet", "--data", str(data), "--out", str(out),
            *(["--work", str(work)] if work else []), *extra]


def _report(out):
    return out / "relu_vs_tanh_quick.json", out / "relu_vs_tanh_quick.png"


# --------------------------------------------------------------------------- #
# Values refused before anything runs (B10/C13)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("flag, value, expected", [
    ("--target", "2", "a number > 0 and < 1"),
    ("--target", "-1", "a number > 0 and < 1"),
    ("--seeds", "0", "an integer >= 1"),
    ("--seeds", "-1", "an integer >= 1"),
    ("--jobs", "0", "an integer >= 1"),
    ("--jobs", "-3", "an integer >= 1"),
    ("--lr-relu", "-1", "a number > 0"),
    ("--lr-relu", "0", "a number > 0"),
    ("--lr-tanh", "-1", "a number > 0"),
    ("--lr-tanh", "0", "a number > 0"),
    ("--cap", "0", "an integer >= 1"),
    ("--cap", "-2", "an integer >= 1"),
    ("--sweep-epochs", "-1", "an integer >= 1"),
    ("--subset", "0", "an integer >= 1"),
    ("--batch-size", "0", "an integer >= 1"),
    ("--momentum", "1", "a number >= 0 and < 1"),
    ("--lr-grid", "abc", "'abc'"),
    ("--lr-grid", "0.01,-0.1", "'-0.1'"),
    ("--lr-grid", "0.01,0", "'0'"),
    ("--lr-grid", ",", "a comma list"),
    ("--regimes", "unit,colour", "'colour'"),
    ("--regimes", ",", "a comma list"),
])
def test_bad_values_are_refused_naming_the_flag(tmp_path, capsys, flag, value, expected):
    args = _study(tmp_path / "nowhere", tmp_path / "out", "--sweep", flag, value)
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"numpy-alexnet relu-vs-tanh: error: argument {flag}: expected" in err, err
    assert expected in err, err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- #
# The study is CIFAR-10's ten classes
# --------------------------------------------------------------------------- #
def test_a_dataset_without_the_ten_classes_is_refused(data, tmp_path, capsys):
    assert main(_study(data["two"], tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert "numpy-alexnet relu-vs-tanh: " in err
    assert "2 classes (cat, dog)" in err and "airplane" in err and "10" in err
    assert not (tmp_path / "out" / "relu_vs_tanh_quick.json").exists()


# --------------------------------------------------------------------------- #
# A5: a run is reused for the same data only
# --------------------------------------------------------------------------- #
def test_finished_runs_are_not_reused_for_other_data(data, tmp_path, capsys):
    out = tmp_path / "rvt"
    assert main(_study(data["good"], out)) == 0
    good = json.loads(_report(out)[0].read_text())["regimes"]["unit"]["runs"]
    capsys.readouterr()
    assert main(_study(data["other"], out)) == 0
    assert "done before" not in capsys.readouterr().err
    other = json.loads(_report(out)[0].read_text())["regimes"]["unit"]["runs"]
    assert [r["train_loss"] for r in other] != [r["train_loss"] for r in good]
    assert len(list((out / "work").glob("*.json"))) == 4         # both sets' runs are kept
    # The same data again reuses its runs.
    assert main(_study(data["good"], out)) == 0
    assert capsys.readouterr().err.count("done before") == 2
    again = json.loads(_report(out)[0].read_text())["regimes"]["unit"]["runs"]
    assert [r["train_loss"] for r in again] == [r["train_loss"] for r in good]


# --------------------------------------------------------------------------- #
# A4: --report-only never loses a finished report
# --------------------------------------------------------------------------- #
@pytest.fixture
def finished(data, tmp_path):
    """A finished study's report, its bytes, and its work folder."""
    out = tmp_path / "rvt2"
    assert main(_study(data["good"], out)) == 0
    files = _report(out)
    return out, {f: f.read_bytes() for f in files}


def test_report_only_with_an_empty_work_folder_is_refused(data, tmp_path, capsys, finished):
    out, before = finished
    for work in (tmp_path / "emptywork", tmp_path / "mistyped"):
        (tmp_path / "emptywork").mkdir(exist_ok=True)
        capsys.readouterr()
        assert main(_study(data["good"], out, "--report-only", work=work)) == 1
        err = capsys.readouterr().err
        assert f"numpy-alexnet relu-vs-tanh: --report-only: no runs of this study under {work}" in err
        assert {f: f.read_bytes() for f in before} == before


def test_report_only_keeps_a_complete_report_of_the_same_study(data, tmp_path, capsys, finished):
    out, before = finished
    part = tmp_path / "part"                      # the ReLU run finished, the tanh run not started
    part.mkdir()
    for run in (out / "work").glob("run-unit-relu-*.json"):
        (part / run.name).write_bytes(run.read_bytes())
    capsys.readouterr()
    assert main(_study(data["good"], out, "--report-only", work=part)) == 1
    err = capsys.readouterr().err
    assert "numpy-alexnet relu-vs-tanh: " in err and "complete report" in err and "--out" in err
    assert {f: f.read_bytes() for f in before} == before
    # Elsewhere the unfinished report is written.
    assert main(_study(data["good"], tmp_path / "elsewhere", "--report-only", work=part)) == 0
    assert json.loads(_report(tmp_path / "elsewhere")[0].read_text())["complete"] is False


def test_a_report_that_fails_to_write_leaves_the_old_one_whole(data, tmp_path, capsys, finished,
                                                               monkeypatch):
    out, before = finished
    import os

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        main(_study(data["good"], out, "--report-only"))
    assert {f: f.read_bytes() for f in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "relu_vs_tanh_quick.json",
                                                     "relu_vs_tanh_quick.png", "work"]


def test_report_only_before_the_sweep_trained_says_so(data, tmp_path, capsys):
    # Seeded runs on this data are under --work, the sweep's are not: not "every rate diverged".
    work = tmp_path / "work"
    assert main(_study(data["good"], tmp_path / "a", work=work)) == 0
    capsys.readouterr()
    code = main(_study(data["good"], tmp_path / "b", "--sweep", "--sweep-epochs", "1",
                       "--report-only", work=work))
    err = capsys.readouterr().err
    assert code == 1
    assert "no rate of the sweep has trained an epoch yet" in err and "diverged" not in err


def test_devices_with_a_cpu_backend_is_refused(data, tmp_path, capsys):
    code = main(_study(data["good"], tmp_path / "a", "--backend", "numpy", "--devices", "0"))
    assert code == 2
    assert "--devices 0: GPU indexes apply to --backend cupy only" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
