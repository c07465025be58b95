"""Softmax cross-entropy, the mean over the batch (the paper's "multinomial
logistic regression objective", section 3.5).

    p = softmax(z),  L = -(1/N) sum_n log p[n, y_n]

computed stably with log-sum-exp (the row maximum is subtracted before exp).
Gradient: dL/dz = (p - onehot(y)) / N.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import Layer


def log_softmax(z):
    """Stable log-softmax over the last axis."""
    xp = get_array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z):
    """Stable softmax over the last axis."""
    return get_array_module(z).exp(log_softmax(z))


class SoftmaxCrossEntropy(Layer):
    """``forward(logits, labels)`` returns the scalar loss; ``backward()`` dlogits."""

    def forward(self, logits, labels):
        self.check_input(logits, ndim=2, expected="(N, num_classes)")
        xp = get_array_module(logits)
        N, K = logits.shape
        labels = xp.asarray(labels)
        if labels.shape != (N,):
            self._fail("labels shape", f"({N},) to match the logits", tuple(labels.shape))
        if not np.issubdtype(np.dtype(labels.dtype), np.integer):
            self._fail("labels dtype", "integers", labels.dtype)
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= K:
            self._fail("label out of range", f"0 <= label < {K}", lo if lo < 0 else hi)
        logp = log_softmax(logits)                               # (N, K)
        rows = xp.arange(N)
        self.cache = (logp, labels)
        return -logp[rows, labels].mean()

    def backward(self, dout=1.0):
        self.check_dout(dout, expected=())                       # dL/dL: a scalar, 1 by default
        xp = get_array_module(self.cache[0])
        logp, labels = self.cache
        N = logp.shape[0]
        dz = xp.exp(logp)                                        # softmax, (N, K)
        dz[xp.arange(N), labels] -= 1
        return dz * (dout / N)
