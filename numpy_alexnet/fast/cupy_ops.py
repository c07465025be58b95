"""The 'cupy' backend: the reference kernels as CUDA kernels, through CuPy.

Same signatures, shapes and return conventions as the NumPy reference; the
arrays are CuPy arrays and stay on their device (nothing here copies to the
host).  The convolution is the reference's ``conv2d_forward`` and
``conv2d_backward`` with this module's ``im2col`` and ``col2im``: their
matrix products run on CuPy arrays as cuBLAS GEMMs.  CuPy's cuDNN bindings are
not used (CuPy 14 has none), and TF32 is left off (CuPy's default unless
``CUPY_TF32=1``), so float32 means float32.  The neurons, the fully connected
layers and the momentum update are the reference's array math, which runs on
CuPy arrays as it is.

Every kernel is an ``ElementwiseKernel`` with one thread per *output*
element, which gathers what it needs:

* ``im2col``: one thread per column entry, reading one (maybe padding) pixel;
* ``col2im``: one thread per input pixel, summing the column entries of every
  receptive field that covers it.  A gather, so no atomics and a fixed order
  of additions: the kernel offsets (i, j) in row-major order, as the
  reference's loop adds them;
* pooling backwards: one thread per input pixel, summing over the windows
  that contain it (at most ceil(K/stride)^2 of them), in the reference's
  order again;
* LRN: one thread per element, looping over its n-channel window.

Max pooling keeps, as its state, the offset ``i*KW + j`` of each window's
first maximum (int32, (N, C, Ho, Wo)).  Each op runs on the device of its
input (``with x.device``), so towers placed on different GPUs can call the
same ops.  Index arithmetic is in ``ptrdiff_t`` (64 bits).
"""
from __future__ import annotations

import functools

import cupy as cp

from ..backend import register
from ..layers import conv
from ..layers.base import conv_output_size

_IM2COL = cp.ElementwiseKernel(
    "raw T x, int32 N, int32 C, int32 H, int32 W, int32 Ho, int32 Wo, int32 kh, int32 kw, "
    "int32 stride, int32 pad",
    "T col",
    """
    // i runs over the memory of cols, laid out (C, KH, KW, N, Ho, Wo), C order.
    ptrdiff_t xo = i % Wo;
    ptrdiff_t yo = i / Wo % Ho;
    ptrdiff_t n = i / ((ptrdiff_t)Wo * Ho) % N;
    ptrdiff_t kj = i / ((ptrdiff_t)Wo * Ho * N) % kw;
    ptrdiff_t ki = i / ((ptrdiff_t)Wo * Ho * N * kw) % kh;
    ptrdiff_t c = i / ((ptrdiff_t)Wo * Ho * N * kw * kh);
    ptrdiff_t yy = yo * stride + ki - pad;
    ptrdiff_t xx = xo * stride + kj - pad;
    if (yy >= 0 && yy < H && xx >= 0 && xx < W) {
        col = x[((n * C + c) * H + yy) * W + xx];
    } else {
        col = (T)0;                                   // padding
    }
    """,
    "numpy_alexnet_im2col")

_COL2IM = cp.ElementwiseKernel(
    "raw T col, int32 N, int32 C, int32 H, int32 W, int32 Ho, int32 Wo, int32 kh, int32 kw, "
    "int32 stride, int32 pad",
    "T dx",
    """
    // i runs over dx (N, C, H, W); col is laid out (C, KH, KW, N, Ho, Wo).
    // Gather every column entry that read pixel (yy, xx).
    ptrdiff_t xx = i % W;
    ptrdiff_t yy = i / W % H;
    ptrdiff_t c = i / ((ptrdiff_t)W * H) % C;
    ptrdiff_t n = i / ((ptrdiff_t)W * H * C);
    T acc = (T)0;
    for (int ki = 0; ki < kh; ++ki) {
        ptrdiff_t ty = yy + pad - ki;                 // = yo * stride for a window that covers it
        if (ty < 0 || ty % stride != 0) continue;
        ptrdiff_t yo = ty / stride;
        if (yo >= Ho) continue;
        for (int kj = 0; kj < kw; ++kj) {
            ptrdiff_t tx = xx + pad - kj;
            if (tx < 0 || tx % stride != 0) continue;
            ptrdiff_t xo = tx / stride;
            if (xo >= Wo) continue;
            ptrdiff_t row = (c * kh + ki) * kw + kj;
            acc += col[(row * N + n) * ((ptrdiff_t)Ho * Wo) + yo * Wo + xo];
        }
    }
    dx = acc;
    """,
    "numpy_alexnet_col2im")

