"""The Figure-1 measurement: the running training error, per epoch or over windows of steps.

The running training error of an epoch is the error over that epoch's batches
as they were trained on (``Trainer``'s ``train_error``, as cuda-convnet
reported it).  Over a *window* of W consecutive steps it is the mean of those
steps' errors (``steps.csv``), the windows running on across epochs, and a run
reaches a target at the end of the first window at or below it, mid-epoch if
need be: :class:`WindowTrainer` stops there.
"""
from __future__ import annotations

import numpy as np

from ..training.trainer import Trainer


def epochs_to_target(errors, target: float) -> int | None:
    """The first epoch (1-based) whose training error is <= target; None if none is."""
    for i, e in enumerate(errors):
        if e is not None and e <= target:
            return i + 1
    return None


def window_errors(step_errors, window_steps: int) -> list[float]:
    """The running training error over each ``window_steps`` consecutive steps (whole windows).

    ``step_errors``: each step's error rate in order (steps.csv's ``error``); the
    windows run on across epochs.  Each window's error is the mean of its
    steps' errors (all but an epoch's last batch are full, so this is the
    error over its images to a fraction of a percent).
    """
    n = len(step_errors) // window_steps
    a = np.asarray(step_errors[:n * window_steps], dtype=np.float64)
    return [float(e) for e in a.reshape(n, window_steps).mean(axis=1)]   # (windows, steps) -> (windows,)


def window_epochs(count: int, window: int, train_images: int) -> list[float]:
    """The epochs (passes over the training set) at the end of each of ``count`` windows."""
    return [round((k + 1) * window / train_images, 4) for k in range(count)]


def epochs_at_target(epochs: list, errors: list, target: float):
    """The first of ``epochs`` whose error is <= target; None if none is."""
    for ep, e in zip(epochs, errors):
        if e is not None and e <= target:
            return ep
    return None


class WindowTrainer(Trainer):
    """A Trainer measuring the running error every ``window_steps`` steps, and stopping at the
    end of the first window at or below ``target_error`` (with ``stop_in_window``).

    The loop asks for no further step once ``max_steps`` is reached, so
    reaching the target sets ``max_steps`` to this step; the base class's
    line about a max_steps stop is not printed for it (the study says it).
    """

    def __init__(self, *args, window_steps: int, stop_in_window: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.window_steps, self.stop_in_window = window_steps, stop_in_window
        self.reached = False
        self._study_log, self.log = self.log, self._log

    def _log(self, msg):
        if not (self.reached and msg.startswith("stopped at step")):
            self._study_log(msg)

    def train_step(self, x, y):
        loss, wrong = super().train_step(x, y)
        step, W = self.step + 1, self.window_steps     # this step, 1-based (counted later)
        if self.stop_in_window and step % W == 0:
            errs = [r["error"] for r in self.step_log[len(self.step_log) - (W - 1):]]
            if float(np.mean(errs + [wrong / len(y)])) <= self.target_error:
                self.reached = True
                self.max_steps = step
        return loss, wrong
