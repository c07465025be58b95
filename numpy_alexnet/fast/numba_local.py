"""The 'numba' backend's kernels for ``LocallyConnected2D`` (layers/local.py).

Same signatures, shapes and return conventions as ``layers.local.local_forward``
and ``local_backward``; the state a forward hands its backward is the input
itself, (x,), and the backward gathers the receptive fields again rather than
keep the unfolded columns.

Threads never add into one element: the forward and dW run ``prange`` over
output positions (each position has its own weights, so its dW is its own),
dx over the examples of the batch (each thread owns whole dx[n]).
Scalars and sums stay in the input's dtype.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..backend import register

_jit = numba.njit(cache=True, parallel=True, fastmath=False)
_inline = numba.njit(cache=True, inline="always")


@_inline
def _gather(x, n, y0, x0, kh, kw, patch):
    # patch[(c*KH + i)*KW + j] = x[n, c, y0 + i, x0 + j], 0 outside the image (padding).
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for c in range(C):
        for i in range(kh):
            yy = y0 + i
            for j in range(kw):
                xx = x0 + j
                k = (c * kh + i) * kw + j
                if 0 <= yy < H and 0 <= xx < W:
                    patch[k] = x[n, c, yy, xx]
                else:
                    patch[k] = 0
    return patch


@_jit
def _forward(x, Wm, b, kh, kw, stride, pad, Wo, out):
    # x: (N, C, H, W); Wm: (P, F, C*KH*KW); b: (F, P); out: (N, F, P).
    N = x.shape[0]
    P, F, CKK = Wm.shape
    for p in prange(P):                               # each thread owns whole positions
        y, xo = p // Wo, p % Wo
        patch = np.empty(CKK, dtype=x.dtype)
        cols = np.empty((CKK, N), dtype=x.dtype)      # this position's columns, one per example
        for n in range(N):
            _gather(x, n, y * stride - pad, xo * stride - pad, kh, kw, patch)
            cols[:, n] = patch
        acc = np.empty((F, N), dtype=x.dtype)         # out[:, :, p].T
        for f in range(F):
            row = acc[f]                              # (N,), a view
            row[:] = b[f, p]
            w = Wm[p, f]                              # (C*KH*KW,), a view
            for k in range(CKK):                      # the inner loop runs over examples:
                wk = w[k]                             # no reduction, so it vectorizes
                src = cols[k]
                for n in range(N):
                    row[n] += wk * src[n]
        for n in range(N):
            for f in range(F):
                out[n, f, p] = acc[f, n]
    return out


@_jit
def _weight_grad(x, dout, kh, kw, stride, pad, Wo, dW):
    # x: (N, C, H, W); dout: (N, F, P); dW: (P, F, C*KH*KW), zeroed here.
    N = x.shape[0]
    P, F, CKK = dW.shape
    for p in prange(P):                               # each position's weights are its own
        y, xo = p // Wo, p % Wo
        patch = np.empty(CKK, dtype=x.dtype)
        dW[p] = 0
        for n in range(N):
            _gather(x, n, y * stride - pad, xo * stride - pad, kh, kw, patch)
            for f in range(F):
                d = dout[n, f, p]
                g = dW[p, f]                          # (C*KH*KW,), a view
                for k in range(CKK):
                    g[k] += d * patch[k]
    return dW


@_jit
def _input_grad(dout, Wm, kh, kw, stride, pad, Wo, dx):
    # dout: (N, F, P); Wm: (P, F, C*KH*KW); dx: (N, C, H, W), zeroed here.
    N, C, H, W = dx.shape
    P, F, CKK = Wm.shape
    for n in prange(N):                               # each thread owns whole examples
        dx[n] = 0
        g = np.empty(CKK, dtype=dx.dtype)
        for p in range(P):
            y0, x0 = (p // Wo) * stride - pad, (p % Wo) * stride - pad
            g[:] = 0
            for f in range(F):                        # g = W[p].T @ dout[n, :, p]
                d = dout[n, f, p]
                w = Wm[p, f]
                for k in range(CKK):
                    g[k] += w[k] * d
            for c in range(C):                        # fold g back, as col2im does
                for i in range(kh):
                    yy = y0 + i
                    if yy < 0 or yy >= H:
                        continue
                    for j in range(kw):
                        xx = x0 + j
                        if 0 <= xx < W:
                            dx[n, c, yy, xx] += g[(c * kh + i) * kw + j]
    return dx


def local_forward(x, W, b, stride: int, pad: int):
    """As ``layers.local.local_forward``; the state for the backward is x itself."""
    x = np.ascontiguousarray(x)
    N, C, H, Wd = x.shape
    Ho, Wo, F, _, kh, kw = W.shape
    P = Ho * Wo
    Wm = np.ascontiguousarray(W).reshape(P, F, C * kh * kw)             # (P, F, C*K*K)
    bm = np.ascontiguousarray(b).reshape(F, P)                          # (F, P)
    out = np.empty((N, F, P), dtype=x.dtype)
    _forward(x, Wm, bm, kh, kw, stride, pad, Wo, out)
    return out.reshape(N, F, Ho, Wo), (x,)                              # (N, F, Ho, Wo)


def local_backward(dout, state, W, stride: int, pad: int, input_grad: bool = True):
    """As ``layers.local.local_backward``: (dx or None, dW, db)."""
    (x,) = state
    N, C, H, Wd = x.shape
    Ho, Wo, F, _, kh, kw = W.shape
    P = Ho * Wo
    dout_m = np.ascontiguousarray(dout).reshape(N, F, P)                # (N, F, P)
    db = dout.sum(axis=0)                                               # (F, Ho, Wo)
    dW = np.empty((P, F, C * kh * kw), dtype=x.dtype)
    _weight_grad(x, dout_m, kh, kw, stride, pad, Wo, dW)
    dW = dW.reshape(W.shape)                                            # (Ho, Wo, F, C, KH, KW)
    if not input_grad:
        return None, dW, db
    Wm = np.ascontiguousarray(W).reshape(P, F, C * kh * kw)             # (P, F, C*K*K)
    dx = np.empty((N, C, H, Wd), dtype=x.dtype)
    _input_grad(dout_m, Wm, kh, kw, stride, pad, Wo, dx)
    return dx, dW, db


register("numba", local_forward=local_forward, local_backward=local_backward)
