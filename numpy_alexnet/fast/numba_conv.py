"""The Numba backend's convolution: im2col, col2im, and Conv2D a chunk of the batch at a time.

Same signatures, shapes and return conventions as the reference
(``layers/conv.py``); the matrix products stay in NumPy (BLAS), as there.

The reference unfolds the whole batch at once: for the Figure-1 net's conv2
an 800 x 28,800 float32 matrix (92 MB) that im2col writes to main memory and
the GEMM reads back.  Here the batch goes through in chunks whose columns fit
in a core's cache (about ``CHUNK_BYTES``): unfold a chunk, multiply, move on
(``conv_forward_chunks``, ``conv_backward_chunks``, which ``fused.py`` builds
on).  The backward unfolds each chunk again rather than keep the columns.
Each thread takes a contiguous share of the batch (``numba_threads``).  dW is
summed per thread in float64 and then over threads in a fixed order, so the
gradients do not depend on the number of threads or on timing.

The standalone ``im2col`` and ``col2im`` are ``@njit(parallel=True)`` with
``prange`` over the (N, C) planes of their *output*, so each thread writes only
its own planes and ``col2im``, which adds where receptive fields overlap,
needs no atomics.  Outputs have the input's dtype, and the additions happen in
the reference's order wherever that order is cheap to keep.

Compiled code is cached on disk (``cache=True``) next to this file, so only
the first run on a machine pays for compilation.
"""
from __future__ import annotations

import functools
import types

import numba
import numpy as np
from numba import prange

from ..backend import register
from ..layers.base import conv_output_size
from .numba_threads import over_chunks

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
        src = x[n, c].ravel()                         # (H*W,), a view
        for i in range(kh):
            ylo, yhi = _valid_range_jit(Ho, i, stride, pad, H)
            for j in range(kw):
                xlo, xhi = _valid_range_jit(Wo, j, stride, pad, W)
                dst = cols[(c * kh + i) * kw + j, n]  # (Ho*Wo,), a view
                dst[:ylo * Wo] = 0                    # rows of padding above
                dst[yhi * Wo:] = 0                    # and below
                for y in range(ylo, yhi):
                    row = dst[y * Wo:(y + 1) * Wo]    # (Wo,), a view
                    base = (y * stride + i - pad) * W + j - pad
                    row[:xlo] = 0                     # padding on the left
                    for xo in range(xlo, xhi):
                        row[xo] = src[base + xo * stride]
                    row[xhi:] = 0                     # padding on the right
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


@numba.njit(cache=True, nogil=True)
def _col2im_wide(cols, kh, kw, pad, Ho, Wp, dx, plane):
    # Stride 1 only.  cols: (C*KH*KW, N, Ho*Wp), 'wide' columns: every output
    # row carries Wp - Wo extra columns which are exactly 0 (see
    # conv2d_backward).  Then offset (i, j) of plane (n, c) adds one contiguous
    # run into the padded plane (flat, (H+2p)*Wp + KW slack), where the
    # narrow columns needed a short run per output row.  dx: (N, C, H, W).
    N, C, H, W = dx.shape
    for nc in range(N * C):
        n, c = nc // C, nc % C
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                src = cols[(c * kh + i) * kw + j, n]  # (Ho*Wp,), a view
                run = plane[i * Wp + j:i * Wp + j + Ho * Wp]  # a view: indices >= 0, so it vectorizes
                for p in range(Ho * Wp):
                    run[p] += src[p]
        for y in range(H):
            dx[n, c, y] = plane[(y + pad) * Wp + pad:(y + pad) * Wp + pad + W]
    return dx


@numba.njit(cache=True, nogil=True)
def _col2im_narrow(cols, kh, kw, pad, Ho, Wo, Wp, dx, plane):
    # Stride 1, exact ('narrow') columns: cols (C*KH*KW, N, Ho*Wo).  Offset (i, j)
    # adds one run of Wo per output row into the padded plane (flat, as in
    # _col2im_wide), at indices >= 0 so that it vectorizes.  Used where the wide
    # columns would make the GEMM much larger (small planes: Figure-1's conv3,
    # 7 wide, pads to 11).  dx: (N, C, H, W).
    N, C, H, W = dx.shape
    for nc in range(N * C):
        n, c = nc // C, nc % C
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                src = cols[(c * kh + i) * kw + j, n]  # (Ho*Wo,), a view
                for y in range(Ho):
                    run = plane[(y + i) * Wp + j:(y + i) * Wp + j + Wo]   # (Wo,), a view
                    row = src[y * Wo:(y + 1) * Wo]                        # (Wo,), a view
                    for p in range(Wo):
                        run[p] += row[p]
        for y in range(H):
            dx[n, c, y] = plane[(y + pad) * Wp + pad:(y + pad) * Wp + pad + W]
    return dx


