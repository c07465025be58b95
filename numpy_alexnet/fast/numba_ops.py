"""The 'numba' backend: the reference kernels compiled for the CPU.

Same signatures, shapes and return conventions as the NumPy reference
(``layers/conv.py``, ``layers/pooling.py``, ``layers/normalization.py``); the
matrix products of the convolution stay in NumPy (BLAS), as in the reference.
The convolution runs a chunk of the batch at a time (``conv_forward_chunks``,
``conv_backward_chunks``), and ``fused.py`` builds on those chunks to run
Conv2D -> ReLU or Tanh -> pool, and Conv2D -> ReLU, as one step each (``OPS.fuse``, which
``Sequential`` asks for).

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

import functools
import types
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


# -- the convolution, a chunk of the batch at a time -------------------------------------
# The reference unfolds the whole batch at once: for the Figure-1 net's conv2
# an 800 x 28,800 float32 matrix (92 MB) that im2col writes to main memory and
# the GEMM reads back.  Here the batch goes through in chunks whose columns
# fit in a core's cache (about ``CHUNK_BYTES``): unfold a chunk, multiply,
# move on.  The backward unfolds each chunk again rather than keep 92 MB of
# columns from the forward.
#
# Threads: each of ``numba.get_num_threads()`` Python threads takes every
# T-th chunk and runs the serial kernels below (they release the GIL) and a
# one-thread BLAS GEMM on it.  One pool of threads, never two: OpenBLAS's own
# threads spin for a while after every GEMM, and when they and Numba's
# threads take turns on the same cores each waits for the other (a 5x slower
# step, measured).  So the first parallel convolution sets BLAS to one thread
# *for the process* (threadpoolctl) and leaves it there: capping it only
# around each convolution and restoring it after cost the Figure-1 step 25%
# (measured: 226 ms against 171 ms on 2 cores), and AlexNet's fully connected
# layers lose nothing measurable (2,100 ms a step either way).  dW is summed
# per thread and then over threads in a fixed order, so results do not depend
# on timing.
CHUNK_BYTES = 1 << 20


def _serial(kernel, name: str):
    """``kernel`` compiled again without ``parallel``, under its own name.

    The own name matters: Numba's on-disk cache knows a function by its name,
    line and bytecode, not by its options, so a second compilation of the same
    Python function would share the parallel one's cache entries, and either
    could load the other's machine code: prange loops run inside the worker
    threads (measured: the unfolding took 2.5 or 4.6 ms a batch depending on
    which of the two had been compiled last).
    """
    f = kernel.py_func
    g = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    return numba.njit(cache=True, nogil=True)(g)


_im2col_serial = _serial(_im2col, "_im2col_serial")
_col2im_serial = _serial(_col2im, "_col2im_serial")
_POOL = None
_BLAS = None


def _chunk(C: int, kh: int, kw: int, P: int, itemsize: int, N: int) -> int:
    """How many examples go into one chunk: at least 1, at most N."""
    return max(1, min(N, CHUNK_BYTES // (C * kh * kw * P * itemsize)))


def _shares(N: int, nb: int, T: int) -> list:
    """For each of T threads, its chunks (n0, m): thread t takes examples
    t*N//T .. (t+1)*N//T - 1, so the shares differ by one example at most, in
    chunks of nb (the last of a share may be shorter)."""
    shares = []
    for t in range(T):
        lo, hi = t * N // T, (t + 1) * N // T
        shares.append([(n0, min(nb, hi - n0)) for n0 in range(lo, hi, nb)])
    return shares


def _over_chunks(work, N: int, nb: int) -> list:
    """[work(chunks of thread t) for each thread t], the threads at once; chunks
    as ``_shares`` cuts them.  Contiguous equal shares, not every T-th chunk:
    with chunks of 3 or 6 examples, every T-th chunk gave one thread up to 4
    examples more than the other (conv3 of the Figure-1 net: 66 and 62)."""
    global _POOL, _BLAS
    T = min(numba.get_num_threads(), -(-N // nb))                        # ceil(N / nb) chunks at most
    if T > 1 and _POOL is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:          # without it BLAS threads cannot be capped: stay serial
            T = 1
        else:
            from concurrent.futures import ThreadPoolExecutor
            _BLAS = ThreadpoolController().select(user_api="blas").lib_controllers
            _POOL = ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS,
                                       thread_name_prefix="numpy_alexnet_conv")
    if T == 1 or _POOL is None:
        return [work(_shares(N, nb, 1)[0])]
    for blas in _BLAS:
        if blas.get_num_threads() != 1:
            blas.set_num_threads(1)      # and left so (see above)
    futures = [_POOL.submit(work, chunks) for chunks in _shares(N, nb, T)]   # each GEMM on its own core
    return [f.result() for f in futures]


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
    that it vectorizes them: 5x faster than one chain of dependent float64
    adds.  In float64 the order moves the sum of float32 values far below
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
    """acc += part, elementwise, acc float64 and part float32 or float64, one shape:
    NumPy's mixed-dtype add goes through a casting buffer, 2.6x slower."""
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
    ``fused.ConvReluPool`` also applies the ReLU and the pooling.
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

    _over_chunks(work, N, nb)


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
    ``fused.ConvReluPool`` computes it from the pooling's dout, in cache.
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
    # Measured on one core, Figure-1's conv2 dx (GEMM + col2im): same 22 ms a batch,
    # wide 25, narrow 25; conv3: 9, 13, 10.
    Wp = Wd + 2 * pad                                                    # stride 1: Wo = Wp - KW + 1
    same = input_grad and stride == 1 and (Ho, Wo) == (H, Wd)
    inside = _same_masks(Wd, H * Wd, kw, pad) if same else None
    wide = input_grad and stride == 1 and not same and 10 * Wp <= 13 * Wo
    narrow = input_grad and stride == 1 and not same and not wide

    # dW is computed transposed, dW^T = cols @ dout^T, (Cg*K*K, Fg) per group: OpenBLAS
    # runs that product 20-35% faster than dout @ cols^T on the Figure-1 chunk shapes
    # (one core: conv2 16 against 25 ms a batch, conv1 9 against 13), the same sums.
    # The chunks' products are added up in float64, as db is.  Summed in float32, the
    # result depended on the number of threads: one chain of 128 chunks on one thread
    # took the Figure-1 net 8.7e-5 from the reference's loss in the 50-step drift test
    # (its bound is 1e-5; a max-pool choice flips), two chains of 64 1.4e-7.  In
    # float64 both give 1.4e-7, the same dW.
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

    parts = _over_chunks(work, N, nb)
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


