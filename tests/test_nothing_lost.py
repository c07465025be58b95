"""Nothing saved is lost: runs that start together, writes that fail, a guard in time.

One test per fault of ``train`` and ``eval``:

- two runs started into one OUT at the same instant: exactly one runs;
- a disk that fills between ``latest.npz`` and ``best.npz``: the resumed run
  writes the ``best.npz`` the finished epoch owed;
- a diverging loss stops the run before a checkpoint holds diverged weights,
  so ``--resume --new-lr`` can go on from the last one;
- ``--resume`` refuses other fine-tuning or validation settings;
- a copied or touched image folder is the same data;
- a folder too large for memory streams from disk, saying why;
- a stop that saved nothing does not say "resume with";
- an OUT that turns read-only mid-run: the real cause, no traceback;
- a signal while images decode in workers: one message, no worker tracebacks;
- the temporary file of a killed cache write is removed at the next start;
- ``--stream --quiet`` draws no bar;
- ``eval --crops ten`` where no crop fits is refused;
- bad arguments exit 2, and messages keep their closing quotes.

Tiny image folders and the Figure-1 net keep them fast; the signal and kill
tests run real subprocesses.
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
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


def _env(cache) -> dict:
    return dict(os.environ, NUMPY_ALEXNET_CACHE=str(cache), OMP_NUM_THREADS="1",
                OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def _failing_write(name: str, code: int, message: str, real):
    """A checkpoint writer that raises OSError(code) for files called ``name``."""
    def write(path, writer):
        if Path(path).name == name:
            raise OSError(code, message, str(path))
        return real(path, writer)
    return write


def _wait_for(path: Path, proc, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} never appeared (exit {proc.poll()})"


# --------------------------------------------------------------------------- #
# Two runs into one OUT at the same instant
# --------------------------------------------------------------------------- #
def test_two_runs_taking_one_out_at_the_same_instant_one_wins_50_times(tmp_path):
    from numpy_alexnet.training.errors import RunError
    from numpy_alexnet.training.runfiles import RunLock
    for attempt in range(50):
        out = tmp_path / f"run{attempt}"
        start, tried = threading.Barrier(2), threading.Barrier(2)
        outcomes = []

        def take():
            start.wait()                        # both at the same instant
            try:
                with RunLock(out):
                    outcomes.append("ran")
                    tried.wait(timeout=30)      # held until the other has tried
            except RunError as err:
                outcomes.append(f"refused: {err}")
                tried.wait(timeout=30)

        threads = [threading.Thread(target=take) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert outcomes.count("ran") == 1, (attempt, outcomes)
        refusal, = [o for o in outcomes if o != "ran"]
        assert "in use by another run" in refusal, refusal
        assert not (out / ".lock").exists()


def test_two_train_commands_started_together_into_one_out(data, cache, tmp_path):
    """The command line: a seed-1 and a seed-2 run started at the same instant; one runs
    (exit 0) and its seed is in every file, the other is refused (exit 2)."""
    waiting = ("import os, sys, time\n"
               "import numpy_alexnet.training.commands\n"       # imported before the start
               "from numpy_alexnet.cli import main\n"
               "while not os.path.exists(sys.argv[1]): time.sleep(0.001)\n"
               "sys.exit(main(sys.argv[2:]))\n")
    for attempt in range(3):
        out, go = tmp_path / f"run{attempt}", tmp_path / f"go{attempt}"
        procs = [subprocess.Popen(
            [sys.executable, "-c", waiting, str(go),
             *train_args(data, out, "--backend", "numpy", "--seed", str(seed))],
            env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for seed in (1, 2)]
        time.sleep(3)                                           # both waiting at the start
        go.touch()
        errs = [p.communicate(timeout=300)[1] for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], errs
        winner = 1 + [p.returncode for p in procs].index(0)
        meta = read_checkpoint(out / "checkpoints" / "latest.npz")["meta"]
        assert meta["config"]["seed"] == winner
        assert f'"seed": {winner}' in (out / "config.json").read_text()
        assert f'"seed": {winner}' in (out / "metrics.json").read_text()


# --------------------------------------------------------------------------- #
# A disk that fills between latest.npz and best.npz
# --------------------------------------------------------------------------- #
def test_a_best_checkpoint_lost_to_a_full_disk_is_written_on_resume(data, tmp_path, capsys,
                                                                    monkeypatch):
    for epochs in ("1", "2"):
        straight = tmp_path / f"straight{epochs}"
        assert main(train_args(data, straight, "--epochs", epochs)) == 0
        out = tmp_path / f"run{epochs}"
        with monkeypatch.context() as m:             # the disk fills at epoch 1's best.npz
            m.setattr(ckpt, "atomic_write_bytes_via",
                      _failing_write("best.npz", errno.ENOSPC, "No space left on device",
                                     ckpt.atomic_write_bytes_via))
            rc, err = run(train_args(data, out, "--epochs", "1"), capsys)
        assert rc == 1 and "No space left on device" in err, err
        assert (out / "checkpoints" / "latest.npz").exists()
        assert not (out / "checkpoints" / "best.npz").exists()
        rc, err = run(train_args(data, out, "--epochs", epochs, "--resume"), capsys)
        assert rc == 0, err
        want = read_checkpoint(straight / "checkpoints" / "best.npz")
        got = read_checkpoint(out / "checkpoints" / "best.npz")
        assert got["meta"]["step"] == want["meta"]["step"]
        for k in want["params"]:
            np.testing.assert_array_equal(got["params"][k], want["params"][k], err_msg=k)


# --------------------------------------------------------------------------- #
# A diverging loss: the guard trips before a checkpoint holds it
# --------------------------------------------------------------------------- #
def _loss_on_training_images(checkpoint: Path, data: Path) -> float:
    from numpy_alexnet.data import load_dataset
    from numpy_alexnet.models import build_model
    from numpy_alexnet.training.trainer import evaluate
    ck = read_checkpoint(checkpoint)
    net = build_model("cifar_fig1_relu", 2, 0)
    net.load_state_dict(ck["params"])
    train = load_dataset(data, progress=False).train
    x = train.images.astype(np.float32) - ck["extra"]["mean_image"]      # (N, 3, 32, 32)
    return evaluate(net, [(x, train.labels)])["loss"]


def test_a_diverging_run_stops_before_its_checkpoint_holds_the_divergence(data, tmp_path,
                                                                          capsys):
    out = tmp_path / "run"
    argv = train_args(data, out, "--lr", "0.3", "--epochs", "20", "--checkpoint-every", "1")
    rc, err = run(argv, capsys)
    assert rc == 3 and "--new-lr" in err, err
    latest = out / "checkpoints" / "latest.npz"
    assert latest.exists(), err
    weights = read_checkpoint(latest)["params"]
    assert max(float(np.abs(w).max()) for w in weights.values()) < 10
    assert _loss_on_training_images(latest, data) < 10 * np.log(2)    # a chance-level start
    for new_lr in ("0.03", "0.01", "0.001"):          # a tenth (the hint), and lower
        again = tmp_path / f"again-{new_lr}"
        shutil.copytree(out, again)
        rc, err = run(train_args(data, again, "--lr", "0.3", "--epochs", "20",
                                 "--checkpoint-every", "1", "--resume", "--new-lr", new_lr),
                      capsys)
        assert rc == 0, err


# --------------------------------------------------------------------------- #
# --resume compares every setting that changes the training path
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("flag,value,key", [("--freeze", "conv1", "freeze"),
                                            ("--lr-mult", "fc10=10", "lr_mult"),
                                            ("--eval-crops", "ten", "eval_crops")])
def test_resume_refuses_other_fine_tuning_and_validation_settings(run_dir, data, capsys,
                                                                  flag, value, key):
    out, before = run_dir
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume", flag, value), capsys)
    assert rc == 2 and f"{key}: checkpoint" in err, err
    assert snapshot(out) == before


# --------------------------------------------------------------------------- #
# A folder's identity: names, sizes and content
# --------------------------------------------------------------------------- #
def test_a_copied_or_touched_folder_is_the_same_data(run_dir, data, tmp_path, capsys):
    out, before = run_dir
    copy = tmp_path / "copy"
    shutil.copytree(data, copy, copy_function=shutil.copy)         # new modification times
    touched = sorted(copy.rglob("*.png"))[0]
    os.utime(touched, (1_000_000_000, 1_000_000_000))
    changed = tmp_path / "changed"                                 # same names and sizes
    shutil.copytree(data, changed)
    img = sorted(changed.rglob("*.png"))[0]
    img.write_bytes(img.read_bytes()[:-1] + bytes([img.read_bytes()[-1] ^ 1]))
    rc, err = run(train_args(changed, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 1 and "is not the data" in err, err
    assert snapshot(out) == before
    rc, err = run(train_args(copy, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 0, err


# --------------------------------------------------------------------------- #
# A folder too large for memory streams (or an archive stops), saying why
# --------------------------------------------------------------------------- #
def test_a_folder_too_large_for_memory_streams_and_says_why(data, tmp_path, capsys,
                                                            monkeypatch):
    import tarfile
    # The 12 images decode to 36 KB: with 100 KB of memory available, too large.
    monkeypatch.setattr("numpy_alexnet.training.recipe.memory_available", lambda: 100_000,
                        raising=False)
    rc, err = run(train_args(data, tmp_path / "auto"), capsys)
    assert rc == 0, err
    head = "\n".join(err.splitlines()[:8])
    assert "streamed from disk" in head and "memory available" in head, err
    assert (tmp_path / "auto" / "checkpoints" / "latest.npz").exists()
    rc, err = run(train_args(data, tmp_path / "forced", "--no-stream"), capsys)
    assert rc == 0 and "streamed" not in err, err
    archive = tmp_path / "pets.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(data, arcname="pets")
    cached = set((tmp_path / "cache").iterdir())
    rc, err = run(train_args(archive, tmp_path / "archive"), capsys)
    assert rc == 1 and "cannot be streamed" in err and "--no-stream" in err, err
    assert set((tmp_path / "cache").iterdir()) == cached             # nothing decoded


# --------------------------------------------------------------------------- #
# A hint to resume only where a checkpoint exists
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("fault", ["full disk", "second signal"])
def test_a_stop_that_saved_nothing_says_start_again_not_resume(data, tmp_path, capsys,
                                                               monkeypatch, fault):
    out = tmp_path / "run"
    real = ckpt.atomic_write_bytes_via
    if fault == "full disk":
        write = _failing_write("latest.npz", errno.ENOSPC, "No space left on device", real)
    else:
        def write(path, writer):                  # SIGTERM twice during the first write
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            return real(path, writer)
    argv = train_args(data, out, "--checkpoint-every", "1")
    with monkeypatch.context() as m:
        m.setattr(ckpt, "atomic_write_bytes_via", write)
        rc, err = run(argv, capsys)
    assert rc in (1, 128 + signal.SIGTERM) and "Traceback" not in err, err
    assert not (out / "checkpoints" / "latest.npz").exists()
    last = err.strip().splitlines()[-1]
    assert "--resume" not in last and "no checkpoint" in last, last
    assert last.endswith("numpy-alexnet " + " ".join(argv))
    assert main(argv) == 0                         # the command given works as it is


# --------------------------------------------------------------------------- #
# OUT turns read-only mid-run
# --------------------------------------------------------------------------- #
def test_an_out_that_turns_read_only_is_named_without_a_traceback(run_dir, data, capsys,
                                                                  monkeypatch):
    out, before = run_dir
    real_unlink = os.unlink

    def read_only_unlink(path, *a, **kw):
        if Path(path).name == ".lock":
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_unlink(path, *a, **kw)

    monkeypatch.setattr(ckpt, "atomic_write_bytes_via",
                        _failing_write("latest.npz", errno.EROFS, "Read-only file system",
                                       ckpt.atomic_write_bytes_via))
    monkeypatch.setattr(os, "unlink", read_only_unlink)
    monkeypatch.setattr(os, "remove", read_only_unlink)
    rc, err = run(train_args(data, out, "--epochs", "2", "--resume"), capsys)
    assert rc == 1 and "Traceback" not in err, err
    assert "read-only" in err and "free space" not in err, err
    assert snapshot(out)["checkpoints/latest.npz"] == before["checkpoints/latest.npz"]


# --------------------------------------------------------------------------- #
# A signal while the images decode in worker processes
# --------------------------------------------------------------------------- #
def test_ctrl_c_while_images_decode_in_workers_is_one_message(cache, tmp_path):
    from PIL import Image
    folder = tmp_path / "many"
    rng = np.random.default_rng(0)
    for split, n in (("train", 1000), ("test", 2)):        # 2,004 images: decoded in a pool
        for c in ("cat", "dog"):
            (folder / split / c).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
                Image.fromarray(img).save(folder / split / c / f"{i}.png")
    started = tmp_path / "decoding"
    slow = ("import os, sys, time\n"
            "from PIL import ImageFile\n"
            "load, parent = ImageFile.ImageFile.load, os.getpid()\n"
            "def slow(self):\n"
            "    if os.getpid() != parent:\n"                # in a decoding worker
            f"        open({str(started)!r}, 'a').close()\n"
            "    time.sleep(0.01)\n"
            "    return load(self)\n"
            "ImageFile.ImageFile.load = slow\n"
            "from numpy_alexnet.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    argv = train_args(folder, tmp_path / "run", "--backend", "numpy")
    proc = subprocess.Popen([sys.executable, "-c", slow, *argv], env=_env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for(started, proc)
        time.sleep(1)                                       # the pool is at work
        os.killpg(proc.pid, signal.SIGINT)                  # Ctrl-C: the whole group
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) <= 8, err
    assert "SIGINT" in err.strip().splitlines()[-1]


def test_a_signal_that_library_code_swallows_still_stops_the_run(data, tmp_path, capsys,
                                                                 monkeypatch):
    """An exception raised in a signal handler can be cleared by the C code it lands in
    (io's buffered readers clear one from ``tell()``, as tarfile's extractfile meets it):
    the run stops before training all the same."""
    from numpy_alexnet.training import recipe
    real = recipe.prepare_data

    def prepare_swallowing_a_signal(*a, **kw):
        try:
            os.kill(os.getpid(), signal.SIGINT)          # its SignalStop lost on the way
        except BaseException:
            pass
        return real(*a, **kw)

    monkeypatch.setattr("numpy_alexnet.training.commands.prepare_data",
                        prepare_swallowing_a_signal)
    out = tmp_path / "run"
    rc, err = run(train_args(data, out), capsys)
    assert rc == 128 + signal.SIGINT and "SIGINT: stopped before training began" in err, err
    assert not (out / "checkpoints" / "latest.npz").exists()


# --------------------------------------------------------------------------- #
# The temporary file of a cache write killed by kill -9
# --------------------------------------------------------------------------- #
def _cache_writer(data, cache, tmp_path, name):
    """A process writing the dataset cache of ``data`` slowly: (process, marker path)."""
    marker = tmp_path / name
    code = ("import sys, time\n"
            "import numpy as np\n"
            "def slow(f, **arrays):\n"
            "    f.write(b'x' * 100000); f.flush()\n"
            f"    open({str(marker)!r}, 'a').close()\n"
            "    time.sleep(600)\n"
            "np.savez = slow\n"
            "from numpy_alexnet.data import load_dataset\n"
            "load_dataset(sys.argv[1], progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(data)], env=_env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(marker, proc)
    return proc


def _temporaries(folder) -> list:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_killed_cache_write_leaves_nothing_after_the_next_start(data, cache, tmp_path,
                                                                  capsys):
    killed = _cache_writer(data, cache, tmp_path, "killed")
    killed.kill()                                            # kill -9, mid-write
    killed.wait()
    left = _temporaries(cache)
    assert len(left) == 1 and left[0].stat().st_size >= 100000
    other = make_folder(tmp_path / "other", seed=3)
    live = _cache_writer(other, cache, tmp_path, "live")    # another run, still writing
    try:
        writing = set(_temporaries(cache)) - set(left)
        rc, err = run(train_args(data, tmp_path / "run"), capsys)
        assert rc == 0, err
        assert not left[0].exists()                          # the killed write's: removed
        assert all(p.exists() for p in writing) and writing  # the live writer's: kept
    finally:
        live.kill()
        live.wait()


# --------------------------------------------------------------------------- #
# --stream --quiet
# --------------------------------------------------------------------------- #
def test_stream_quiet_draws_no_progress_bar(data, tmp_path, capsys):
    rc, err = run(train_args(data, tmp_path / "run", "--stream", "--workers", "1"), capsys)
    assert rc == 0, err
    assert "mean image and RGB PCA" not in err and "it/s" not in err and "img/s]" not in err, err


# --------------------------------------------------------------------------- #
# eval --crops ten where the network takes the whole image
# --------------------------------------------------------------------------- #
def test_ten_crops_where_no_crop_fits_are_refused(trained, data, tmp_path, capsys):
    rc, err = run(["eval", str(trained / "checkpoints" / "best.npz"), "--crops", "ten"], capsys)
    assert rc == 2 and "--crops ten" in err and "32x32" in err, err
    rc, err = run(train_args(data, tmp_path / "run", "--eval-crops", "ten"), capsys)
    assert rc == 2 and "--eval-crops ten" in err, err
    assert not (tmp_path / "run" / "checkpoints" / "latest.npz").exists()


# --------------------------------------------------------------------------- #
# Exit codes of bad arguments, and messages that keep their quotes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("extra,says", [
    (("--model", "alexnetx"), "alexnetx"),
    (("--num-classes", "1"), "smaller than the 2 classes"),
    (("--init", "kaiming"), "--input-scale unit"),
])
def test_bad_arguments_exit_2_before_any_work(data, tmp_path, capsys, extra, says):
    out = tmp_path / "run"
    rc, err = run(train_args(data, out, *extra), capsys)
    assert rc == 2 and says in err and "Traceback" not in err, err
    assert not (out / "checkpoints" / "latest.npz").exists()


def test_a_message_ending_in_a_quote_keeps_it(data, tmp_path, capsys, monkeypatch):
    from numpy_alexnet import backend
    hint = "the 'cupy' backend needs CuPy: pip install 'numpy-alexnet[gpu]'"

    def no_cupy():
        raise backend.BackendUnavailable(hint)

    monkeypatch.setattr(backend, "import_cupy", no_cupy)
    monkeypatch.setattr(backend, "_OPS_CACHE", {})
    rc, err = run(train_args(data, tmp_path / "run", "--backend", "cupy"), capsys)
    assert rc == 1 and err.rstrip().endswith(hint), err
