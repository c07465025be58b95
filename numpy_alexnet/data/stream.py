"""Image folders read from disk a batch at a time, decoded in worker processes.

``load_dataset`` decodes a whole image folder into one uint8 array: right for
CIFAR-10 (150 MB at 32x32), impossible for ImageNet (1.2 million images at
256x256 are about 250 GB).  Here only the list of files is kept; each batch is
decoded when it is needed, so memory stays bounded whatever the dataset's size:

    from numpy_alexnet.data import ImageFolder, StreamingBatchIterator, TrainTransform
    folder = ImageFolder("/data/imagenet", resize=256)       # lists files, decodes nothing
    st = folder.stats()                                      # one streamed pass, then cached
    tf = TrainTransform(st.mean_image, 227, st.eigvals, st.eigvecs)
    batches = StreamingBatchIterator(folder.train, folder.train.labels, 128, seed=0,
                                     transform=tf, workers=4)
    for x, y in batches:                                     # x float32 (128, 3, 227, 227)
        ...

Section 4: the augmented images "are generated in Python code on the CPU
while the GPU is training on the previous batch of images".  Here
``workers`` processes each build whole batches (read the files, decode,
crop, reflect, colour shift, convert to float32) while the caller trains; at
most ``prefetch`` batches are asked for ahead of the one being trained on, so
the memory the pipeline holds is about ``prefetch`` batches, never the dataset.

Same batches as the in-RAM path: an :class:`ImageFolderSplit` stores the
images in the order of ``load_dataset``'s arrays, and
:class:`StreamingBatchIterator` is a :class:`~numpy_alexnet.data.BatchIterator`
(same permutation from (seed, epoch), same augmentation generator from (seed,
epoch, batch)); only the place the batch is built moves.  For one seed it
gives exactly the batches ``BatchIterator(ds.train.images, ...)`` gives,
whatever the number of workers and their timing, and resumes mid-epoch the
same way (``epoch_iter(epoch, start_batch)``).

Workers are started with the 'spawn' method (no fork of a process that runs
threads, and the same on Linux, macOS and Windows; a script that uses them
needs the ``if __name__ == "__main__":`` guard) for each pass over the data
and stopped at its end, when the consumer stops early, or on any error or
KeyboardInterrupt in the consumer: no worker outlives the pass.  Batch
workers ignore SIGINT, SIGHUP and SIGTERM (the main process decides what a
signal means, and reads batches while it writes its checkpoint), and a worker
whose parent has died exits by itself within a second.
"""
from __future__ import annotations

import copy
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from ..progress import progress_bar
from .arrays import DataError, DatasetStats, stats_path
from .augment import pca_from_moments, rgb_moments
from .cache import cache_path
from .decode import decode_image, decode_images, ignore_group_signals
from .loader import BatchIterator
from .sources import display_name, folder_items, scan_dir

_POLL_S = 1.0          # how often a waiting worker checks that its parent still lives


class ImageFolderSplit:
    """One split of an image folder as a list of files, decoded on demand.

    ``split[rows]`` decodes those files: uint8 (len(rows), C=3, H, W), the
    interface :class:`~numpy_alexnet.data.BatchIterator` needs of ``images``.
    labels: int64 (N,); classes: the sorted class names; image_size: (H, W).
    """

    def __init__(self, paths: list, labels: np.ndarray, classes: tuple, name: str,
                 resize: int | None, image_size: tuple[int, int]):
        # Strings, not Path objects: about 100 bytes an image, the only per-image memory.
        self.paths, self.labels = [str(p) for p in paths], np.asarray(labels, dtype=np.int64)
        self.classes, self.name, self.resize = tuple(classes), name, resize
        self.image_size = tuple(image_size)
        self.shape = (len(self.paths), 3) + self.image_size        # as an (N, C, H, W) array

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows)
        if rows.ndim != 1:
            raise TypeError(f"ImageFolderSplit '{self.name}': index with a slice or a 1-d array "
                            f"of rows, got {rows.ndim}-d")
        paths = [self.paths[i] for i in rows]
        return decode_images(paths, paths, self.resize, self.image_size,
                             self.paths[0])                        # (n, C, H, W) uint8

    def subset(self, rows) -> "ImageFolderSplit":
        """The split of images ``rows`` only (e.g. a ``--subset``), still on disk."""
        rows = np.asarray(rows)
        return ImageFolderSplit([self.paths[i] for i in rows], self.labels[rows], self.classes,
                                self.name, self.resize, self.image_size)

    def class_counts(self) -> np.ndarray:
        """Images per class, int64 (K,)."""
        return np.bincount(self.labels, minlength=len(self.classes)).astype(np.int64)


