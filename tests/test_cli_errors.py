"""Bad input to ``train``, ``eval`` and ``data``: a clear error, and nothing saved is lost.

Each test runs the command line in-process on a tiny image folder (2 classes,
32x32 PNGs) and checks the exit code, that the message names what was wrong,
and, where a run already exists, that its files are byte-identical afterwards.
"""
from __future__ import annotations

import argparse
import json
import shutil
import zipfile

import numpy as np
import pytest

from numpy_alexnet.argtypes import integer, number
from numpy_alexnet.cli import main
from numpy_alexnet.training.checkpoint import read_checkpoint
from numpy_alexnet.training.recipe import subset_indices


# --------------------------------------------------------------------------- #
# Helpers and fixtures
# --------------------------------------------------------------------------- #
def make_folder(root, classes=("cat", "dog"), test_classes=None, size=32, seed=0):
    """root/{train,test}/CLASS/i.png: 4 training and 2 test images per class."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split, n, names in (("train", 4, classes), ("test", 2, test_classes or classes)):
        for c in names:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, size=(size, size, 3)).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.png")
    return root


def train_args(data, out, *extra):
    return ["train", "--model", "cifar_fig1_relu", "--data", str(data), "--batch-size", "4",
            "--lr", "0.001", "--weight-decay", "0", "--schedule", "fixed", "--epochs", "1",
            "--out", str(out), "--quiet", *extra]


def run(argv, capsys):
    """(exit code, stderr) of the command line; argparse's own exits included."""
    try:
        rc = main(argv)
    except SystemExit as stop:
        rc = stop.code
    return rc, capsys.readouterr().err


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- #
# argtypes
# --------------------------------------------------------------------------- #
def test_integer_type():
    assert integer(1)("3") == 3
    for bad in ("0", "-1", "abc", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"integer >= 1, got '{bad}'"):
            integer(1)(bad)


def test_number_type():
    assert number(at_least=0, below=1)("0") == 0.0
    assert number(above=0)("1e-3") == 1e-3
    for parse, bad in ((number(above=0), "0"), (number(above=0), "nan"), (number(above=0), "inf"),
                       (number(at_least=0, below=1), "1"), (number(at_least=0), "-1"),
                       (number(), "abc")):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"got '{bad}'"):
            parse(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=r"a number >= 0 and < 1"):
        number(at_least=0, below=1)("1.5")


def test_subset_indices_rejects_counts_below_one():
    assert list(subset_indices(5, None)) == [0, 1, 2, 3, 4]
    assert len(subset_indices(5, 3)) == 3 and len(subset_indices(5, 9)) == 5
    for k in (0, -1):
        with pytest.raises(ValueError, match=rf"at least 1.*got {k}"):
            subset_indices(5, k)


# --------------------------------------------------------------------------- #
# Ranges checked before anything runs (A2, A3, B9, B10, C13, 16)
# --------------------------------------------------------------------------- #
BAD_TRAIN_FLAGS = [
    ("--epochs", "0"), ("--epochs", "-1"), ("--max-steps", "0"), ("--max-steps", "-1"),
    ("--time-limit", "-5"), ("--time-limit", "0"), ("--lr", "0"), ("--lr", "-0.1"),
    ("--momentum", "-1"), ("--momentum", "1.5"), ("--weight-decay", "-1"), ("--patience", "0"),
    ("--checkpoint-every", "-1"), ("--num-classes", "0"), ("--subset", "0"), ("--subset", "-1"),
    ("--val-subset", "0"), ("--val-subset", "-1"), ("--batch-size", "0"), ("--batch-size", "-2"),
    ("--seed", "-1"), ("--devices", "abc"), ("--resize", "0"), ("--limit-per-class", "0"),
]


@pytest.mark.parametrize("flag,value", BAD_TRAIN_FLAGS)
def test_train_refuses_out_of_range_values_and_keeps_the_run(run_dir, data, capsys, flag, value):
    out, before = run_dir
    for resume in ((), ("--resume",)):
        rc, err = run(train_args(data, out, flag, value, *resume), capsys)
        assert rc == 2 and f"argument {flag}" in err and repr(value) in err, err
        assert snapshot(out) == before


@pytest.mark.parametrize("flag,value", [("--limit", "0"), ("--limit", "-1"), ("--batch-size", "0"),
                                        ("--devices", "abc"), ("--resize", "0"),
                                        ("--limit-per-class", "-1")])
def test_eval_refuses_out_of_range_values(trained, capsys, flag, value):
    rc, err = run(["eval", str(trained / "checkpoints" / "best.npz"), flag, value], capsys)
    assert rc == 2 and f"argument {flag}" in err, err


@pytest.mark.parametrize("flag,value", [("--resize", "0"), ("--resize", "-5"),
                                        ("--limit-per-class", "0")])
