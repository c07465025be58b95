"""The training floor: runs that survive signals, full disks, shared folders and leftovers.

Signals stop with a checkpoint and exit 128 + N (a real subprocess); a second
run on one OUT is refused, a dead run's lock taken over; an OUT that cannot be
written is refused before any work; a full disk is a message with the earlier
checkpoints intact; the cache falls back to none; leftover temporaries are
removed; eval checks classes before decoding and decodes only its split;
--resume compares data by content and refuses changed validation and backend
settings; --new-lr lowers the rate after a non-finite stop; the smaller items.
Tiny image folders and the Figure-1 net keep them fast.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numpy_alexnet.cli import main
from numpy_alexnet.training import checkpoint as ckpt
from numpy_alexnet.training.checkpoint import read_checkpoint

from test_cli_errors import make_folder, run, snapshot, train_args

# Fixtures from conftest.py: data (a small image folder), trained (one run on it) and
# run_dir (a fresh copy of that run per test, and its files' bytes).

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# --------------------------------------------------------------------------- #
# 2. Signals: finish the step, checkpoint, one line on how to resume, 128 + N
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_stops_after_the_step_with_a_checkpoint(data, cache, tmp_path, sig):
    out = tmp_path / "run"
    env = dict(os.environ, NUMPY_ALEXNET_CACHE=str(cache), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    argv = train_args(data, out, "--epochs", "500", "--checkpoint-every", "1")
    proc = subprocess.Popen([sys.executable, "-m", "numpy_alexnet", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    latest = out / "checkpoints" / "latest.npz"
    try:
        deadline = time.time() + 120
        while not latest.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)                           # training has begun: a checkpoint
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    last = err.strip().splitlines()[-1]
    assert signal.Signals(sig).name in last and "resume with numpy-alexnet train" in last
    assert last.endswith("--resume") and str(latest) in last
    m = read_checkpoint(latest)["meta"]                # whole, and at the step it names
    assert f"after step {m['step']} " in last and m["step"] >= 1
    assert not (out / ".lock").exists()
    assert not list(out.rglob("*.tmp"))
    end = m["epoch"] + 1
    assert main(train_args(data, out, "--epochs", str(end), "--resume")) == 0
    assert read_checkpoint(latest)["meta"]["epoch"] == end


def test_stop_during_validation_saves_the_epoch_and_resumes_bit_identically(tmp_path):
    from test_training import _assert_same, _trainer, _untimed, _weights
    straight = _trainer(tmp_path / "a")
    straight.fit(2)
    part = _trainer(tmp_path / "b")
    real_val = part.val_batches

    def val():                                         # the signal comes while validating
        part.request_stop("signal SIGTERM")
        return real_val()

    part.val_batches = val
    part.fit(2)
    m = read_checkpoint(tmp_path / "b" / "checkpoints" / "latest.npz")["meta"]
    assert (m["epoch"], m["batch"], m["step"], m["history"]) == (0, 8, 8, [])
    rest = _trainer(tmp_path / "b")
    rest.resume()
    rest.fit(2)                                        # validates epoch 1 first, then goes on
    _assert_same(_weights(straight), _weights(rest))
    assert _untimed(straight.history) == _untimed(rest.history)


def test_signal_before_training_stops_at_once_and_writes_nothing(data, tmp_path, capsys,
                                                                 monkeypatch):
    from numpy_alexnet.training import recipe
    real = recipe.prepare_data

    def prepare_then_signal(*a, **kw):                 # a SIGTERM while the data load
        d = real(*a, **kw)
        os.kill(os.getpid(), signal.SIGTERM)
        return d

    monkeypatch.setattr("numpy_alexnet.training.commands.prepare_data", prepare_then_signal)
    out = tmp_path / "run"
    rc, err = run(train_args(data, out), capsys)
    assert rc == 128 + signal.SIGTERM and "SIGTERM: stopped before training began" in err
    assert not (out / "checkpoints" / "latest.npz").exists() and not (out / ".lock").exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL     # handlers given back


# --------------------------------------------------------------------------- #
# 3. The lock on OUT
# --------------------------------------------------------------------------- #
def test_second_run_on_the_same_out_is_refused_naming_the_first(run_dir, data, capsys):
    out, before = run_dir
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": holder.pid, "host": socket.gethostname(), "started": "2026-01-02 03:04:05"}
        (out / ".lock").write_text(json.dumps(lock))
        rc, err = run(train_args(data, out, "--epochs", "2", "--resume"), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert rc == 2, err
    assert f"PID {holder.pid}" in err and socket.gethostname() in err
    assert "2026-01-02 03:04:05" in err and "in use by another run" in err
    assert json.loads((out / ".lock").read_text()) == lock            # not taken
    assert {k: v for k, v in snapshot(out).items() if k != ".lock"} == before


def test_lock_of_a_dead_process_is_taken_over(run_dir, data, capsys):
    out, _ = run_dir
    (out / ".lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(),
                                           "started": "earlier"}))
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 0 and "taking over the lock" in err, err
    assert read_checkpoint(out / "checkpoints" / "latest.npz")["meta"]["epoch"] == 2
    assert not (out / ".lock").exists()                                # released at the end


# --------------------------------------------------------------------------- #
# 4. Preflight, a full disk, a cache that cannot be used
# --------------------------------------------------------------------------- #
def test_out_that_cannot_be_written_is_refused_before_loading(data, tmp_path, capsys,
                                                              monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setattr("numpy_alexnet.training.commands.prepare_data",
                        lambda *a, **k: pytest.fail("data loaded before --out was checked"))
    rc, err = run(train_args(data, blocker / "run"), capsys)
    assert rc == 1 and "is not writable" in err and str(blocker / "run") in err, err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_out_is_refused_before_loading(data, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        rc, err = run(train_args(data, out / "run"), capsys)
    finally:
        out.chmod(0o755)
    assert rc == 1 and "is not writable" in err


def test_full_disk_during_a_checkpoint_is_a_message_and_earlier_ones_stay(run_dir, data,
                                                                          capsys, monkeypatch):
    out, before = run_dir
    real = ckpt.atomic_write_bytes_via

    def full_disk(path, write):                        # half a file, then ENOSPC
        def write_some(f):
            f.write(b"x" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, write_some)

    monkeypatch.setattr(ckpt, "atomic_write_bytes_via", full_disk)
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 1 and "No space left on device" in err and "intact" in err, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith("--resume")
    after = snapshot(out)
    for f in ("checkpoints/latest.npz", "checkpoints/best.npz"):
        assert after[f] == before[f]
    assert not list(out.rglob("*.tmp")) and not (out / ".lock").exists()


def test_cache_that_is_a_file_falls_back_to_no_cache(data, tmp_path, capsys, monkeypatch):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(not_a_folder))
    rc, err = run(train_args(data, tmp_path / "run"), capsys)
    assert rc == 0 and "cannot be used" in err and "without it" in err, err


@pytest.mark.parametrize("writer", ["numpy_alexnet.data.datasets.write_cache",
                                    "numpy_alexnet.data.arrays.DatasetStats.save"])
def test_cache_write_that_fails_falls_back_to_no_cache(data, tmp_path, capsys, monkeypatch,
                                                       writer):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, full)
    rc, err = run(train_args(data, tmp_path / "run"), capsys)
    assert rc == 0 and "writing the dataset cache failed (No space left on device)" in err, err


# --------------------------------------------------------------------------- #
# 5. Temporaries of killed writes
# --------------------------------------------------------------------------- #
def test_temporaries_of_killed_writes_are_removed_at_the_next_start(run_dir, data, cache,
                                                                    capsys):
    out, _ = run_dir
    ours = [out / "checkpoints" / ".latest.npz.k3j9x2ab.tmp", out / ".metrics.json.a1b2c3d4.tmp"]
    theirs = [out / "checkpoints" / "notes.tmp", out / ".other.k3j9x2ab.tmp"]
    for p in ours + theirs:
        p.write_bytes(b"half a file")
    cache.mkdir(parents=True, exist_ok=True)
    dead = cache / (".pets-" + "0" * 20 + ".npz.q1w2e3r4.tmp")      # however recent
    live = cache / (".pets-" + "1" * 20 + ".npz.q1w2e3r4.tmp")
    for p in (dead, live):
        p.write_bytes(b"half a cache")
    with open(live, "rb") as writing:                  # its writer holds its lock
        fcntl.flock(writing, fcntl.LOCK_EX)
        rc, err = run(train_args(data, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 0, err
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)
    assert not dead.exists() and live.exists()         # a live writer's is left alone
    assert "left by an interrupted write" in err


# --------------------------------------------------------------------------- #
# 6. eval: classes first, then only the split evaluated
# --------------------------------------------------------------------------- #
def _count_decoding(monkeypatch) -> list:
    from numpy_alexnet.data import decode, sources
    real, decoded = decode.decode_all, []

    def counting(images, names, *a, **kw):
        decoded.append(len(images))
        return real(images, names, *a, **kw)

    monkeypatch.setattr(decode, "decode_all", counting)       # the split alone (eval)
    monkeypatch.setattr(sources, "decode_all", counting)      # a whole folder
    return decoded


def test_eval_checks_classes_before_decoding_anything(run_dir, tmp_path, capsys, monkeypatch):
    out, _ = run_dir
    other = make_folder(tmp_path / "farm", classes=("cow", "hen"))
    decoded = _count_decoding(monkeypatch)
    rc, err = run(["eval", str(out / "checkpoints" / "best.npz"), "--data", str(other)], capsys)
    assert rc == 1 and "['cat', 'dog']" in err and "['cow', 'hen']" in err, err
    assert decoded == []


@pytest.mark.parametrize("archive", [False, True])
def test_eval_decodes_only_the_split_it_evaluates(run_dir, data, tmp_path, capsys, monkeypatch,
                                                  archive):
    import tarfile
    out, _ = run_dir
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "empty-cache"))
    src = data
    if archive:
        src = tmp_path / "pets.tar.gz"
        with tarfile.open(src, "w:gz") as tf:
            tf.add(data, arcname="pets")
    decoded = _count_decoding(monkeypatch)
    rc, err = run(["eval", str(out / "checkpoints" / "best.npz"), "--data", str(src),
                   "--split", "test", "--json"], capsys)
    assert rc == 0, err
    assert decoded == [4]                              # 2 classes x 2 test images, no training


# --------------------------------------------------------------------------- #
# 8. --resume: data by content, validation and backend settings, --new-lr
# --------------------------------------------------------------------------- #
def test_resume_accepts_the_same_data_under_another_path(run_dir, data, tmp_path, capsys):
    out, _ = run_dir
    link = tmp_path / "same-pets"
    link.symlink_to(data, target_is_directory=True)
    rc, err = run(train_args(link, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 0, err


def test_resume_refuses_other_data_of_the_same_classes(run_dir, tmp_path, capsys):
    out, before = run_dir
    other = make_folder(tmp_path / "pets2", seed=1)   # cat and dog, other images
    rc, err = run(train_args(other, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 1 and "is not the data" in err and "by content" in err, err
    assert snapshot(out) == before


@pytest.mark.parametrize("extra", [("--val-subset", "2"), ("--no-val",), ("--backend", "numpy")])
def test_resume_refuses_changed_validation_and_backend(run_dir, data, capsys, extra):
    """The fixture's run trained on the default backend, auto: numba here."""
    out, before = run_dir
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume", *extra), capsys)
    key = extra[0][2:].replace("-", "_")
    assert rc == 2 and f"{key}: checkpoint" in err, err
    assert snapshot(out) == before


