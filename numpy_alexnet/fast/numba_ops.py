"""The 'numba' backend: the reference kernels compiled for the CPU.

Same signatures, shapes and return conventions as the NumPy reference
(``layers/conv.py``, ``layers/pooling.py``, ``layers/normalization.py``); the
matrix products of the convolution stay in NumPy (BLAS), as in the reference.

How the loops are split between threads: every kernel is
``@njit(cache=True, parallel=True)`` with ``prange`` over the (N, C) planes of
its *output*, so each thread writes only its own planes and no two threads
ever add into one element.  ``col2im`` and the pooling backwards, which *add*
(overlapping receptive fields and windows), therefore need no atomics: the
additions into one dx plane all happen in one thread.

Dtypes: outputs have the input's dtype and scalars (k, alpha, the pool size)
are cast to it before use, so float32 stays float32 (no silent upcast) and the
additions happen in the same order as in the reference wherever that order
is cheap to keep (col2im, average pooling, the LRN window sums).

Max pooling keeps, as its state for the backward, the offset ``i*KW + j`` of
each window's maximum (int32, shape (N, C, Ho, Wo)); ties go to the first
maximum in row-major window order, as in the reference.

Compiled code is cached on disk (``cache=True``) next to this file, so only
the first run on a machine pays for compilation (a few seconds a kernel and
dtype); ``benchmarks/bench_train.py`` reports that time separately.
"""
from __future__ import annotations

from types import SimpleNamespace

import numba
import numpy as np
from numba import prange

from ..layers.base import conv_output_size

_jit = numba.njit(cache=True, parallel=True, fastmath=False)


