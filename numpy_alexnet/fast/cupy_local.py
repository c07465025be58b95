"""The 'cupy' backend's kernels for ``LocallyConnected2D`` (layers/local.py).

Same signatures, shapes and return conventions as ``layers.local.local_forward``
and ``local_backward``; the arrays are CuPy arrays and stay on their device.
The state a forward hands its backward is the input itself, (x,).

As in ``cupy_ops``, every kernel is an ``ElementwiseKernel`` with one thread
per *output* element that gathers what it needs, so no atomics and a fixed
order of additions:

* forward: one thread per out[n, f, p], summing over its receptive field;
* dW: one thread per weight W[p, f, k], summing over the batch;
* dx: one thread per input pixel, summing over the output positions whose
  receptive field covers it (as ``cupy_ops``'s col2im) and the F filters.

Weights are used as Wm (P, F, C*KH*KW), a view of W (Ho, Wo, F, C, KH, KW).
Index arithmetic is in ``ptrdiff_t`` (64 bits).
"""
from __future__ import annotations

import cupy as cp

from ..backend import register

_LOCAL_FWD = cp.ElementwiseKernel(
    "raw T x, raw T Wm, raw T b, int32 C, int32 H, int32 W, int32 F, int32 P, int32 Wo, "
    "int32 kh, int32 kw, int32 stride, int32 pad",
    "T out",
    """
    // i runs over out (N, F, P).
    ptrdiff_t p = i % P;
    ptrdiff_t f = i / P % F;
    ptrdiff_t n = i / ((ptrdiff_t)P * F);
    ptrdiff_t y0 = p / Wo * stride - pad;
    ptrdiff_t x0 = p % Wo * stride - pad;
    ptrdiff_t CKK = (ptrdiff_t)C * kh * kw;
    ptrdiff_t wbase = (p * F + f) * CKK;
    T acc = b[f * P + p];
    for (int c = 0; c < C; ++c) {
        for (int ki = 0; ki < kh; ++ki) {
            ptrdiff_t yy = y0 + ki;
            if (yy < 0 || yy >= H) continue;                // padding adds nothing
            for (int kj = 0; kj < kw; ++kj) {
                ptrdiff_t xx = x0 + kj;
                if (xx < 0 || xx >= W) continue;
                acc += Wm[wbase + ((ptrdiff_t)c * kh + ki) * kw + kj]
                       * x[((n * C + c) * H + yy) * W + xx];
            }
        }
    }
    out = acc;
    """,
    "numpy_alexnet_local_fwd")

_LOCAL_DW = cp.ElementwiseKernel(
    "raw T x, raw T dout, int32 N, int32 C, int32 H, int32 W, int32 F, int32 P, int32 Wo, "
    "int32 kh, int32 kw, int32 stride, int32 pad",
    "T dW",
    """
    // i runs over dW (P, F, C*KH*KW); k = (c*KH + ki)*KW + kj.
    ptrdiff_t CKK = (ptrdiff_t)C * kh * kw;
    ptrdiff_t k = i % CKK;
    ptrdiff_t f = i / CKK % F;
    ptrdiff_t p = i / (CKK * F);
    ptrdiff_t kj = k % kw;
    ptrdiff_t ki = k / kw % kh;
    ptrdiff_t c = k / ((ptrdiff_t)kw * kh);
    ptrdiff_t yy = p / Wo * stride - pad + ki;
    ptrdiff_t xx = p % Wo * stride - pad + kj;
    T acc = (T)0;
    if (yy >= 0 && yy < H && xx >= 0 && xx < W) {        // else a padding input: 0
        for (ptrdiff_t n = 0; n < N; ++n) {
            acc += dout[(n * F + f) * P + p] * x[((n * C + c) * H + yy) * W + xx];
        }
    }
    dW = acc;
    """,
    "numpy_alexnet_local_dw")

_LOCAL_DX = cp.ElementwiseKernel(
    "raw T dout, raw T Wm, int32 C, int32 H, int32 W, int32 F, int32 Ho, int32 Wo, "
    "int32 kh, int32 kw, int32 stride, int32 pad",
    "T dx",
    """
    // i runs over dx (N, C, H, W): the output positions (y, xo) whose field covers
    // pixel (h, w) at kernel offset (ki, kj) are those with y*stride + ki - pad = h.
    ptrdiff_t w = i % W;
    ptrdiff_t h = i / W % H;
    ptrdiff_t c = i / ((ptrdiff_t)W * H) % C;
    ptrdiff_t n = i / ((ptrdiff_t)W * H * C);
    ptrdiff_t P = (ptrdiff_t)Ho * Wo;
    ptrdiff_t CKK = (ptrdiff_t)C * kh * kw;
    T acc = (T)0;
    for (int ki = 0; ki < kh; ++ki) {
        ptrdiff_t ty = h + pad - ki;
        if (ty < 0 || ty % stride != 0) continue;
        ptrdiff_t y = ty / stride;
        if (y >= Ho) continue;
        for (int kj = 0; kj < kw; ++kj) {
            ptrdiff_t tx = w + pad - kj;
            if (tx < 0 || tx % stride != 0) continue;
            ptrdiff_t xo = tx / stride;
            if (xo >= Wo) continue;
            ptrdiff_t p = y * Wo + xo;
            ptrdiff_t k = (c * kh + ki) * kw + kj;
            for (ptrdiff_t f = 0; f < F; ++f) {
                acc += Wm[(p * F + f) * CKK + k] * dout[(n * F + f) * P + p];
            }
        }
    }
    dx = acc;
    """,
    "numpy_alexnet_local_dx")


def local_forward(x, W, b, stride: int, pad: int):
    """As ``layers.local.local_forward``; the state for the backward is x itself."""
    with x.device:
        x = cp.ascontiguousarray(x)
        N, C, H, Wd = x.shape
        Ho, Wo, F, _, kh, kw = W.shape
        out = cp.empty((N, F, Ho, Wo), dtype=x.dtype)
        _LOCAL_FWD(x, cp.ascontiguousarray(W), cp.ascontiguousarray(b), C, H, Wd, F, Ho * Wo, Wo,
                   kh, kw, stride, pad, out)
        return out, (x,)


def local_backward(dout, state, W, stride: int, pad: int, input_grad: bool = True):
    """As ``layers.local.local_backward``: (dx or None, dW, db)."""
    (x,) = state
    with dout.device:
        dout = cp.ascontiguousarray(dout)
        N, C, H, Wd = x.shape
        Ho, Wo, F, _, kh, kw = W.shape
        db = dout.sum(axis=0)                                           # (F, Ho, Wo)
        dW = cp.empty(W.shape, dtype=dout.dtype)                        # (Ho, Wo, F, C, KH, KW)
        _LOCAL_DW(x, dout, N, C, H, Wd, F, Ho * Wo, Wo, kh, kw, stride, pad, dW)
        if not input_grad:
            return None, dW, db
        dx = cp.empty(x.shape, dtype=dout.dtype)
        _LOCAL_DX(dout, cp.ascontiguousarray(W), C, H, Wd, F, Ho, Wo, kh, kw, stride, pad, dx)
        return dx, dW, db


register("cupy", local_forward=local_forward, local_backward=local_backward)