def test_new_lr_on_resume_is_used_and_recorded(run_dir, data, capsys):
    out, _ = run_dir
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume", "--new-lr", "0.0001"), capsys)
    assert rc == 0 and "0.001 -> 0.0001" in err, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["lr"] for r in metrics["epochs"]] == [0.001, 0.0001]
    change, = metrics["lr_changes"]
    assert (change["from"], change["to"], change["step"], change["epoch"]) == (0.001, 0.0001, 2, 2)
    assert read_checkpoint(out / "checkpoints" / "latest.npz")["meta"]["lr_changes"] == [change]


def test_new_lr_needs_resume(data, tmp_path, capsys):
    rc, err = run(train_args(data, tmp_path / "run", "--new-lr", "0.0001"), capsys)
    assert rc == 2 and "--new-lr" in err and "--resume" in err


def test_nonfinite_stop_says_how_to_go_on_with_a_lower_rate(run_dir, data, capsys, monkeypatch):
    out, _ = run_dir
    from numpy_alexnet.net import Sequential
    real = Sequential.forward

    def nan_forward(self, x, train=True):
        y = real(self, x, train)
        return y * np.float32(np.nan) if train else y

    monkeypatch.setattr(Sequential, "forward", nan_forward)
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 3 and "--resume --new-lr 0.0001" in err, err


