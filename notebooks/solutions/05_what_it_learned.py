"""Solutions to the exercises of notebook 05_what_it_learned. Try them first."""
import numpy as np


def sq_distances(a, b):
    """(n, D), (m, D) -> (n, m) squared Euclidean distances, float64, >= 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    sq = (a ** 2).sum(axis=1)[:, None] + (b ** 2).sum(axis=1)[None, :] - 2 * a @ b.T   # (n, m)
    return np.maximum(sq, 0)                                # rounding can dip below 0


def grey_share(W):
    """(F, 3, K, K) -> (F,): the share of each kernel's energy in its colour-agnostic part."""
    grey = W.mean(axis=1, keepdims=True)                    # (F, 1, K, K), repeated in 3 channels
    return 3 * (grey ** 2).sum(axis=(1, 2, 3)) / (W ** 2).sum(axis=(1, 2, 3))
