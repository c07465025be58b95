"""Streaming an image folder from disk: the same images, statistics and batches as
the in-RAM path, errors that name the file, and no worker left behind.

Tiny generated folders only (a few dozen 20x24 PNGs); each test that starts
workers spends about a second spawning them.
"""
import multiprocessing
import os
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from numpy_alexnet.data import (BatchIterator, DataError, ImageFolder, StreamingBatchIterator,
                                TrainTransform, load_dataset)

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("cat", "dog", "owl")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/{cat,dog,owl}/ 7 images each, test/ 3 each, 20x24 (H x W) RGB PNGs."""
    Image = pytest.importorskip("PIL.Image")
    root = tmp_path_factory.mktemp("stream") / "pets"
    rng = np.random.default_rng(0)
    for split, n in (("train", 7), ("test", 3)):
        for c in CLASSES:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)   # (H, W, C)
                Image.fromarray(pixels).save(root / split / c / f"{i:02d}.png")
    return root


@pytest.fixture(autouse=True)
def no_workers_left():
    """Every test here must end with no worker process alive."""
    yield
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == []


def in_ram(folder, **kw):
    return load_dataset(folder, use_cache=False, progress=False, **kw)


def test_split_decodes_the_same_images_as_load_dataset(folder):
    ds, f = in_ram(folder), ImageFolder(folder, resize=None)
    assert f.classes == ds.classes == CLASSES and sorted(f.splits) == ["test", "train"]
    for name in ("train", "test"):
        np.testing.assert_array_equal(f[name].labels, ds[name].labels)
        rows = np.array([4, 0, len(f[name]) - 1])
        np.testing.assert_array_equal(f[name][rows], ds[name].images[rows])   # (3, 3, 20, 24)
    assert f.train.image_size == (20, 24) and f.train[2:5].shape == (3, 3, 20, 24)
    part = f.train.subset([1, 8, 20])                  # e.g. --subset: still on disk
    np.testing.assert_array_equal(part[np.arange(3)], ds.train.images[[1, 8, 20]])
    np.testing.assert_array_equal(part.labels, [0, 1, 2])


def test_resize_and_limit_follow_load_dataset(folder):
    ds, f = in_ram(folder, resize=16, limit_per_class=2), ImageFolder(folder, resize=16,
                                                                       limit_per_class=2)
    assert len(f.train) == 6 and f.train.image_size == (16, 16)
    np.testing.assert_array_equal(f.train[np.arange(6)], ds.train.images)


def test_streamed_stats_equal_in_ram_stats(folder, tmp_path):
    """Sums of integers in float64 are exact: identical numbers, in one process or two."""
    want = in_ram(folder).stats()
    for workers in (1, 2):
        got = ImageFolder(folder, resize=None, cache_dir=tmp_path).stats(workers=workers,
                                                                         use_cache=False,
                                                                         progress=False)
        for key in ("mean_image", "mean_pixel", "eigvals", "eigvecs"):
            np.testing.assert_array_equal(getattr(got, key), getattr(want, key), err_msg=key)
    cached = ImageFolder(folder, resize=None, cache_dir=tmp_path)
    cached.stats(workers=1, progress=False)                          # writes the stats file
    assert list(tmp_path.glob("*.stats.npz"))
    np.testing.assert_array_equal(
        ImageFolder(folder, resize=None, cache_dir=tmp_path).stats().mean_image,
        want.mean_image)


def test_a_cache_that_cannot_be_written_is_a_warning(folder, tmp_path, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    st = ImageFolder(folder, resize=None, cache_dir=blocked).stats(workers=1, progress=False)
    np.testing.assert_array_equal(st.mean_image, in_ram(folder).stats().mean_image)
    assert "could not keep the statistics in" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [0, 2])
def test_same_batches_as_the_in_ram_iterator(folder, workers):
    """Same seed: the same crops, reflections and colour shifts, in the same order,
    resumed mid-epoch too, whatever the workers' timing."""
    ds = in_ram(folder)
    st = ds.stats()
    tf = TrainTransform(st.mean_image, 16, st.eigvals, st.eigvecs)
    split = ImageFolder(folder, resize=None).train
    ours = StreamingBatchIterator(split, split.labels, 4, seed=5, transform=tf, workers=workers,
                                  prefetch=3)
    ref = BatchIterator(ds.train.images, ds.train.labels, 4, seed=5, transform=tf)
    assert len(ours) == len(ref) == 6
    for epoch, start in ((0, 0), (3, 2)):
        got, want = list(ours.epoch_iter(epoch, start)), list(ref.epoch_iter(epoch, start))
        assert len(got) == len(want) == 6 - start
        for (xa, ya), (xb, yb) in zip(got, want):
            assert xa.dtype == np.float32 and xa.shape[1:] == (3, 16, 16)
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    if workers:
        assert 1 <= ours.most_in_flight <= 3          # never more than prefetch batches asked for


