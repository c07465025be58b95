"""The Numba backend's pooling: max and average, over (N, C) planes in parallel.

Same signatures, shapes and return conventions as the reference
(``layers/pooling.py``).  Every kernel runs ``prange`` over the planes of its
*output*, so each thread writes only its own planes and the backwards, which
add where windows overlap, need no atomics.

Max pooling keeps, as its state for the backward, the offset ``i*KW + j`` of
each window's maximum (int32, shape (N, C, Ho, Wo)); ties go to the first
maximum in row-major window order, as in the reference.  3 x 3 windows (the
pool of every net here) have their own kernel, ``_maxpool3_plane``, which the
fused steps (``fused.py``) use too.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..backend import register
from ..layers.base import conv_output_size

_jit = numba.njit(cache=True, parallel=True, fastmath=False)


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


# 3 x 3 windows (the pool of every net here) have a faster kernel: the general one
# branches on every comparison, and the data decide those branches.
@numba.njit(cache=True, nogil=True)
def _maxpool3_scratch(Ho, Wo, dtype):
    """The four work arrays of :func:`_maxpool3_plane` for planes (Ho, Wo)."""
    L1 = Ho * Wo - 2
    L2 = L1 - 2 * Wo
    return (np.empty(L1, dtype=dtype), np.empty(L1, dtype=np.int32),
            np.empty(L2, dtype=dtype), np.empty(L2, dtype=np.int32))


@numba.njit(cache=True, nogil=True)
def _maxpool3_plane(a, bias, relu, zero, Wo, stride, out, arg, rowmax, rowarg, winmax, winarg):
    """Max pooling of one plane over 3 x 3 windows: out, arg (Hq, Wq) as
    ``_maxpool_forward`` finds them for the plane a + bias (relu(a + bias) with
    ``relu``, as a fused ReLU -> pool), a the flat plane (Ho*Wo,).

    In passes that the compiler vectorizes, over the flat plane, q = y*Wo + x:

    1. at every q, the largest of a[q], a[q+1], a[q+2] (three neighbours in a
       row) and the first offset j (0, 1 or 2) that holds it;
    2. at every q, the largest of those at q, q + Wo, q + 2*Wo (three rows
       down) and the first row i that holds it, so the offset i*3 + j;
    3. each window's own start, q = (yq*Wo + xq) * stride, picked out of that.

    Strict > in both passes gives the first maximum in row-major window order,
    as the one-pass kernels find it.  With ``relu`` each triple starts from
    relu(its first element): ReLU's zeros tie, and the first wins.  Passes 1
    and 2 work out every q, many more than the windows need (and some that
    straddle a row's end, never picked), because long loops without branches
    are what vectorizes.  rowmax, rowarg, winmax, winarg: _maxpool3_scratch's.
    """
    Hq, Wq = out.shape
    L1, L2 = rowmax.size, winmax.size
    # Shifted views, so that every loop reads [q] (indices the compiler knows are >= 0).
    a0, a1, a2 = a[0:L1], a[1:L1 + 1], a[2:L1 + 2]
    for q in range(L1):                                 # 1. along the rows
        v0, v1, v2 = a0[q] + bias, a1[q] + bias, a2[q] + bias
        best = (v0 if v0 > zero else zero) if relu else v0
        where = np.int32(0)
        c = v1 > best
        best = v1 if c else best
        where = np.int32(1) if c else where
        c = v2 > best
        best = v2 if c else best
        where = np.int32(2) if c else where
        rowmax[q] = best
        rowarg[q] = where
    m0, m1, m2 = rowmax[0:L2], rowmax[Wo:L2 + Wo], rowmax[2 * Wo:L2 + 2 * Wo]
    g0, g1, g2 = rowarg[0:L2], rowarg[Wo:L2 + Wo], rowarg[2 * Wo:L2 + 2 * Wo]
    for q in range(L2):                                 # 2. down the columns
        best, where = m0[q], g0[q]
        c = m1[q] > best
        best = m1[q] if c else best
        where = g1[q] + np.int32(3) if c else where
        c = m2[q] > best
        best = m2[q] if c else best
        where = g2[q] + np.int32(6) if c else where
        winmax[q] = best
        winarg[q] = where
    for yq in range(Hq):                                # 3. the windows' starts
        orow, arow = out[yq], arg[yq]
        for xq in range(Wq):
            q = (yq * Wo + xq) * stride
            orow[xq] = winmax[q]
            arow[xq] = winarg[q]
    return out


@_jit
def _maxpool3_forward(x, stride, T, out, arg):
    # x: (N, C, H, W); out, arg: (N, C, Ho, Wo).  The planes in T blocks (T: the
    # threads), each block with its own work arrays.
    N, C, H, W = x.shape
    NC = N * C
    per = -(-NC // T)
    zero = x.dtype.type(0)
    for t in prange(T):
        scratch = _maxpool3_scratch(H, W, out.dtype)
        for nc in range(t * per, min(NC, (t + 1) * per)):
            n, c = nc // C, nc % C
            _maxpool3_plane(x[n, c].ravel(), zero, False, zero, W, stride, out[n, c], arg[n, c],
                            *scratch)
    return out, arg


def maxpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), argmax offsets (N, C, Ho, Wo) int32)."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, stride, 0), conv_output_size(W, kw, stride, 0)
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    arg = np.empty((N, C, Ho, Wo), dtype=np.int32)
    if kh == kw == 3:
        return _maxpool3_forward(x, stride, numba.get_num_threads(), out, arg)
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


register("numba", maxpool_forward=maxpool_forward, maxpool_backward=maxpool_backward,
         avgpool_forward=avgpool_forward, avgpool_backward=avgpool_backward)
