"""Dropout (section 4.2): each hidden neuron is zeroed with probability ``rate``.

Two equivalent ways to keep the expected activation the same at test time:

* ``mode='paper'`` (the default, as the paper does it): train with ``x * mask``;
  at test time use every neuron and multiply its output by ``1 - rate`` (0.5).
* ``mode='inverted'`` (what most libraries do now): train with
  ``x * mask / (1 - rate)``; at test time pass ``x`` through unchanged.

The mask is drawn on the host from this layer's own NumPy generator (seeded),
then moved to the array's device, so NumPy, Numba and CuPy runs drop the same
neurons for the same seed.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import Layer, is_finite_number, keyword_only

MODES = ("paper", "inverted")


class Dropout(Layer):
    @keyword_only
    def __init__(self, *, rate: float = 0.5, mode: str = "paper", seed: int = 0,
                 name: str | None = None):
        super().__init__(name=name)
        self.check_arg("rate", rate, is_finite_number(rate) and 0.0 <= rate < 1.0,
                       "in [0, 1)")
        self.check_arg("mode", mode, mode in MODES, f"one of {MODES}")
        self.rate, self.mode = float(rate), mode
        self.rng = np.random.default_rng(seed)

    def describe(self) -> str:
        return f"rate={self.rate:g}, {self.mode}"

    def forward(self, x, train: bool = False):
        keep = 1.0 - self.rate
        if not train:
            self.cache = None
            return x * x.dtype.type(keep) if self.mode == "paper" else x
        xp = get_array_module(x)
        mask = (self.rng.random(x.shape) < keep).astype(x.dtype)    # 1 = kept
        if self.mode == "inverted":
            mask /= x.dtype.type(keep)
        mask = xp.asarray(mask)
        self.cache = mask
        return x * mask

    def backward(self, dout):
        if self.cache is None:
            raise RuntimeError(f"Dropout '{self.name}': backward after a test-time forward; "
                               "forward runs in test mode unless told otherwise: to train, "
                               "call forward(x, train=True)")
        return dout * self.cache