# -- local response normalization -----------------------------------------------------
# scale^-beta is the costly part: a float32 pow is a scalar libm call per element
# (Numba has no vector math library here), four times the cost of the rest of the
# layer.  For the paper's beta = 0.75, a * s^-0.75 = a / sqrt(s * sqrt(s)): two
# square roots and a division, which vectorize (AlexNet's norm1 forward 25 -> 6 ms
# on 2 cores).  Each of those rounds once, so the result may differ from the
# reference's pow in the last bit or two (about 1e-7 relative in float32); any other
# beta takes pow.
@_jit
def _lrn_forward(x, half, k, alpha, mbeta, three_quarters, out, scale):
    # x, out, scale: (N, C, H*W); scale = k + alpha * sum over the channel window of x^2.
    N, C, P = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        s = scale[n, c]                               # (P,), a view
        s[:] = 0
        for j in range(max(0, c - half), min(C, c + half + 1)):
            xj = x[n, j]                              # (P,), a view
            for p in range(P):
                v = xj[p]
                s[p] += v * v
        xc, oc = x[n, c], out[n, c]                   # (P,) views
        for p in range(P):
            s[p] = k + alpha * s[p]
        if three_quarters:
            for p in range(P):
                v = s[p]
                oc[p] = xc[p] / np.sqrt(v * np.sqrt(v))   # x * v^-0.75
        else:
            for p in range(P):
                oc[p] = xc[p] * s[p] ** mbeta
    return out, scale


