"""A study stopped by a signal loses nothing: ``relu-vs-tanh`` under SIGTERM, SIGINT, SIGHUP.

As ``train`` does: the run in progress stops after its step with a checkpoint,
the command prints one line with the command that goes on, exits 128 + the
signal, and no process prints a traceback; the same command run again goes
on from the checkpoint and writes the report an uninterrupted study writes.

Each study here is a real ``numpy-alexnet`` process on a tiny stand-in for
CIFAR-10 (ten images a class), signalled once its first run has finished an
epoch: with one job, and with two worker processes (``--jobs 2``), the signal
sent to the command alone (as a scheduler does) or to its whole process group
(as Ctrl-C does).
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from test_ablate import CIFAR10, _folder

CAP = 10                   # epochs a run: 10 steps of 10 images each


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Ten 32x32 training images a class."""
    return _folder(tmp_path_factory.mktemp("signal_data") / "cifar", CIFAR10,
                   splits=(("train", 10),))


def _command(data, out, jobs):
    return ["relu-vs-tanh", "--quick", "--train-to-cap", "--cap", str(CAP), "--batch-size", "10",
            "--quiet", "--data", str(data), "--out", str(out), "--jobs", str(jobs)]


def _env(cache):
    return dict(os.environ, NUMPY_ALEXNET_CACHE=str(cache), PYTHONUNBUFFERED="1")


def _run(argv, cache):
    return subprocess.run([sys.executable, "-m", "numpy_alexnet", *argv], env=_env(cache),
                          capture_output=True, text=True, timeout=600)


def _numbers(out) -> list:
    """What a study measured: every run's curves and outcome, and the summary (no timings)."""
    rep = json.loads((out / "relu_vs_tanh_quick.json").read_text())
    regime = rep["regimes"]["cuda-convnet"]
    runs = [{k: r[k] for k in ("activation", "lr", "seed", "train_error", "train_loss",
                               "epochs_run", "epochs_to_target", "diverged", "in_progress")}
            for r in regime["runs"]]
    return [rep["complete"], regime["chosen_lr"], regime["summary"], runs]


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """The study run without a stop: what every stopped and resumed study must end with."""
    out = tmp_path_factory.mktemp("straight")
    res = _run(_command(data, out, 1), out / "cache")
    assert res.returncode == 0, res.stderr[-3000:]
    return _numbers(out)


def _signal_mid_run(argv, cache, work, signum, to_group):
    """Start the study, wait until a run has finished its first epoch, signal it; the result."""
    proc = subprocess.Popen([sys.executable, "-m", "numpy_alexnet", *argv], env=_env(cache),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    try:
        while proc.poll() is None and time.time() < deadline:
            if list(work.glob("*/metrics.json")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the study ended before it could be signalled"
        if to_group:
            os.killpg(proc.pid, signum)                       # Ctrl-C: every process of it
        else:
            proc.send_signal(signum)                          # a scheduler: the command alone
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("signum, jobs, to_group", [
    (signal.SIGTERM, 1, False),
    (signal.SIGINT, 1, True),
    (signal.SIGHUP, 2, False),
    (signal.SIGINT, 2, True),
], ids=["SIGTERM", "SIGINT-ctrl-c", "SIGHUP-jobs-2", "SIGINT-ctrl-c-jobs-2"])
def test_a_signalled_study_stops_with_a_checkpoint_and_goes_on(data, straight, tmp_path, signum,
                                                               jobs, to_group):
    out = tmp_path / "out"
    argv = _command(data, out, jobs)
    code, _, err = _signal_mid_run(argv, tmp_path / "cache", out / "work", signum, to_group)

    assert code == 128 + signum, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    again = "numpy-alexnet " + shlex.join(argv)
    lines = err.strip().splitlines()
    assert [line for line in lines if again in line] == [lines[-1]], err[-3000:]
    assert lines[-1].startswith(f"numpy-alexnet relu-vs-tanh: {signal.Signals(signum).name}")
    assert list((out / "work").glob("*/checkpoints/latest.npz")), "no checkpoint was kept"
    assert not (out / "relu_vs_tanh_quick.json").exists()

    res = _run(argv, tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed at epoch" in res.stderr
    assert _numbers(out) == straight
