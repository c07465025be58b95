"""A seeded, shuffled batch iterator that prepares the next batch in the background.

Section 4: the augmented images "are generated in Python code on the CPU
while the GPU is training on the previous batch of images".  Here one
background thread builds batch i+1 (gather, crop, reflect, colour, convert
to float32, move to the model's device) while the caller trains on batch i.
NumPy releases the GIL inside its array loops, so on a multi-core machine
the two really overlap.

Reproducibility: the order of epoch e is a permutation drawn from
SeedSequence([seed, 1, e]) and the augmentation of batch b of epoch e uses a
generator seeded with SeedSequence([seed, 2, e, b]).  Neither depends on
thread timing, and a run resumed at (epoch, batch) sees exactly the batches
it would have seen (``epoch_iter(epoch, start_batch)``).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import numpy as np

_PERMUTATION, _AUGMENT = 1, 2       # tags that keep the two seed streams apart


class BatchIterator:
    """Batches (x, y) of ``images`` (uint8 (N, C, H, W)) and ``labels`` (N,).

    transform(x_uint8_batch, rng) -> float32 batch; default: a float32 copy.
    to_device(array) -> array on the model's backend (e.g. ``cupy.asarray``),
    applied to x and y in the background thread; default: leave on the host.
    ``for x, y in it`` runs one epoch and moves on to the next epoch the next
    time; ``set_epoch`` and ``epoch_iter`` choose explicitly.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
                 shuffle: bool = True, seed: int = 0,
                 transform: Callable | None = None, drop_last: bool = False,
                 prefetch: bool = True, to_device: Callable | None = None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
        self.transform, self.to_device = transform, to_device
        self.drop_last, self.prefetch = drop_last, prefetch
        self.epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        n, b = len(self.labels), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``iter(self)`` runs."""
        self.epoch = int(epoch)

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of the examples in ``epoch`` (int64 (N,))."""
        n = len(self.labels)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _PERMUTATION, epoch]))
        return rng.permutation(n)

    def make_batch(self, epoch: int, index: int, order: np.ndarray | None = None):
        """Batch ``index`` of ``epoch``, built in the calling thread: (x, y)."""
        if order is None:
            order = self.permutation(epoch)
        rows = order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.images[rows]                                   # (B, C, H, W) uint8
        y = self.labels[rows]                                   # (B,)
        if self.transform is None:
            x = x.astype(np.float32)
        else:
            rng = np.random.default_rng(
                np.random.SeedSequence([self.seed, _AUGMENT, epoch, index]))
            x = self.transform(x, rng)
        if self.to_device is not None:
            x, y = self.to_device(x), self.to_device(y)
        return x, y

    def __iter__(self) -> Iterator:
        epoch = self.epoch
        self.epoch += 1
        return self.epoch_iter(epoch)

    def epoch_iter(self, epoch: int, start_batch: int = 0) -> Iterator:
        """The batches of ``epoch`` from ``start_batch`` on (to resume mid-epoch)."""
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"start_batch must be in 0..{len(self)}, got {start_batch}")
        order = self.permutation(epoch)
        if not self.prefetch:
            return (self.make_batch(epoch, b, order) for b in range(start_batch, len(self)))
        return self._prefetching(epoch, start_batch, order)

    def _prefetching(self, epoch: int, start: int, order: np.ndarray) -> Iterator:
        # maxsize=1: one finished batch waits in the queue while the worker
        # builds the one after; never more than two batches ahead.
        q: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def work():
            try:
                for b in range(start, len(self)):
                    if stop.is_set() or not put(("batch", self.make_batch(epoch, b, order))):
                        return
                put(("done", None))
            except BaseException as err:          # handed to the consumer, raised there
                put(("error", err))

        worker = threading.Thread(target=work, name="BatchIterator-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                kind, payload = q.get()
                if kind == "batch":
                    yield payload
                elif kind == "error":
                    raise payload
                else:
                    return
        finally:                                  # also when the consumer stops early
            stop.set()
            worker.join()
