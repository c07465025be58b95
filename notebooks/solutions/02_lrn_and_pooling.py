"""Solutions to the exercises of notebook 02_lrn_and_pooling. Try them first."""
import numpy as np


def maxpool_backward_loops(dout, x, size, stride):
    """dout (N, C, Ho, Wo), x (N, C, H, W) -> dx (N, C, H, W)."""
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    win = x[n, c, oy * stride:oy * stride + size, ox * stride:ox * stride + size]
                    i, j = np.unravel_index(np.argmax(win), win.shape)       # first maximum
                    dx[n, c, oy * stride + i, ox * stride + j] += dout[n, c, oy, ox]   # add: windows overlap
    return dx


def lrn_cross_term(dout, a, b, s, n, alpha, beta):
    """The second term of dL/da for LRN: -2 alpha beta a_j sum_{i in w(j)} dout_i b_i / s_i."""
    g = dout * b / s                                          # (N, C, H, W)
    C = a.shape[1]
    summed = np.zeros_like(g)
    for j in range(C):
        lo, hi = max(0, j - n // 2), min(C - 1, j + n // 2)   # i in w(j) exactly when j in w(i)
        summed[:, j] = g[:, lo:hi + 1].sum(axis=1)
    return -2.0 * alpha * beta * a * summed
