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
