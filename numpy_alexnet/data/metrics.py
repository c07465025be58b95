"""Top-1 and top-5 error rates, the numbers the paper reports (sections 6, 6.1).

"the top-5 error rate is the fraction of test images for which the correct
label is not among the five labels considered most probable by the model."

Ties are counted against the model: the true class is within the top k only
if fewer than k *other* classes score at least as high.  So a network that
outputs the same score for every class (a dead one) gets error 1 - not 0, as
an "any of the tied labels" rule would give it - for every k below the number
of classes.
"""
from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable softmax along ``axis`` (the maximum is subtracted before exp)."""
    z = np.asarray(z)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _host(a):
    # CuPy arrays come back to the host; metrics are cheap, (N, K) at most.
    return a.get() if type(a).__module__.split(".")[0] == "cupy" else np.asarray(a)


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """bool (N,): is labels[n] among the k highest scores[n]?  scores (N, K), labels (N,).

    Works on logits or probabilities alike (softmax keeps the order).
    """
    scores, labels = _host(scores), _host(labels).astype(np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"expected scores (N, K) and labels (N,), got {scores.shape} and {labels.shape}")
    N, K = scores.shape
    if not 1 <= k <= K:
        raise ValueError(f"k must be in 1..{K} (the number of classes), got {k}")
    if N and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must be in 0..{K - 1}")
    true_score = scores[np.arange(N), labels][:, None]                 # (N, 1)
    # Rank of the true class: other classes scoring at least as high.
    rank = (scores >= true_score).sum(axis=1) - 1                      # (N,)
    rank[np.isnan(true_score[:, 0])] = K                               # a NaN is never right
    return rank < k


def topk_error(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose label is not among the k highest scores (0.0 .. 1.0)."""
    correct = topk_correct(scores, labels, k)
    if correct.size == 0:
        raise ValueError("top-k error of an empty batch is undefined")
    return float(1.0 - correct.mean())


def topk_errors(scores: np.ndarray, labels: np.ndarray, ks=(1, 5)) -> dict[int, float]:
    """{k: top-k error} for each k in ks that does not exceed the number of classes."""
    K = np.shape(scores)[1]
    return {k: topk_error(scores, labels, k) for k in ks if k <= K}