_MAXPOOL_FWD = cp.ElementwiseKernel(
    "raw T x, int32 H, int32 W, int32 Ho, int32 Wo, int32 kh, int32 kw, int32 stride",
    "T out, int32 arg",
    """
    // i runs over out (N*C, Ho, Wo).
    ptrdiff_t xo = i % Wo;
    ptrdiff_t yo = i / Wo % Ho;
    ptrdiff_t nc = i / ((ptrdiff_t)Wo * Ho);
    ptrdiff_t base = (nc * H + yo * stride) * W + xo * stride;
    T best = x[base];
    int where = 0;
    for (int ki = 0; ki < kh; ++ki) {
        for (int kj = 0; kj < kw; ++kj) {
            T v = x[base + ki * W + kj];
            if (v > best) { best = v; where = ki * kw + kj; }   // strict: ties keep the first
        }
    }
    out = best;
    arg = where;
    """,
    "numpy_alexnet_maxpool_fwd")

# The windows (yo, xo) that contain input pixel (yy, xx) satisfy
# yo*stride <= yy < yo*stride + kh, i.e. yo in [ceil((yy-kh+1)/stride), yy/stride].
# They are visited from the last to the first, so that the kernel offset
# (yy - yo*stride, xx - xo*stride) grows: the reference's order of additions.
_POOL_BWD_LOOP = """
    ptrdiff_t xx = i % W;
    ptrdiff_t yy = i / W % H;
    ptrdiff_t nc = i / ((ptrdiff_t)W * H);
    ptrdiff_t ay = yy - kh + 1, ax = xx - kw + 1;
    ptrdiff_t ylo = ay > 0 ? (ay + stride - 1) / stride : 0;
    ptrdiff_t xlo = ax > 0 ? (ax + stride - 1) / stride : 0;
    ptrdiff_t yhi = yy / stride < Ho ? yy / stride : Ho - 1;
    ptrdiff_t xhi = xx / stride < Wo ? xx / stride : Wo - 1;
    T acc = (T)0;
    for (ptrdiff_t yo = yhi; yo >= ylo; --yo) {
        for (ptrdiff_t xo = xhi; xo >= xlo; --xo) {
            ptrdiff_t o = (nc * Ho + yo) * Wo + xo;
            BODY
        }
    }
    dx = acc;
"""

_MAXPOOL_BWD = cp.ElementwiseKernel(
    "raw T dout, raw int32 arg, int32 H, int32 W, int32 Ho, int32 Wo, int32 kh, int32 kw, "
    "int32 stride",
    "T dx",
    _POOL_BWD_LOOP.replace(
        "BODY", "if (arg[o] == (yy - yo * stride) * kw + (xx - xo * stride)) acc += dout[o];"),
    "numpy_alexnet_maxpool_bwd")

_AVGPOOL_FWD = cp.ElementwiseKernel(
    "raw T x, int32 H, int32 W, int32 Ho, int32 Wo, int32 kh, int32 kw, int32 stride, T area",
    "T out",
    """
    ptrdiff_t xo = i % Wo;
    ptrdiff_t yo = i / Wo % Ho;
    ptrdiff_t nc = i / ((ptrdiff_t)Wo * Ho);
    ptrdiff_t base = (nc * H + yo * stride) * W + xo * stride;
    T acc = x[base];
    for (int ki = 0; ki < kh; ++ki) {
        for (int kj = 0; kj < kw; ++kj) {
            if (ki || kj) acc += x[base + ki * W + kj];
        }
    }
    out = acc / area;
    """,
    "numpy_alexnet_avgpool_fwd")

_AVGPOOL_BWD = cp.ElementwiseKernel(
    "raw T dout, int32 H, int32 W, int32 Ho, int32 Wo, int32 kh, int32 kw, int32 stride, "
    "T area",
    "T dx",
    _POOL_BWD_LOOP.replace("BODY", "acc += dout[o] / area;"),
    "numpy_alexnet_avgpool_bwd")

_LRN_FWD = cp.ElementwiseKernel(
    "raw T x, int32 C, int32 P, int32 half, T k, T alpha, T mbeta",
    "T out, T scale",
    """
    // i runs over (N, C, P=H*W); the window is channels [c-half, c+half], clipped.
    ptrdiff_t p = i % P;
    int c = (int)(i / P % C);
    ptrdiff_t n = i / ((ptrdiff_t)P * C);
    T acc = (T)0;
    for (int j = max(0, c - half); j <= min(C - 1, c + half); ++j) {
        T v = x[(n * C + j) * P + p];
        acc += v * v;
    }
    T s = k + alpha * acc;
    scale = s;
    out = x[i] * pow(s, mbeta);
    """,
    "numpy_alexnet_lrn_fwd")

_LRN_BWD = cp.ElementwiseKernel(
    "raw T t, T dout, T x, T scale, int32 C, int32 P, int32 half, T mbeta, T two_ab",
    "T dx",
    """
    // t = dout * out / scale (all of it, precomputed); dx = dout * scale^-beta
    // - 2 alpha beta * x * (the window sum of t).
    ptrdiff_t p = i % P;
    int c = (int)(i / P % C);
    ptrdiff_t n = i / ((ptrdiff_t)P * C);
    T acc = (T)0;
    for (int j = max(0, c - half); j <= min(C - 1, c + half); ++j) {
        acc += t[(n * C + j) * P + p];
    }
    dx = dout * pow(scale, mbeta) - two_ab * x * acc;
    """,
    "numpy_alexnet_lrn_bwd")