class ImageFolder:
    """An image-folder tree ``split/class/image`` on disk, listed but not decoded.

    path: a directory laid out as for :func:`~numpy_alexnet.data.load_dataset`
        (an archive must be unpacked first: a .tar.gz cannot be read at random).
    resize: 256 rescales the short side to 256 and takes the central 256x256
        (the paper's section 4); None keeps the images' size (all must share it,
        checked as each image is decoded).
    limit_per_class: keep the first N files (sorted by name) of each class.
    """

    def __init__(self, path, resize: int | None = 256, limit_per_class: int | None = None,
                 cache_dir=None):
        src = Path(path).expanduser()
        if not src.exists():
            raise FileNotFoundError(f"{src}: no such directory; expected an image-folder tree "
                                    "split/class/image")
        if not src.is_dir():
            raise DataError(f"{src}: streaming reads an image-folder directory, not a file; "
                            f"unpack an archive first (tar xf {src.name} -C <dir>), or load "
                            "a small set into RAM with load_dataset")
        if resize is not None and int(resize) < 1:
            raise ValueError(f"resize must be a positive size or None, got {resize!r}")
        if limit_per_class is not None and int(limit_per_class) < 1:
            raise ValueError(f"limit_per_class must be a positive count or None, "
                             f"got {limit_per_class!r}")
        self.source, self.resize, self.limit_per_class = src, resize, limit_per_class
        self.cache_dir = cache_dir
        files, dirs = scan_dir(src)
        self.classes, items = folder_items(src, files, dirs, limit_per_class)
        size = self._image_size(files[items[0][2]], display_name(src, items[0][2]))
        self.splits: dict[str, ImageFolderSplit] = {}
        for split in dict.fromkeys(s for s, _, _ in items):       # in storage order
            mine = [(y, p) for s, y, p in items if s == split]
            self.splits[split] = ImageFolderSplit(
                [files[p] for _, p in mine], np.array([y for y, _ in mine], dtype=np.int64),
                self.classes, split, resize, size)
        self._stats: DatasetStats | None = None

    def _image_size(self, first: Path, name: str) -> tuple[int, int]:
        if self.resize is not None:
            return int(self.resize), int(self.resize)
        return decode_image(first, name).shape[:2]               # (H, W) of the first image

    def __getitem__(self, name: str) -> ImageFolderSplit:
        if name not in self.splits:
            raise DataError(f"{self.source}: no split {name!r}; it has {sorted(self.splits)}")
        return self.splits[name]

    @property
    def train(self) -> ImageFolderSplit:
        return self["train"]

    @property
    def test(self) -> ImageFolderSplit:
        return self["test"]

    def stats(self, workers: int | None = None, progress: bool = True,
              use_cache: bool = True) -> DatasetStats:
        """Mean image and RGB PCA of the training split, in one streamed pass.

        The same numbers as ``load_dataset(...).stats()`` (float64 sums of
        integers are exact), kept in a small file in the cache directory (keyed
        by the folder's file list, sizes and times, and resize/limit) so the
        pass runs once.  workers: decoding processes (default: the CPU count).
        """
        if self._stats is not None:
            return self._stats
        params = {"kind": "image-folder-stream", "resize": self.resize,
                  "limit_per_class": self.limit_per_class}
        path = stats_path(cache_path(self.source, params, self.cache_dir)) if use_cache else None
        if path is not None and path.exists():
            try:
                self._stats = DatasetStats.load(path)[0]
                return self._stats
            except Exception as err:          # unreadable: compute again, replace it
                print(f"numpy-alexnet: ignoring unreadable stats file {path} ({err})",
                      file=sys.stderr)
        self._stats = streamed_stats(self.train, workers, progress)
        if path is not None:
            try:
                self._stats.save(path, {"source": str(self.source), "streamed": True})
            except OSError as err:            # the cache is only a speed-up
                print(f"numpy-alexnet: could not keep the statistics in {path.parent} ({err}); "
                      "they will be computed again next time", file=sys.stderr)
        return self._stats


# --------------------------------------------------------------------------- #
# Statistics in one pass
# --------------------------------------------------------------------------- #
def _chunk_sums(paths: list, resize, size: tuple, first: str):
    """(count, sum image float64 (3, H, W), RGB moments s1 (3,), s2 (3, 3)) of ``paths``."""
    x = decode_images(paths, paths, resize, size, first)          # (n, C, H, W) uint8
    s1, s2 = rgb_moments(x)
    return len(paths), x.sum(axis=0, dtype=np.float64), s1, s2