def test_one_recipe_for_both_paths(folder):
    """ImageFolder mirrors Dataset (splits, classes, stats, subset), and batch_iterator
    picks the iterator: the same batches either way."""
    from numpy_alexnet.data import batch_iterator
    batches = {}
    for name, ds in (("ram", in_ram(folder)), ("disk", ImageFolder(folder, resize=None))):
        train = ds.train.subset([0, 3, 9, 12, 20])
        st = ds.stats()
        tf = TrainTransform(st.mean_image, 16, st.eigvals, st.eigvecs)
        it = batch_iterator(train, 2, seed=1, transform=tf, workers=1)
        assert type(it).__name__ == ("BatchIterator" if name == "ram" else
                                     "StreamingBatchIterator")
        batches[name] = list(it.epoch_iter(2))
    assert len(batches["ram"]) == len(batches["disk"]) == 3
    for (xa, ya), (xb, yb) in zip(batches["ram"], batches["disk"]):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_to_device_runs_in_the_calling_process(folder):
    """The mover (e.g. cupy.asarray) is never pickled: a closure is fine."""
    moved = []

    def to_device(a):
        moved.append(a.shape)
        return a.astype(np.float64)

    split = ImageFolder(folder, resize=None).train
    it = StreamingBatchIterator(split, split.labels, 8, shuffle=False, to_device=to_device,
                                workers=1)
    got = list(it)
    assert [x.dtype for x, _ in got] == [np.float64] * 3 and len(moved) == 6
    np.testing.assert_array_equal(got[0][0], split[np.arange(8)])


def test_a_corrupt_file_is_named_and_the_workers_stop(folder, tmp_path):
    import shutil
    bad_root = tmp_path / "pets"
    shutil.copytree(folder, bad_root)
    bad = bad_root / "train" / "dog" / "03.png"
    bad.write_bytes(b"not a png at all")
    split = ImageFolder(bad_root, resize=None).train
    it = StreamingBatchIterator(split, split.labels, 3, shuffle=False, workers=2)
    with pytest.raises(DataError, match=r"03\.png: cannot decode image"):
        list(it)


def test_stopping_early_or_ctrl_c_in_the_consumer_stops_the_workers(folder):
    split = ImageFolder(folder, resize=None).train
    it = StreamingBatchIterator(split, split.labels, 2, workers=2)
    batches = it.epoch_iter(0)
    next(batches)
    assert len(multiprocessing.active_children()) == 2
    batches.close()                                   # what a `break` out of the loop does
    assert multiprocessing.active_children() == []
    with pytest.raises(KeyboardInterrupt):
        for _ in it.epoch_iter(1):
            raise KeyboardInterrupt                   # as Ctrl-C during a training step


class ExitInWorker:
    """A transform that ends the worker process: as a worker killed by the OOM killer."""

    def __call__(self, x, rng):
        os._exit(7)


def test_a_worker_that_dies_is_an_error_not_a_hang(folder):
    split = ImageFolder(folder, resize=None).train
    it = StreamingBatchIterator(split, split.labels, 2, transform=ExitInWorker(), workers=1)
    with pytest.raises(RuntimeError, match=r"data worker .* ended \(exit code 7\)"):
        next(iter(it))


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] == "Z"         # a zombie has exited
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_main_process_is_killed(folder, tmp_path):
    """kill -9 of the training process: its workers notice within a second and exit."""
    pid_file = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import multiprocessing, os, signal
        from numpy_alexnet.data import ImageFolder, StreamingBatchIterator
        if __name__ == "__main__":
            split = ImageFolder({str(folder)!r}, resize=None).train
            batches = iter(StreamingBatchIterator(split, split.labels, 2, workers=2))
            next(batches)
            with open({str(pid_file)!r}, "w") as f:
                f.write(" ".join(str(p.pid) for p in multiprocessing.active_children()))
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "log", "w") as log:         # a file, not a pipe a worker could hold
        proc = subprocess.run([sys.executable, "-c", script], stdout=log, stderr=log, env=env,
                              timeout=120)
    assert proc.returncode == -9, (tmp_path / "log").read_text()
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 2
    try:
        deadline = time.monotonic() + 10
        while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(p) for p in pids), f"orphaned workers {pids}"
    finally:
        for p in pids:                                # a failing run leaves nothing behind
            if not _gone(p):
                os.kill(p, 9)


def test_archives_and_bad_arguments_are_refused_clearly(folder, tmp_path):
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname="pets")
    with pytest.raises(DataError, match=r"pets\.tar\.gz: streaming reads an image-folder "
                                        r"directory.*tar xf pets\.tar\.gz"):
        ImageFolder(archive)
    with pytest.raises(FileNotFoundError, match="no-such-folder: no such directory"):
        ImageFolder(tmp_path / "no-such-folder")
    split = ImageFolder(folder, resize=None).train
    with pytest.raises(ValueError, match="prefetch must be >= 1 batch, got 0"):
        StreamingBatchIterator(split, split.labels, 2, prefetch=0)
    with pytest.raises(ValueError, match="workers must be >= 0, got -1"):
        StreamingBatchIterator(split, split.labels, 2, workers=-1)
    with pytest.raises(DataError, match="no split 'val'"):
        ImageFolder(folder)["val"]