# -- the ops ------------------------------------------------------------------------------
def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """x: (N, C, H, W) -> cols: (C*KH*KW, N*Ho*Wo), as ``layers.conv.im2col``."""
    with x.device:
        x = cp.ascontiguousarray(x)
        N, C, H, W = x.shape
        Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
        cols = cp.empty((C * kh * kw, N, Ho * Wo), dtype=x.dtype)
        _IM2COL(x, N, C, H, W, Ho, Wo, kh, kw, stride, pad, cols)
        return cols.reshape(C * kh * kw, N * Ho * Wo)            # (C*KH*KW, N*P), a view


def col2im(cols, x_shape: tuple, kh: int, kw: int, stride: int, pad: int):
    """cols: (C*KH*KW, N*Ho*Wo) -> dx: (N, C, H, W), summing overlaps."""
    with cols.device:
        N, C, H, W = x_shape
        Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
        cols = cp.ascontiguousarray(cols)                        # (C*KH*KW, N*P)
        dx = cp.empty((N, C, H, W), dtype=cols.dtype)
        _COL2IM(cols, N, C, H, W, Ho, Wo, kh, kw, stride, pad, dx)
        return dx


def maxpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), argmax offsets (N, C, Ho, Wo) int32)."""
    with x.device:
        x = cp.ascontiguousarray(x)
        N, C, H, W = x.shape
        Ho, Wo = conv_output_size(H, kh, stride, 0), conv_output_size(W, kw, stride, 0)
        out = cp.empty((N, C, Ho, Wo), dtype=x.dtype)
        arg = cp.empty((N, C, Ho, Wo), dtype=cp.int32)
        _MAXPOOL_FWD(x, H, W, Ho, Wo, kh, kw, stride, out, arg)
        return out, arg


def maxpool_backward(dout, state, x_shape: tuple, kh: int, kw: int, stride: int):
    """Route each dout to its window's first maximum; overlapping windows add up."""
    with dout.device:
        dout = cp.ascontiguousarray(dout)
        N, C, Ho, Wo = dout.shape
        _, _, H, W = x_shape
        dx = cp.empty(x_shape, dtype=dout.dtype)
        _MAXPOOL_BWD(dout, cp.ascontiguousarray(state), H, W, Ho, Wo, kh, kw, stride, dx)
        return dx


def avgpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), None): the mean of each window."""
    with x.device:
        x = cp.ascontiguousarray(x)
        N, C, H, W = x.shape
        Ho, Wo = conv_output_size(H, kh, stride, 0), conv_output_size(W, kw, stride, 0)
        out = cp.empty((N, C, Ho, Wo), dtype=x.dtype)
        _AVGPOOL_FWD(x, H, W, Ho, Wo, kh, kw, stride, x.dtype.type(kh * kw), out)
        return out, None


def avgpool_backward(dout, state, x_shape: tuple, kh: int, kw: int, stride: int):
    """Spread each dout evenly over its window; overlapping windows add up."""
    with dout.device:
        dout = cp.ascontiguousarray(dout)
        N, C, Ho, Wo = dout.shape
        _, _, H, W = x_shape
        dx = cp.empty(x_shape, dtype=dout.dtype)
        _AVGPOOL_BWD(dout, H, W, Ho, Wo, kh, kw, stride, dout.dtype.type(kh * kw), dx)
        return dx


def lrn_forward(x, n: int, k: float, alpha: float, beta: float):
    """x (N, C, H, W) -> (out, scale), scale = k + alpha * windowed sum of x^2."""
    with x.device:
        x = cp.ascontiguousarray(x)
        N, C, H, W = x.shape
        t = x.dtype.type
        out = cp.empty_like(x)
        scale = cp.empty_like(x)
        _LRN_FWD(x, C, H * W, n // 2, t(k), t(alpha), t(-beta), out, scale)
        return out, scale


def lrn_backward(dout, x, out, scale, n: int, k: float, alpha: float, beta: float):
    """da = dout * scale^-beta - 2 alpha beta * x * windowsum(dout * out / scale)."""
    with dout.device:
        N, C, H, W = x.shape
        t = dout.dtype.type
        ratio = cp.ascontiguousarray(dout * out / scale)            # (N, C, H, W)
        dx = cp.empty(x.shape, dtype=dout.dtype)
        _LRN_BWD(ratio, dout, x, scale, C, H * W, n // 2, t(-beta), t(2.0 * alpha * beta), dx)
        return dx


register("cupy", im2col=im2col, col2im=col2im,
         # The reference's whole-batch GEMMs suit a GPU; only the unfolding is CuPy's own.
         conv2d_forward=functools.partial(conv.conv2d_forward, im2col=im2col),
         conv2d_backward=functools.partial(conv.conv2d_backward, col2im=col2im),
         maxpool_forward=maxpool_forward, maxpool_backward=maxpool_backward,
         avgpool_forward=avgpool_forward, avgpool_backward=avgpool_backward,
         lrn_forward=lrn_forward, lrn_backward=lrn_backward)