# --------------------------------------------------------------------------- #
# 9. The smaller items
# --------------------------------------------------------------------------- #
def test_early_stop_names_only_the_files_written(data, tmp_path, capsys):
    out = tmp_path / "run"
    rc, err = run(train_args(data, out, "--max-steps", "1"), capsys)
    last = err.strip().splitlines()[-1]
    assert rc == 0 and last.startswith("wrote") and "latest.npz" in last, err
    assert "best.npz" not in last and "curves.png" not in last
    assert not (out / "checkpoints" / "best.npz").exists()


def test_counts_larger_than_the_data_are_said(data, tmp_path, capsys):
    rc, err = run(train_args(data, tmp_path / "run", "--batch-size", "64", "--subset", "100",
                             "--val-subset", "50"), capsys)
    assert rc == 0, err
    assert "--subset 100 is more than the 8 training images" in err
    assert "--val-subset 50 is more than the 4 test images" in err
    assert "--batch-size 64 is more than the 8 training images" in err


def test_checkpoint_without_config_is_a_message(run_dir, data, tmp_path, capsys):
    out, _ = run_dir
    with np.load(out / "checkpoints" / "best.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["config"]
    arrays["meta"] = np.array(json.dumps(meta))
    bare = tmp_path / "bare.npz"
    np.savez(bare, **arrays)
    for argv in (["eval", str(bare)], train_args(data, tmp_path / "run2", "--resume", str(bare))):
        rc, err = run(argv, capsys)
        assert rc == 1 and "no training configuration" in err and "Traceback" not in err, err


# -- train --stream: the folder read a batch at a time ----------------------------------
def test_train_stream_gives_the_in_ram_run(data, tmp_path):
    """``train --stream`` trains from disk through worker processes; for one seed its
    batches are the in-RAM run's, so the two runs' weights and step losses are equal."""
    runs = {}
    for name, extra in (("ram", ()), ("stream", ("--stream", "--workers", "2"))):
        out = tmp_path / name
        assert main(train_args(data, out, "--augment", "flip", "--epochs", "2", *extra)) == 0
        runs[name] = out
    a = read_checkpoint(runs["ram"] / "checkpoints" / "latest.npz")
    b = read_checkpoint(runs["stream"] / "checkpoints" / "latest.npz")
    for k in a["params"]:
        np.testing.assert_array_equal(a["params"][k], b["params"][k], err_msg=k)
    assert (runs["ram"] / "steps.csv").read_text() == (runs["stream"] / "steps.csv").read_text()