def streamed_stats(split: ImageFolderSplit, workers: int | None = None,
                   progress: bool = True) -> DatasetStats:
    """:class:`DatasetStats` of a split read a chunk at a time (in ``workers`` processes)."""
    n, (H, W) = len(split), split.image_size
    chunk = max(1, min(256, (1 << 24) // (3 * H * W)))             # at most ~16 MB a chunk
    ranges = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    chunks = [(split.paths[lo:hi], split.resize, split.image_size, split.paths[0])
              for lo, hi in ranges]
    total = np.zeros((3, H, W), dtype=np.float64)
    s1, s2 = np.zeros(3), np.zeros((3, 3))
    bar = progress_bar(progress, total=n, desc="mean image and RGB PCA", unit=" img")
    try:
        if workers > 1 and len(ranges) > 1:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers, initializer=ignore_group_signals) as pool:
                # Sums of integers in float64 are exact: the order they come in is free.
                for k, t, a, b in pool.imap_unordered(_chunk_sums_star, chunks):
                    total, s1, s2 = total + t, s1 + a, s2 + b
                    bar.update(k)
        else:
            for c in chunks:
                k, t, a, b = _chunk_sums(*c)
                total, s1, s2 = total + t, s1 + a, s2 + b
                bar.update(k)
    finally:
        bar.close()
    mean = (total / n).astype(np.float32)                          # (3, H, W)
    eigvals, eigvecs = pca_from_moments(s1, s2, n * H * W)
    return DatasetStats(mean, mean.astype(np.float64).mean(axis=(1, 2)), eigvals, eigvecs)


def _chunk_sums_star(args):
    return _chunk_sums(*args)


def _ignore_interrupts():
    """In a batch worker: Ctrl-C, a hang-up and a scheduler's SIGTERM often go to the
    whole process group; the main process handles them (it finishes its step and
    writes a checkpoint, still reading batches) and then stops its workers.  A
    worker whose parent is gone exits by itself (``_POLL_S``).  (The statistics
    pass's pool keeps SIGTERM, which ``Pool.terminate`` sends: ``ignore_group_signals``.)"""
    for name in ("SIGINT", "SIGHUP", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


# --------------------------------------------------------------------------- #
# Batches built in worker processes
# --------------------------------------------------------------------------- #
class StreamingBatchIterator(BatchIterator):
    """A :class:`BatchIterator` whose batches are built in ``workers`` processes.

    The arguments are BatchIterator's, and two more:

    images: anything indexable by an array of rows that returns uint8
        (n, C, H, W): an :class:`ImageFolderSplit` (decoded on demand) or an
        array.  labels: int64 (N,) (``split.labels``).
    workers: processes building batches (0: the parent's background thread,
        exactly as BatchIterator).  prefetch: batches asked for ahead of the
        one the caller holds (default 2 per worker); what the pipeline holds
        is about that many batches.  A thread of the calling process receives
        finished batches (and applies ``to_device``) while the caller trains.
    The transform must be picklable (a module-level class such as
    TrainTransform); ``to_device`` runs in the calling process's receiving thread.
    """

    def __init__(self, images, labels, batch_size: int, shuffle: bool = True, seed: int = 0,
                 transform=None, drop_last: bool = False, to_device=None, *,
                 workers: int = 2, prefetch: int | None = None):
        if int(workers) < 0:
            raise ValueError(f"StreamingBatchIterator: workers must be >= 0, got {workers}")
        if prefetch is not None and int(prefetch) < 1:
            raise ValueError(f"StreamingBatchIterator: prefetch must be >= 1 batch, "
                             f"got {prefetch}")
        super().__init__(images, labels, batch_size, shuffle=shuffle, seed=seed,
                         transform=transform, drop_last=drop_last, prefetch=True,
                         to_device=to_device)
        self.workers = int(workers)
        self.ahead = int(prefetch) if prefetch is not None else 2 * max(1, self.workers)
        self.most_in_flight = 0          # the most batches asked for and not yet handed out

    def _prefetching(self, epoch: int, start: int, order: np.ndarray) -> Iterator:
        if self.workers == 0:
            return super()._prefetching(epoch, start, order)
        return self._from_workers(epoch, start)

    def _from_workers(self, epoch: int, start: int) -> Iterator:
        job = copy.copy(self)                 # what a worker needs: no device mover
        job.to_device = None
        ctx = multiprocessing.get_context("spawn")
        tasks, results = ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(job, tasks, results, os.getpid()),
                             name=f"StreamingBatchIterator-{i}", daemon=True)
                 for i in range(self.workers)]
        for p in procs:
            p.start()
        # A receiving thread takes finished batches off the pipe (and onto the
        # device) while the caller trains, so the copy of a batch out of its
        # worker overlaps the step too.
        received: queue.Queue = queue.Queue()
        stop = threading.Event()
        receiver = threading.Thread(target=self._receive, args=(results, procs, received, stop),
                                    name="StreamingBatchIterator-receive", daemon=True)
        receiver.start()
        try:
            n, asked, ready = len(self), start, {}
            while asked < min(n, start + self.ahead):
                tasks.put((epoch, asked))
                asked += 1
            for b in range(start, n):
                self.most_in_flight = max(self.most_in_flight, asked - b)
                while b not in ready:
                    index, x, y, err = received.get()
                    if err is not None:
                        raise err
                    ready[index] = (x, y)
                x, y = ready.pop(b)
                if asked < n:                 # one handed out, one more asked for
                    tasks.put((epoch, asked))
                    asked += 1
                yield x, y
        finally:                              # the end, an early stop, an error, Ctrl-C
            stop.set()
            _stop(procs, tasks)
            # A worker killed while it was sending a batch leaves half a message in
            # the pipe, and a read of it would wait forever: the receiving thread
            # (a daemon) is then left behind instead of hanging the caller.
            receiver.join(timeout=5.0)
            for q in (tasks, results):
                q.cancel_join_thread()        # drop what is still queued
                q.close()

    def _receive(self, results, procs, received: queue.Queue, stop: threading.Event) -> None:
        """The receiving thread: (index, x, y, error) from the workers into ``received``."""
        while not stop.is_set():
            try:
                index, x, y, err = results.get(timeout=0.1)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode is not None]
                if dead and not stop.is_set():
                    received.put((None, None, None, _died(dead[0])))
                    return
                continue
            except (OSError, EOFError, ValueError) as exc:   # a queue broken by a dying worker
                received.put((None, None, None, RuntimeError(f"data workers' queue: {exc}")))
                return
            if err is None and self.to_device is not None:
                try:
                    x, y = self.to_device(x), self.to_device(y)
                except Exception as exc:
                    err = exc
            received.put((index, x, y, err))