# A 'same' convolution (stride 1, output as large as the input: every convolution
# of the Figure-1 net, and AlexNet's after the first) has a simpler unfolding.  In
# the flat plane, output p = y*W + x at kernel offset (i, j) reads input p + off,
# off = (i - pad)*W + (j - pad): one run of the whole plane, shifted.  With the
# plane copied into a flat buffer with pad*W + pad zeros before and after it, the
# rows above and below the image read those zeros, and what is left is the
# columns that wrapped round a row edge: inside[j, p] says where output column
# p % W + j - pad lies in the image.  So each kernel offset is one loop over the
# plane, with a select and no branch: it vectorizes.
@functools.lru_cache(maxsize=64)
def _same_masks(W: int, P: int, kw: int, pad: int):
    """inside[j, p]: at kernel column j, output p = y*W + x reads an input column in
    the image.  (kw, P) bool, read-only, made once per shape: every chunk uses it."""
    x = np.arange(P) % W                                          # each output's column
    inside = np.stack([(x + j - pad >= 0) & (x + j - pad < W) for j in range(kw)])
    inside.flags.writeable = False
    return inside


@numba.njit(cache=True, nogil=True)
def _im2col_same(x, kh, kw, pad, inside, cols):
    # x: (N, C, H, W); cols: (C*KH*KW, N, H*W), as _im2col's, for a 'same' convolution;
    # inside: _same_masks(W, H*W, kw, pad).
    N, C, H, W = x.shape
    P, margin = H * W, pad * W + pad
    padded = np.zeros(P + 2 * margin, dtype=x.dtype)  # one plane, zeros around it
    zero = x.dtype.type(0)
    for n in range(N):
        for c in range(C):
            padded[margin:margin + P] = x[n, c].ravel()
            for i in range(kh):
                for j in range(kw):
                    start = margin + (i - pad) * W + (j - pad)               # >= 0
                    src, ok = padded[start:start + P], inside[j]           # (P,) views
                    dst = cols[(c * kh + i) * kw + j, n]                   # (P,), a view
                    for p in range(P):
                        v = src[p]
                        dst[p] = v if ok[p] else zero
    return cols


