"""Softmax cross-entropy, the mean over the batch (the paper's "multinomial
logistic regression objective", section 3.5).

    p = softmax(z),  L = -(1/N) sum_n log p[n, y_n]

computed stably with log-sum-exp (the row maximum is subtracted before exp).
Gradient: dL/dz = (p - onehot(y)) / N.
"""
from __future__ import annotations

from ..backend import get_array_module
from .base import Accepts, Layer


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
    accepts = Accepts(ndim=2, shape="(N, num_classes)", labels=True)

    def forward(self, logits, labels):
        xp = get_array_module(logits)
        N = logits.shape[0]
        labels = xp.asarray(labels)
        logp = log_softmax(logits)                               # (N, K)
        self.cache = (logp, labels)
        return -logp[xp.arange(N), labels].mean()

    def backward(self, dout=1.0):
        logp, labels = self.cache
        xp = get_array_module(logp)
        N = logp.shape[0]
        dz = xp.exp(logp)                                        # softmax, (N, K)
        dz[xp.arange(N), labels] -= 1                            # p - onehot(y)
        return dz * (dout / N)