def _valid_range(n_out: int, offset: int, stride: int, pad: int, size: int):
    """Output positions o in [lo, hi) whose input o*stride + offset - pad lies in [0, size)."""
    lo = max(0, -((offset - pad) // stride))          # ceil((pad - offset) / stride)
    hi = min(n_out, (size - 1 - offset + pad) // stride + 1)
    return lo, max(lo, hi)


_valid_range_jit = numba.njit(cache=True, inline="always")(_valid_range)


# -- convolution: im2col and col2im ---------------------------------------------------
@_jit
def _im2col(x, kh, kw, stride, pad, Ho, Wo, cols):
    # x: (N, C, H, W); cols: (C*KH*KW, N, Ho*Wo), rows ordered (C, KH, KW).
    N, C, H, W = x.shape
    for nc in prange(N * C):                          # one (n, c) plane per iteration
        n, c = nc // C, nc % C
        for i in range(kh):
            ylo, yhi = _valid_range_jit(Ho, i, stride, pad, H)
            for j in range(kw):
                xlo, xhi = _valid_range_jit(Wo, j, stride, pad, W)
                row = (c * kh + i) * kw + j
                for y in range(Ho):
                    base = y * Wo
                    if y < ylo or y >= yhi:           # a row of padding
                        for xo in range(Wo):
                            cols[row, n, base + xo] = 0
                        continue
                    yy = y * stride + i - pad
                    for xo in range(xlo):             # padding on the left
                        cols[row, n, base + xo] = 0
                    for xo in range(xlo, xhi):
                        cols[row, n, base + xo] = x[n, c, yy, xo * stride + j - pad]
                    for xo in range(xhi, Wo):         # padding on the right
                        cols[row, n, base + xo] = 0
    return cols


@_jit
def _col2im(cols, kh, kw, stride, pad, Ho, Wo, dx):
    # cols: (C*KH*KW, N, Ho*Wo); dx: (N, C, H, W), zeroed here.
    N, C, H, W = dx.shape
    for nc in prange(N * C):                          # each thread owns whole dx planes
        n, c = nc // C, nc % C
        plane = dx[n, c]                              # (H, W), a view
        plane[:] = 0
        for i in range(kh):                           # offsets outermost: the reference's order
            ylo, yhi = _valid_range_jit(Ho, i, stride, pad, H)
            for j in range(kw):
                xlo, xhi = _valid_range_jit(Wo, j, stride, pad, W)
                row = cols[(c * kh + i) * kw + j, n]  # (Ho*Wo,), a view
                for y in range(ylo, yhi):
                    dst = plane[y * stride + i - pad]  # (W,), a view
                    src = row[y * Wo:(y + 1) * Wo]     # (Wo,), a view
                    for xo in range(xlo, xhi):
                        dst[xo * stride + j - pad] += src[xo]
    return dx


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """x: (N, C, H, W) -> cols: (N, C*KH*KW, Ho*Wo), as ``layers.conv.im2col``.

    As there, the memory is laid out (C*KH*KW, N, Ho*Wo) and cols is a
    transposed view of it, so that ``Conv2D`` needs one GEMM per group.
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    cols = np.empty((C * kh * kw, N, Ho * Wo), dtype=x.dtype)
    _im2col(x, kh, kw, stride, pad, Ho, Wo, cols)
    return cols.transpose(1, 0, 2)                               # (N, C*KH*KW, P), a view


def col2im(cols, x_shape: tuple, kh: int, kw: int, stride: int, pad: int):
    """cols: (N, C*KH*KW, Ho*Wo) -> dx: (N, C, H, W), summing overlaps, as ``layers.conv.col2im``."""
    N, C, H, W = x_shape
    Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    cols = cols.reshape(N, C * kh * kw, Ho * Wo)                 # (N, C*KH*KW, P)
    cols = np.ascontiguousarray(cols.transpose(1, 0, 2))         # (C*KH*KW, N, P): free for Conv2D's
    dx = np.empty((N, C, H, W), dtype=cols.dtype)
    return _col2im(cols, kh, kw, stride, pad, Ho, Wo, dx)


# -- pooling --------------------------------------------------------------------------
@_jit
def _maxpool_forward(x, kh, kw, stride, out, arg):
    N, C, Ho, Wo = out.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for y in range(Ho):
            for xo in range(Wo):
                y0, x0 = y * stride, xo * stride
                best = x[n, c, y0, x0]
                where = 0
                for i in range(kh):
                    for j in range(kw):
                        v = x[n, c, y0 + i, x0 + j]
                        if v > best:                 # strict: ties keep the first maximum
                            best = v
                            where = i * kw + j
                out[n, c, y, xo] = best
                arg[n, c, y, xo] = where
    return out, arg


@_jit
def _maxpool_backward(dout, arg, kw, stride, dx):
    N, C, Ho, Wo = dout.shape
    for nc in prange(N * C):                          # each thread owns whole dx planes
        n, c = nc // C, nc % C
        dx[n, c] = 0
        for y in range(Ho):
            for xo in range(Wo):
                a = arg[n, c, y, xo]
                dx[n, c, y * stride + a // kw, xo * stride + a % kw] += dout[n, c, y, xo]
    return dx


@_jit
def _avgpool_forward(x, kh, kw, stride, size, out):
    N, C, Ho, Wo = out.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for y in range(Ho):
            for xo in range(Wo):
                y0, x0 = y * stride, xo * stride
                acc = x[n, c, y0, x0]
                for i in range(kh):
                    for j in range(kw):
                        if i or j:
                            acc += x[n, c, y0 + i, x0 + j]
                out[n, c, y, xo] = acc / size
    return out


@_jit
def _avgpool_backward(dout, kh, kw, stride, size, dx):
    N, C, Ho, Wo = dout.shape
    for nc in prange(N * C):                          # each thread owns whole dx planes
        n, c = nc // C, nc % C
        dx[n, c] = 0
        for i in range(kh):                           # offsets outermost: the reference's order
            for j in range(kw):
                for y in range(Ho):
                    for xo in range(Wo):
                        dx[n, c, y * stride + i, xo * stride + j] += dout[n, c, y, xo] / size
    return dx


def maxpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), argmax offsets (N, C, Ho, Wo) int32)."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, stride, 0), conv_output_size(W, kw, stride, 0)
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    arg = np.empty((N, C, Ho, Wo), dtype=np.int32)
    return _maxpool_forward(x, kh, kw, stride, out, arg)


def maxpool_backward(dout, state, x_shape: tuple, kh: int, kw: int, stride: int):
    """Route each dout to its window's first maximum; overlapping windows add up."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x_shape, dtype=dout.dtype)
    return _maxpool_backward(dout, state, kw, stride, dx)


def avgpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), None): the mean of each window."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, stride, 0), conv_output_size(W, kw, stride, 0)
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    return _avgpool_forward(x, kh, kw, stride, x.dtype.type(kh * kw), out), None


def avgpool_backward(dout, state, x_shape: tuple, kh: int, kw: int, stride: int):
    """Spread each dout evenly over its window; overlapping windows add up."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x_shape, dtype=dout.dtype)
    return _avgpool_backward(dout, kh, kw, stride, dout.dtype.type(kh * kw), dx)


# -- local response normalization -----------------------------------------------------
@_jit
def _lrn_forward(x, half, k, alpha, mbeta, out, scale):
    # x, out, scale: (N, C, H*W); scale = k + alpha * sum over the channel window of x^2.
    N, C, P = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        s = scale[n, c]
        s[:] = 0
        for j in range(max(0, c - half), min(C, c + half + 1)):
            for p in range(P):
                v = x[n, j, p]
                s[p] += v * v
        for p in range(P):
            s[p] = k + alpha * s[p]
            out[n, c, p] = x[n, c, p] * s[p] ** mbeta
    return out, scale


@_jit
def _lrn_backward(dout, x, out, scale, half, mbeta, two_ab, t, dx):
    # All (N, C, H*W).  t = dout * out / scale, then dx = dout * scale^-beta
    # - 2 alpha beta * x * (window sum of t): two passes, each over output planes.
    N, C, P = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for p in range(P):
            t[n, c, p] = dout[n, c, p] * out[n, c, p] / scale[n, c, p]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        d = dx[n, c]
        d[:] = 0
        for j in range(max(0, c - half), min(C, c + half + 1)):
            for p in range(P):
                d[p] += t[n, j, p]
        for p in range(P):
            d[p] = dout[n, c, p] * scale[n, c, p] ** mbeta - two_ab * x[n, c, p] * d[p]
    return dx


def lrn_forward(x, n: int, k: float, alpha: float, beta: float):
    """x (N, C, H, W) -> (out, scale), scale = k + alpha * windowed sum of x^2."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    t = x.dtype.type
    x3 = x.reshape(N, C, H * W)                                  # (N, C, P), a view
    out = np.empty_like(x3)
    scale = np.empty_like(x3)
    _lrn_forward(x3, n // 2, t(k), t(alpha), t(-beta), out, scale)
    return out.reshape(N, C, H, W), scale.reshape(N, C, H, W)    # (N, C, H, W) views


def lrn_backward(dout, x, out, scale, n: int, k: float, alpha: float, beta: float):
    """da = dout * scale^-beta - 2 alpha beta * x * windowsum(dout * out / scale)."""
    N, C, H, W = x.shape
    t = dout.dtype.type
    flat = [np.ascontiguousarray(a).reshape(N, C, H * W) for a in (dout, x, out, scale)]  # (N, C, P)
    tmp = np.empty_like(flat[0])
    dx = np.empty_like(flat[0])
    _lrn_backward(*flat, n // 2, t(-beta), t(2.0 * alpha * beta), tmp, dx)
    return dx.reshape(N, C, H, W)                                # (N, C, H, W), a view


OPS = SimpleNamespace(
    im2col=im2col, col2im=col2im,
    maxpool_forward=maxpool_forward, maxpool_backward=maxpool_backward,
    avgpool_forward=avgpool_forward, avgpool_backward=avgpool_backward,
    lrn_forward=lrn_forward, lrn_backward=lrn_backward,
)