@_jit
def _lrn_backward(dout, x, out, scale, half, mbeta, three_quarters, two_ab, t, dx):
    # All (N, C, H*W).  t = dout * out / scale, then dx = dout * scale^-beta
    # - 2 alpha beta * x * (window sum of t): two passes, each over output planes.
    N, C, P = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        tc, dc, oc, sc = t[n, c], dout[n, c], out[n, c], scale[n, c]   # (P,) views
        for p in range(P):
            tc[p] = dc[p] * oc[p] / sc[p]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        d = dx[n, c]                                  # (P,), a view
        d[:] = 0
        for j in range(max(0, c - half), min(C, c + half + 1)):
            tj = t[n, j]                              # (P,), a view
            for p in range(P):
                d[p] += tj[p]
        dc, sc, xc = dout[n, c], scale[n, c], x[n, c]  # (P,) views
        if three_quarters:
            for p in range(P):
                v = sc[p]
                d[p] = dc[p] / np.sqrt(v * np.sqrt(v)) - two_ab * xc[p] * d[p]
        else:
            for p in range(P):
                d[p] = dc[p] * sc[p] ** mbeta - two_ab * xc[p] * d[p]
    return dx


def lrn_forward(x, n: int, k: float, alpha: float, beta: float):
    """x (N, C, H, W) -> (out, scale), scale = k + alpha * windowed sum of x^2."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    t = x.dtype.type
    x3 = x.reshape(N, C, H * W)                                  # (N, C, P), a view
    out = np.empty_like(x3)
    scale = np.empty_like(x3)
    _lrn_forward(x3, n // 2, t(k), t(alpha), t(-beta), beta == 0.75, out, scale)
    return out.reshape(N, C, H, W), scale.reshape(N, C, H, W)    # (N, C, H, W) views


def lrn_backward(dout, x, out, scale, n: int, k: float, alpha: float, beta: float):
    """da = dout * scale^-beta - 2 alpha beta * x * windowsum(dout * out / scale)."""
    N, C, H, W = x.shape
    t = dout.dtype.type
    flat = [np.ascontiguousarray(a).reshape(N, C, H * W) for a in (dout, x, out, scale)]  # (N, C, P)
    tmp = np.empty_like(flat[0])
    dx = np.empty_like(flat[0])
    _lrn_backward(*flat, n // 2, t(-beta), beta == 0.75, t(2.0 * alpha * beta), tmp, dx)
    return dx.reshape(N, C, H, W)                                # (N, C, H, W), a view


# -- the neurons: one pass each, where NumPy makes two or three ------------------------
@_jit
def _relu_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else 0
    return out


@_jit
def _relu_backward(dout, out, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] if out[i] > 0 else 0
    return dx


@_jit
def _tanh_backward(dout, out, one, dx):
    for i in prange(dout.size):                       # one: 1 in the arrays' dtype (no upcast)
        o = out[i]
        dx[i] = dout[i] * (one - o * o)
    return dx


def relu_forward(x):
    """x -> (max(0, x), state: the output, positive exactly where x was)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _relu_forward(x.reshape(-1), out.reshape(-1))
    return out, out


def relu_backward(dout, out):
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _relu_backward(dout.reshape(-1), out.reshape(-1), dx.reshape(-1))
    return dx