@numba.njit(cache=True, nogil=True)
def _col2im_same(cols, kh, kw, pad, inside, dx):
    # The other way round, for a 'same' convolution: cols (C*KH*KW, N, H*W) exact
    # columns; dx (N, C, H, W); inside as for _im2col_same.  Offset (i, j) adds its
    # run into the padded plane (adding 0 where a column wrapped: x + 0 == x),
    # offsets outermost as in the reference's col2im, so each element gets its
    # additions in the same order; what lands in the margins is padding, and is dropped.
    N, C, H, W = dx.shape
    P, margin = H * W, pad * W + pad
    padded = np.empty(P + 2 * margin, dtype=dx.dtype)
    zero = dx.dtype.type(0)
    for n in range(N):
        for c in range(C):
            padded[:] = 0
            for i in range(kh):
                for j in range(kw):
                    start = margin + (i - pad) * W + (j - pad)
                    run, ok = padded[start:start + P], inside[j]           # (P,) views
                    src = cols[(c * kh + i) * kw + j, n]                   # (P,), a view
                    for p in range(P):
                        v = src[p]
                        run[p] += v if ok[p] else zero
            dx[n, c] = padded[margin:margin + P].reshape(H, W)
    return dx


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """x: (N, C, H, W) -> cols: (C*KH*KW, N*Ho*Wo), as ``layers.conv.im2col``."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    cols = np.empty((C * kh * kw, N, Ho * Wo), dtype=x.dtype)
    _im2col(x, kh, kw, stride, pad, Ho, Wo, cols)
    return cols.reshape(C * kh * kw, N * Ho * Wo)                # (C*KH*KW, N*P), a view


def col2im(cols, x_shape: tuple, kh: int, kw: int, stride: int, pad: int):
    """cols: (C*KH*KW, N*Ho*Wo) -> dx: (N, C, H, W), summing overlaps, as ``layers.conv.col2im``."""
    N, C, H, W = x_shape
    Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    cols = np.ascontiguousarray(cols).reshape(C * kh * kw, N, Ho * Wo)   # (C*KH*KW, N, P)
    dx = np.empty((N, C, H, W), dtype=cols.dtype)
    return _col2im(cols, kh, kw, stride, pad, Ho, Wo, dx)


# -- the convolution, a chunk of the batch at a time -------------------------------------
CHUNK_BYTES = 1 << 20


def _serial(kernel, name: str):
    """``kernel`` compiled again without ``parallel``, under its own name.

    The own name matters: Numba's on-disk cache knows a function by its name,
    line and bytecode, not by its options, so a second compilation of the same
    Python function would share the parallel one's cache entries, and either
    could load the other's machine code: prange loops run inside the worker
    threads, and the unfolding's speed would depend on which of the two had
    been compiled last.
    """
    f = kernel.py_func
    g = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    return numba.njit(cache=True, nogil=True)(g)


_im2col_serial = _serial(_im2col, "_im2col_serial")
_col2im_serial = _serial(_col2im, "_col2im_serial")


def _chunk(C: int, kh: int, kw: int, P: int, itemsize: int, N: int) -> int:
    """How many examples go into one chunk: at least 1, at most N."""
    return max(1, min(N, CHUNK_BYTES // (C * kh * kw * P * itemsize)))


def _unfold_chunk(x, n0: int, m: int, kh, kw, stride, pad, Ho, Wo, buf):
    """im2col of examples n0 .. n0+m-1 into the front of the flat ``buf``: (C*K*K, m, P)."""
    C, H, W = x.shape[1:]
    cols = buf[:C * kh * kw * m * Ho * Wo].reshape(C * kh * kw, m, Ho * Wo)
    if stride == 1 and (Ho, Wo) == (H, W):                           # a 'same' convolution
        return _im2col_same(x[n0:n0 + m], kh, kw, pad, _same_masks(W, H * W, kw, pad), cols)
    return _im2col_serial(x[n0:n0 + m], kh, kw, stride, pad, Ho, Wo, cols)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def sum64(a):
    """The sum of a contiguous array, accumulated in float64.

    Only here may LLVM reorder the additions (``fastmath`` 'reassoc'), so
    that it vectorizes them, where one chain of dependent float64 adds would
    not.  In float64 the order moves the sum of float32 values far below
    float32's rounding, so db, this sum cast to float32, comes out the same
    but where the sum lies within about 1e-16 of a float32 rounding boundary.
    """
    flat = a.reshape(a.size)                          # (size,), a view
    acc = 0.0
    for i in range(flat.size):
        acc += np.float64(flat[i])
    return acc


@numba.njit(cache=True, nogil=True)
def _add_into(acc, part):
    """acc += part, elementwise, acc float64 and part float32 or float64, one shape
    (NumPy's mixed-dtype add goes through a casting buffer)."""
    a, p = acc.reshape(acc.size), part.reshape(part.size)   # flat views
    for i in range(a.size):
        a[i] += p[i]
    return acc


@numba.njit(cache=True, nogil=True)
def _dout_chunk(dout, dch, db):
    """dch[f, n, p] = dout[n, f, p] (the GEMM's layout) and db[f] += its sum (float64).

    dout: (m, F, P) rows of the layer's dout; dch: (F, m, P); db: (F,) float64.
    One pass over the chunk does the transposing copy the dW GEMM needs and
    the bias gradient, which the reference sums over the whole dout afterwards.
    """
    m, F, P = dout.shape
    for f in range(F):
        acc = 0.0                                     # float64: its rounding is far below float32's
        for n in range(m):
            src, dst = dout[n, f], dch[f, n]          # (P,) views
            dst[:] = src
            acc += sum64(dst)
        db[f] += acc
    return dch


def conv_forward_chunks(x, W, stride: int, pad: int, groups: int, epilogue):
    """The forward GEMMs a chunk at a time; each chunk's product goes to ``epilogue``.

    ``epilogue(n0, m, prod)`` gets examples n0 .. n0+m-1 as ``prod``, the
    products W @ cols without the bias, shape (F, m, Ho, Wo) (the GEMM's
    layout), and writes what its layer needs, in the same thread while
    ``prod`` is in cache: ``conv2d_forward`` adds the bias;
    ``fused.ConvNeuronPool`` also applies the ReLU and the pooling.
    """
    x = np.ascontiguousarray(x)
    N, C, H, Wd = x.shape
    F, Cg, kh, kw = W.shape
    G = groups
    Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(Wd, kw, stride, pad)
    P = Ho * Wo
    Wm = W.reshape(G, F // G, Cg * kh * kw)                              # (G, Fg, Cg*K*K)
    nb = _chunk(C, kh, kw, P, x.itemsize, N)

    def work(chunks):
        cols_buf = np.empty(C * kh * kw * nb * P, dtype=x.dtype)         # flat, reused by every chunk
        prod_buf = np.empty(F * nb * P, dtype=x.dtype)
        for n0, m in chunks:
            cols = _unfold_chunk(x, n0, m, kh, kw, stride, pad, Ho, Wo, cols_buf)  # (C*K*K, m, P)
            cols = cols.reshape(G, Cg * kh * kw, m * P)                  # (G, Cg*K*K, m*P)
            prod = prod_buf[:F * m * P].reshape(G, F // G, m * P)        # (G, Fg, m*P)
            for g in range(G):
                np.matmul(Wm[g], cols[g], out=prod[g])
            epilogue(n0, m, prod.reshape(F, m, Ho, Wo))                  # (F, m, Ho, Wo)

    over_chunks(work, N, nb)


def conv2d_forward(x, W, b, stride: int, pad: int, groups: int):
    """As ``layers.conv.conv2d_forward``; the state for the backward is x itself."""
    x = np.ascontiguousarray(x)
    N, F = x.shape[0], W.shape[0]
    Ho = conv_output_size(x.shape[2], W.shape[2], stride, pad)
    Wo = conv_output_size(x.shape[3], W.shape[3], stride, pad)
    out = np.empty((N, F, Ho * Wo), dtype=x.dtype)

    def add_bias(n0, m, prod):                                           # prod: (F, m, Ho, Wo)
        prod = prod.reshape(F, m, Ho * Wo).transpose(1, 0, 2)            # (m, F, P), a view
        np.add(prod, b.reshape(1, F, 1), out=out[n0:n0 + m])

    conv_forward_chunks(x, W, stride, pad, groups, add_bias)
    return out.reshape(N, F, Ho, Wo), (x,)


def conv_backward_chunks(x, W, stride: int, pad: int, groups: int, input_grad: bool,
                         Ho: int, Wo: int, prologue):
    """dx (or None), dW and db of a convolution, a chunk of the batch at a time.

    ``prologue(n0, m, dch, db)`` writes the gradient of the convolution's
    output for examples n0 .. n0+m-1 into ``dch``, shape (F, m, Ho, Wo) (the
    GEMM's layout), and adds its sum over (m, Ho, Wo) into ``db`` (F,
    float64, this thread's share): ``conv2d_backward`` copies it from dout;
    ``fused.ConvNeuronPool`` computes it from the pooling's dout, in cache.
    """
    N, C, H, Wd = x.shape
    F, Cg, kh, kw = W.shape
    G, Fg, CgKK = groups, F // groups, Cg * kh * kw
    P = Ho * Wo
    Wm = W.reshape(G, Fg, CgKK)                                          # (G, Fg, Cg*K*K)
    dtype = W.dtype
    dx = np.empty(x.shape, dtype=dtype) if input_grad else None
    nb = _chunk(C, kh, kw, P, x.itemsize, N)

    # Stride 1: a 'same' convolution (every one after the first in the Figure-1 net and
    # AlexNet) takes dx through exact columns and _col2im_same, one masked run per
    # kernel offset.  Other stride-1 convolutions go through 'wide' columns (one long
    # run per kernel offset, a GEMM Wp/Wo times larger) where that costs at most 30%
    # more multiply-adds, else through exact columns and a run per output row.
    Wp = Wd + 2 * pad                                                    # stride 1: Wo = Wp - KW + 1
    same = input_grad and stride == 1 and (Ho, Wo) == (H, Wd)
    inside = _same_masks(Wd, H * Wd, kw, pad) if same else None
    wide = input_grad and stride == 1 and not same and 10 * Wp <= 13 * Wo
    narrow = input_grad and stride == 1 and not same and not wide

    # dW is computed transposed, dW^T = cols @ dout^T, (Cg*K*K, Fg) per group: OpenBLAS
    # runs that product faster than dout @ cols^T on these chunk shapes, the same sums.
    # The chunks' products are added up in float64, as db is: summed in float32 the
    # result would depend on how the chunks are shared between threads (one chain of
    # additions or two round differently), and so would training.
    def work(chunks):
        dWt = np.zeros((G, CgKK, Fg), dtype=np.float64)                  # this thread's share
        db = np.zeros(F, dtype=np.float64)
        dWt_part = np.empty((G, CgKK, Fg), dtype=dtype)
        cols_buf = np.empty(C * kh * kw * nb * P, dtype=x.dtype)         # flat, reused by every chunk
        dch_buf = np.empty(F * nb * P, dtype=dtype)
        if wide:
            # dout widened to Wp columns per row, the extra ones 0 (they stay 0: only
            # [..., :Wo] is ever written), so W^T @ it gives wide dcols, extra columns 0.
            dwide_buf = np.zeros(F * nb * Ho * Wp, dtype=dtype)
            dcols_buf = np.empty(C * kh * kw * nb * Ho * Wp, dtype=dtype)
            plane = np.empty((H + 2 * pad) * Wp + kw, dtype=dtype)
        elif input_grad:
            dcols_buf = np.empty_like(cols_buf)
            plane = np.empty((H + 2 * pad) * Wp + kw, dtype=dtype)      # for _col2im_narrow
        for n0, m in chunks:
            cols = _unfold_chunk(x, n0, m, kh, kw, stride, pad, Ho, Wo, cols_buf)  # (C*K*K, m, P)
            cols = cols.reshape(G, CgKK, m * P)                          # (G, Cg*K*K, m*P)
            dch = dch_buf[:F * m * P].reshape(F, m, Ho, Wo)              # (F, m, Ho, Wo)
            prologue(n0, m, dch, db)
            dch = dch.reshape(G, Fg, m * P)                              # (G, Fg, m*P)
            for g in range(G):
                np.matmul(cols[g], dch[g].T, out=dWt_part[g])           # (Cg*K*K, Fg)
            _add_into(dWt, dWt_part)
            if wide:
                if m < nb:                                               # a share's shorter last chunk
                    dwide_buf[:] = 0
                dwide = dwide_buf[:F * m * Ho * Wp].reshape(F, m, Ho, Wp)   # (F, m, Ho, Wp)
                dwide[..., :Wo] = dch.reshape(F, m, Ho, Wo)
                dwide = dwide.reshape(G, Fg, m * Ho * Wp)                # (G, Fg, m*Ho*Wp)
                dcols = dcols_buf[:C * kh * kw * m * Ho * Wp].reshape(G, CgKK, m * Ho * Wp)
                for g in range(G):
                    np.matmul(Wm[g].T, dwide[g], out=dcols[g])          # (Cg*K*K, m*Ho*Wp)
                _col2im_wide(dcols.reshape(C * kh * kw, m, Ho * Wp), kh, kw, pad, Ho, Wp,
                             dx[n0:n0 + m], plane)
            elif input_grad:
                dcols = dcols_buf[:C * kh * kw * m * P].reshape(G, CgKK, m * P)  # (G, Cg*K*K, m*P)
                for g in range(G):
                    np.matmul(Wm[g].T, dch[g], out=dcols[g])
                if same:
                    _col2im_same(dcols.reshape(C * kh * kw, m, P), kh, kw, pad, inside,
                                 dx[n0:n0 + m])
                elif narrow:
                    _col2im_narrow(dcols.reshape(C * kh * kw, m, P), kh, kw, pad, Ho, Wo, Wp,
                                   dx[n0:n0 + m], plane)
                else:
                    _col2im_serial(dcols.reshape(C * kh * kw, m, P), kh, kw, stride, pad, Ho, Wo,
                                   dx[n0:n0 + m])
        return dWt, db

    parts = over_chunks(work, N, nb)
    dWt, db = parts[0]
    for part_dWt, part_db in parts[1:]:                                  # in thread order: reproducible
        dWt += part_dWt
        db += part_db
    dW = np.ascontiguousarray(dWt.transpose(0, 2, 1), dtype=dtype)       # (G, Fg, Cg*K*K)
    return dx, dW.reshape(W.shape), db.astype(dtype)


def conv2d_backward(dout, state, W, stride: int, pad: int, groups: int, input_grad: bool = True):
    """As ``layers.conv.conv2d_backward``: (dx or None, dW, db)."""
    (x,) = state
    dout = np.ascontiguousarray(dout)
    N, F, Ho, Wo = dout.shape
    d3 = dout.reshape(N, F, Ho * Wo)                                     # (N, F, P)

    def copy_dout(n0, m, dch, db):                                       # dch: (F, m, Ho, Wo)
        _dout_chunk(d3[n0:n0 + m], dch.reshape(F, m, Ho * Wo), db)

    return conv_backward_chunks(x, W, stride, pad, groups, input_grad, Ho, Wo, copy_dout)


register("numba", im2col=im2col, col2im=col2im, conv2d_forward=conv2d_forward,
         conv2d_backward=conv2d_backward)