def test_data_info_refuses_out_of_range_values(data, capsys, flag, value):
    rc, err = run(["data", "info", str(data), flag, value], capsys)
    assert rc == 2 and f"argument {flag}" in err, err


def test_summary_refuses_zero_classes(capsys):
    rc, err = run(["summary", "cifar_fig1", "--num-classes", "0"], capsys)
    assert rc == 2 and "argument --num-classes" in err


@pytest.mark.parametrize("value", ["fc10=abc", "fc10", "=2", "conv1=0.1,fc10=-1"])
def test_lr_mult_names_the_flag_and_the_entry(data, tmp_path, capsys, value):
    rc, err = run(train_args(data, tmp_path / "new", "--lr-mult", value), capsys)
    entry = value.split(",")[-1]
    assert rc == 2 and "argument --lr-mult" in err and repr(entry) in err, err
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------------- #
# Saved work is not replaced (A1, A3, A6)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("model", ["cifar_fig1_relu", "cifar_fig1_tanh"])
def test_train_into_an_existing_run_without_resume_refuses(run_dir, data, capsys, model):
    out, before = run_dir
    rc, err = run(train_args(data, out, "--model", model), capsys)
    assert rc == 2 and str(out) in err and "--resume" in err and "--out" in err, err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(out) == before


def test_out_that_is_a_file_is_refused_before_training(data, tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    rc, err = run(train_args(data, out), capsys)
    assert rc == 2 and str(out) in err and "folder" in err, err
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("extra", [("--epochs", "1"), ("--epochs", "2", "--max-steps", "2")])
def test_resume_with_nothing_left_to_do_writes_nothing(run_dir, data, capsys, extra):
    out, before = run_dir
    rc, err = run(train_args(data, out, "--resume", *extra), capsys)
    assert rc == 0 and "nothing to do" in err and "wrote" not in err, err
    assert snapshot(out) == before


@pytest.mark.parametrize("flag,value", [("--lr", "0.1"), ("--momentum", "0.5"),
                                        ("--weight-decay", "0.01"), ("--patience", "3")])
def test_resume_refuses_new_optimizer_settings(run_dir, data, capsys, flag, value):
    out, before = run_dir
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume", flag, value), capsys)
    key = flag[2:].replace("-", "_")
    assert rc == 2 and f"{key}: checkpoint" in err and value in err, err
    assert snapshot(out) == before


def test_resume_accepts_a_run_folder(run_dir, data, capsys):
    out, _ = run_dir
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume", str(out)), capsys)
    assert rc == 0, err
    assert read_checkpoint(out / "checkpoints" / "latest.npz")["meta"]["epoch"] == 2


def test_resume_from_a_folder_without_a_checkpoint_says_so(data, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, err = run(train_args(data, tmp_path / "new", "--resume", str(empty)), capsys)
    assert rc == 1 and str(empty) in err and "checkpoints/latest.npz" in err, err


# --------------------------------------------------------------------------- #
# Classes (B7, B8, C13)
# --------------------------------------------------------------------------- #
def test_checkpoint_records_the_class_names(trained):
    meta = read_checkpoint(trained / "checkpoints" / "latest.npz")["meta"]
    assert meta["config"]["classes"] == ["cat", "dog"]
    assert json.loads((trained / "metrics.json").read_text())["config"]["classes"] == ["cat", "dog"]


@pytest.mark.parametrize("classes", [("cat", "cow"), ("cat", "dog", "eel")])
def test_eval_refuses_a_dataset_with_other_classes(trained, tmp_path, capsys, classes):
    other = make_folder(tmp_path / "other", classes=classes)
    rc, err = run(["eval", str(trained / "checkpoints" / "best.npz"), "--data", str(other)], capsys)
    assert rc == 1 and "['cat', 'dog']" in err and str(list(classes)) in err, err


def test_class_difference_names_both_lists():
    from numpy_alexnet.training.recipe import class_difference
    assert class_difference(["cat", "dog"], ("cat", "dog"), "ck.npz", "pets") is None
    msg = class_difference(["cat", "dog"], ["dog", "cat"], "ck.npz", "pets")
    assert "['cat', 'dog']" in msg and "['dog', 'cat']" in msg and "another order" in msg
    msg = class_difference(["cat", "dog"], ["cat", "cow"], "ck.npz", "pets")
    assert "only in the checkpoint: ['dog']" in msg and "only in the data: ['cow']" in msg


def _without_classes(src, dst):
    """A copy of checkpoint ``src`` whose config lacks 'classes' (as older checkpoints)."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["config"]["classes"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(dst, **arrays)
    return dst


def test_eval_of_an_older_checkpoint_without_class_names(trained, data, tmp_path, capsys):
    old = _without_classes(trained / "checkpoints" / "best.npz", tmp_path / "old.npz")
    rc, err = run(["eval", str(old), "--data", str(data), "--json"], capsys)
    assert rc == 0 and "class names" in err, err
    more = make_folder(tmp_path / "more", classes=("a", "b", "c"))
    rc, err = run(["eval", str(old), "--data", str(more)], capsys)
    assert rc == 1 and "3 classes" in err and "2 outputs" in err, err


def test_resume_refuses_a_dataset_whose_classes_changed(data, tmp_path, capsys):
    pets = tmp_path / "pets"
    shutil.copytree(data, pets)
    out = tmp_path / "run"
    assert main(train_args(pets, out)) == 0
    before = snapshot(out)
    for split in ("train", "test"):
        (pets / split / "dog").rename(pets / split / "cow")
    rc, err = run(train_args(pets, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 1 and "['cat', 'dog']" in err and "['cat', 'cow']" in err, err
    assert snapshot(out) == before


def test_splits_with_different_class_folders_are_refused(tmp_path, capsys):
    odd = make_folder(tmp_path / "odd", classes=("cat", "dog"), test_classes=("bird", "cat"))
    rc, err = run(train_args(odd, tmp_path / "run"), capsys)
    assert rc == 1 and "test" in err and "bird" in err and "dog" in err, err
    rc, err = run(["data", "info", str(odd)], capsys)
    assert rc == 1 and "test" in err and "bird" in err and "dog" in err, err


# --------------------------------------------------------------------------- #
# One clear line instead of a traceback (B10, C12, C13, 14, 15, 20)
# --------------------------------------------------------------------------- #
def test_devices_apply_to_cupy_only(trained, data, tmp_path, capsys):
    rc, err = run(train_args(data, tmp_path / "run", "--devices", "3"), capsys)
    assert rc == 2 and "--devices" in err and "cupy" in err, err
    rc, err = run(["eval", str(trained / "checkpoints" / "best.npz"), "--devices", "0,1"], capsys)
    assert rc == 2 and "--devices" in err and "cupy" in err, err


def test_eval_on_images_of_another_size(trained, tmp_path, capsys):
    big = make_folder(tmp_path / "big", size=40)
    rc, err = run(["eval", str(trained / "checkpoints" / "best.npz"), "--data", str(big)], capsys)
    assert rc == 1 and "40x40" in err and "32x32" in err and "--resize" in err, err


def test_data_info_and_download_errors_are_one_line(data, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, err = run(["data", "download", str(afile)], capsys)
    assert rc == 1 and f"numpy-alexnet data download: {afile} is a file" in err, err
    rc, err = run(["data", "info", str(data), "--cache-dir", str(afile)], capsys)
    assert rc == 1 and "numpy-alexnet data info:" in err and str(afile) in err, err
    assert afile.read_text() == "x"


def _truncated(src, dst):
    dst.write_bytes(src.read_bytes()[:200])
    return dst


def test_truncated_weights_file_is_named(trained, data, tmp_path, capsys):
    from numpy_alexnet.pretrained import WeightsError, load_weights
    trunc = _truncated(trained / "checkpoints" / "best.npz", tmp_path / "trunc.npz")
    with pytest.raises(WeightsError, match=r"trunc\.npz.*not a readable weights file"):
        load_weights(trunc, model="cifar_fig1_relu")
    rc, err = run(train_args(data, tmp_path / "run", "--init-from", str(trunc)), capsys)
    assert rc == 1 and str(trunc) in err and "not a readable weights file" in err, err


@pytest.mark.parametrize("content", [b"hello", None])
def test_unreadable_checkpoint_is_named_without_pickle_advice(trained, data, tmp_path, capsys,
                                                               content):
    bad = tmp_path / "bad.npz"
    if content is None:
        _truncated(trained / "checkpoints" / "best.npz", bad)
    else:
        bad.write_bytes(content)
    for argv in (["eval", str(bad), "--data", str(data)],
                 train_args(data, tmp_path / "run", "--resume", str(bad))):
        rc, err = run(argv, capsys)
        assert rc == 1 and str(bad) in err and "not a readable checkpoint" in err, err
        assert "allow_pickle" not in err


def test_eval_of_a_run_folder_says_a_checkpoint_file_is_expected(trained, capsys):
    rc, err = run(["eval", str(trained)], capsys)
    assert rc == 1 and f"{trained} is a folder" in err and "best.npz" in err, err


def test_finetuning_errors_give_the_path(data, tmp_path, capsys):
    from numpy_alexnet.models import cifar_fig1
    from numpy_alexnet.pretrained import save_state
    (tmp_path / "w").mkdir()
    weights = save_state(cifar_fig1("relu", num_classes=5), tmp_path / "w" / "best.npz")
    assert zipfile.is_zipfile(weights)
    rc, err = run(train_args(data, tmp_path / "run", "--init-from", str(weights)), capsys)
    assert rc == 1 and f"numpy-alexnet train: {weights}: 2 problems" in err, err