def tanh_forward(x):
    """NumPy's own tanh (vectorized); the state is the output."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, out):
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _tanh_backward(dout.reshape(-1), out.reshape(-1), dout.dtype.type(1), dx.reshape(-1))
    return dx


# -- fully connected layers: the GEMMs shared by the threads ----------------------------
# NumPy's x @ W runs on one core once a convolution has capped BLAS at one thread
# (above), and AlexNet's fc6 and fc7 GEMMs are the largest outside the convolutions
# (fc6's W is 151 MB).  So each thread takes a share of the output's columns and
# runs a one-thread BLAS GEMM on it, in the pool the convolutions use.  Every
# output element is still one dot product over the same inputs.  Small layers
# (Figure-1's fc10) keep the plain lines: a share each would cost more than it saves.
SPLIT_ELEMENTS = 1 << 20


def _split(n: int, work) -> None:
    """``work(lo, hi)`` on one contiguous share of range(n) per thread, the threads at once."""
    nb = -(-n // max(1, numba.get_num_threads()))                        # ceil(n / T)
    _over_chunks(lambda chunks: [work(n0, n0 + m) for n0, m in chunks], n, nb)


def linear_forward(x, W, b):
    """As ``Linear.forward``: x @ W + b, (N, D_out), the columns shared by the threads."""
    if W.size < SPLIT_ELEMENTS:
        return x @ W + b
    out = np.empty((x.shape[0], W.shape[1]), dtype=np.result_type(x, W))

    def work(lo, hi):                                                    # out[:, lo:hi], a view
        np.matmul(x, W[:, lo:hi], out=out[:, lo:hi])
        out[:, lo:hi] += b[lo:hi]

    _split(W.shape[1], work)
    return out


def linear_backward(dout, x, W, dW):
    """As ``Linear.backward``'s products: dW = x.T @ dout written into ``dW``,
    and dx = dout @ W.T returned, (N, D_in); each shared by the threads by columns."""
    if W.size < SPLIT_ELEMENTS:
        np.matmul(x.T, dout, out=dW)
        return dout @ W.T
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x.shape, dtype=np.result_type(dout, W))
    _split(W.shape[1], lambda lo, hi: np.matmul(x.T, dout[:, lo:hi], out=dW[:, lo:hi]))
    _split(W.shape[0], lambda lo, hi: np.matmul(dout, W[lo:hi].T, out=dx[:, lo:hi]))
    return dx


# -- the optimizer's update (not a layer op: MomentumSGD asks for it) -------------------
@numba.njit(cache=True, nogil=True)
def _momentum_update(w, g, v, momentum, decay_lr, lr):
    # w, g, v: flat, one dtype; the scalars are in that dtype too, so every line
    # rounds as the reference's array expression does (Numba does not fuse a
    # multiply and an add into one FMA without fastmath).
    for i in range(w.size):
        vi = v[i] * momentum                          # v *= momentum
        vi = vi - decay_lr * w[i]                     # v -= (weight_decay * lr) * w
        vi = vi - lr * g[i]                           # v -= lr * g
        v[i] = vi
        w[i] = w[i] + vi                              # w += v


def momentum_update(w, g, v, momentum: float, decay_lr: float, lr: float) -> bool:
    """Not an op of the reference: ``MomentumSGD.step``'s four array lines for one
    parameter, in one pass that reads w, g, v once and writes v and w once, a
    share of the elements per thread (in the convolutions' pool of threads, as
    ``_split`` runs the fully connected layers' GEMMs).

    The reference's lines make two temporaries and ten passes over memory; for
    AlexNet's 61 million parameters that was 250 ms of CPU a step.  The result is
    bit for bit the reference's (``tests/test_backends.py``).  Returns False, and
    does nothing, where the arrays are not contiguous NumPy arrays of one dtype:
    the caller then runs the reference lines.
    """
    arrays = (w, g, v)
    if not all(type(a) is np.ndarray and a.flags.c_contiguous and a.dtype == w.dtype
               and a.shape == w.shape for a in arrays):
        return False
    t = w.dtype.type
    w1, g1, v1 = w.reshape(-1), g.reshape(-1), v.reshape(-1)             # (size,) views
    scalars = (t(momentum), t(decay_lr), t(lr))
    if w.size < SPLIT_ELEMENTS:
        _momentum_update(w1, g1, v1, *scalars)
    else:
        _split(w.size, lambda lo, hi: _momentum_update(w1[lo:hi], g1[lo:hi], v1[lo:hi], *scalars))
    return True


OPS = SimpleNamespace(
    im2col=im2col, col2im=col2im, conv2d_forward=conv2d_forward, conv2d_backward=conv2d_backward,
    maxpool_forward=maxpool_forward, maxpool_backward=maxpool_backward,
    avgpool_forward=avgpool_forward, avgpool_backward=avgpool_backward,
    lrn_forward=lrn_forward, lrn_backward=lrn_backward,
    relu_forward=relu_forward, relu_backward=relu_backward,
    tanh_forward=tanh_forward, tanh_backward=tanh_backward,
)


def fuse(layers: list) -> list:
    """Not an op of the reference: ``layers`` with the runs this backend fuses as one
    step each (``Sequential`` asks for it; see ``fused.fuse``)."""
    from .fused import fuse as fuse_runs      # here, not at the top: fused.py imports this module
    return fuse_runs(layers)


OPS.fuse = fuse
OPS.momentum_update = momentum_update
OPS.linear_forward, OPS.linear_backward = linear_forward, linear_backward