def batch_iterator(split, batch_size: int, *, workers: int = 2, prefetch: int | None = None,
                   **kwargs) -> BatchIterator:
    """The batch iterator that fits ``split``, so a training recipe needs one line for both.

    A ``Split`` (arrays in RAM, from ``load_dataset``): a BatchIterator over its
    images (``workers`` and ``prefetch`` do not apply).  An
    :class:`ImageFolderSplit` (files on disk): a StreamingBatchIterator with
    ``workers`` processes.  kwargs: BatchIterator's (shuffle, seed, transform,
    drop_last, to_device).
    """
    if isinstance(split, ImageFolderSplit):
        return StreamingBatchIterator(split, split.labels, batch_size, workers=workers,
                                      prefetch=prefetch, **kwargs)
    return BatchIterator(split.images, split.labels, batch_size, **kwargs)


def _worker(job: StreamingBatchIterator, tasks, results, parent: int) -> None:
    """A worker's loop: (epoch, index) in, (index, x, y, error) out, None to stop."""
    _ignore_interrupts()
    results.cancel_join_thread()              # exiting never waits on an unread queue
    orders: dict = {}
    while True:
        try:
            task = tasks.get(timeout=_POLL_S)
        except queue.Empty:
            if os.getppid() != parent:        # the main process is gone: so are we
                return
            continue
        if task is None:
            return
        epoch, index = task
        try:
            if epoch not in orders:
                orders = {epoch: job.permutation(epoch)}
            x, y = job.make_batch(epoch, index, orders[epoch])
            results.put((index, x, y, None))
        except Exception as err:              # sent to the main process, raised there
            results.put((index, None, None, _sendable(err)))


def _sendable(err: Exception) -> Exception:
    """``err`` if it survives pickling (DataError naming the file does), else a RuntimeError."""
    import pickle
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"in a data worker: {type(err).__name__}: {err}")


def _died(p) -> RuntimeError:
    """The error for a worker that ended while batches were still wanted (no hang)."""
    how = f"killed by signal {-p.exitcode}" if p.exitcode < 0 else f"exit code {p.exitcode}"
    return RuntimeError(f"data worker {p.name} (pid {p.pid}) ended ({how}) while building "
                        "a batch; out of memory, or killed from outside?")


def _stop(procs, tasks, grace_s: float = 2.0) -> None:
    """Stop every worker: a None each, a short wait, then SIGKILL for any still busy."""
    for _ in procs:
        try:
            tasks.put(None)
        except (OSError, ValueError):
            break
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()


__all__ = ["ImageFolder", "ImageFolderSplit", "StreamingBatchIterator", "batch_iterator",
           "streamed_stats"]
