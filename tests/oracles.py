"""Naive loop implementations: slow, obvious, and used only to check the real code."""
import numpy as np


def conv_naive(x, W, b, stride, pad, groups):
    N, C, H, Wd = x.shape
    F, Cg, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho = (H + 2 * pad - KH) // stride + 1
    Wo = (Wd + 2 * pad - KW) // stride + 1
    Fg = F // groups
    out = np.zeros((N, F, Ho, Wo), dtype=np.float64)
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, g * Cg:(g + 1) * Cg, i * stride:i * stride + KH,
                               j * stride:j * stride + KW]
                    out[n, f, i, j] = np.sum(patch * W[f]) + b[f]
    return out


def pool_naive(x, k, stride, op):
    N, C, H, W = x.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    out = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = op(x[n, c, i * stride:i * stride + k, j * stride:j * stride + k])
    return out


def lrn_naive(x, n, k, alpha, beta):
    N, C, H, W = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(C):
        lo, hi = max(0, i - n // 2), min(C - 1, i + n // 2)
        s = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
        out[:, i] = x[:, i] / (k + alpha * s) ** beta
    return out
