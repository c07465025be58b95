"""Convolution as im2col + matrix multiply (section 3.5 of the paper).

A convolution slides each of F kernels (C/G x KH x KW) over the padded input.
Written as a matrix product: unfold every receptive field into one column
(``im2col``), multiply by the kernels laid out as rows, and fold the gradient
back with ``col2im``, which *adds* where receptive fields overlap.

``groups=G`` splits the C input channels and the F kernels into G groups that
do not see each other: AlexNet's two towers, on one device, are exactly
``groups=2`` for conv2, conv4 and conv5 (docs/paper.md, "Two GPUs").
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, register
from .base import Accepts, Layer, conv_output_size, keyword_only


# -- the reference kernels ---------------------------------------------------------
def _pair(v) -> tuple:
    """3 -> (3, 3); (3, 5) stays (3, 5).  The layers check the values."""
    if np.isscalar(v):
        return (v, v)
    return tuple(v) if hasattr(v, "__len__") and len(v) == 2 else (v, None)


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Unfold every receptive field into a column of one matrix.

    x: (N, C, H, W)  ->  cols: (C*KH*KW, N*Ho*Wo), rows ordered (C, KH, KW) and
    columns (N, Ho, Wo): row (c, i, j), column (n, y, x) holds
    ``x_padded[n, c, y*stride + i, x*stride + j]``.

    No loops: a strided *view* of the padded input has shape
    (C, KH, KW, N, Ho, Wo), each element the pixel above; one copy lays it out.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    Ho = conv_output_size(H, kh, stride, pad)
    Wo = conv_output_size(W, kw, stride, pad)
    if pad > 0:
        x = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H+2p, W+2p)
    sN, sC, sH, sW = x.strides
    windows = xp.lib.stride_tricks.as_strided(
        x, shape=(C, kh, kw, N, Ho, Wo),
        strides=(sC, sH, sW, sN, sH * stride, sW * stride))    # (C, KH, KW, N, Ho, Wo), a view
    return xp.ascontiguousarray(windows).reshape(C * kh * kw, N * Ho * Wo)   # the copy


def col2im(cols, x_shape: tuple, kh: int, kw: int, stride: int, pad: int):
    """The adjoint of :func:`im2col`: fold columns back, summing overlaps.

    cols: (C*KH*KW, N*Ho*Wo)  ->  dx: (N, C, H, W).

    The loop runs over the KH*KW kernel offsets, never over pixels: for each
    offset (i, j) every output position adds into one strided slice at once.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    Ho = conv_output_size(H, kh, stride, pad)
    Wo = conv_output_size(W, kw, stride, pad)
    cols = cols.reshape(C, kh, kw, N, Ho, Wo).transpose(3, 0, 1, 2, 4, 5)  # (N, C, KH, KW, Ho, Wo)
    dx = xp.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += cols[:, :, i, j]
    return dx[:, :, pad:pad + H, pad:pad + W]                   # (N, C, H, W); safe for pad=0


def conv2d_forward(x, W, b, stride: int, pad: int, groups: int, im2col=im2col):
    """x (N, C, H, W), W (F, C/G, KH, KW), b (F,) -> (out (N, F, Ho, Wo), cache).

    out[n, f, y, x] = b[f] + sum over c < C/G, i, j of
                      W[f, c, i, j] * x_padded[n, g*C/G + c, y*s + i, x*s + j],
    g = f // (F/G) the group of filter f: with the receptive fields as the
    columns of ``cols``, each group's kernels (as rows) times its rows of
    ``cols``, one GEMM per group for the whole batch.
    ``im2col`` is the backend's (the CuPy backend passes its own kernel).
    """
    xp = get_array_module(x)
    N, C, H, Wd = x.shape
    F, Cg, kh, kw = W.shape
    G = groups
    Ho, Wo = conv_output_size(H, kh, stride, pad), conv_output_size(Wd, kw, stride, pad)
    cols = im2col(x, kh, kw, stride, pad)                                   # (C*K*K, N*P)
    cols = cols.reshape(G, Cg * kh * kw, N * Ho * Wo)                       # (G, Cg*K*K, N*P)
    out = W.reshape(G, F // G, Cg * kh * kw) @ cols                         # (G, Fg, N*P)
    out = out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)                   # (N, F, Ho, Wo), a view
    out = xp.ascontiguousarray(out)                                         # (N, F, Ho, Wo), a copy
    out += b.reshape(1, F, 1, 1)
    return out, (cols, x.shape)


def conv2d_backward(dout, cache, W, stride: int, pad: int, groups: int,
                    input_grad: bool = True, col2im=col2im):
    """dout (N, F, Ho, Wo) -> (dx (N, C, H, W) or None, dW like W, db (F,)).

    The forward was out = W @ cols + b per group, so dW = dout @ cols^T,
    dcols = W^T @ dout (folded back into dx by ``col2im``) and db the sum of
    dout over everything but the filter axis.  ``input_grad=False`` skips dx
    (the first layer of a net needs none).
    """
    cols, x_shape = cache                                                   # (G, Cg*K*K, N*P)
    G, CgKK, NP = cols.shape
    F, kh, kw = W.shape[0], W.shape[2], W.shape[3]
    db = dout.sum(axis=(0, 2, 3))                                           # (F,)
    dout_g = dout.transpose(1, 0, 2, 3).reshape(G, F // G, NP)              # (G, Fg, N*P), a copy
    dW = (dout_g @ cols.transpose(0, 2, 1)).reshape(W.shape)                # (F, Cg, KH, KW)
    if not input_grad:
        return None, dW, db
    dcols = W.reshape(G, F // G, CgKK).transpose(0, 2, 1) @ dout_g          # (G, Cg*K*K, N*P)
    dx = col2im(dcols.reshape(G * CgKK, NP), x_shape, kh, kw, stride, pad)  # (N, C, H, W)
    return dx, dW, db


register("numpy", im2col=im2col, col2im=col2im, conv2d_forward=conv2d_forward,
         conv2d_backward=conv2d_backward)


# -- the layer ----------------------------------------------------------------------
class Conv2D(Layer):
    """2-d convolution with ``groups``: W (F, C/G, KH, KW), b (F,).

    Initialization (section 5): weights ~ N(0, ``weight_std``) (0.01 in the
    paper), biases constant ``bias`` (1 in conv2, conv4, conv5; 0 elsewhere).
    Weights are drawn on the host in float64 from ``rng`` and then cast, so a
    seed gives the same start in any dtype and on any backend.
    """
    accepts = Accepts(ndim=4, shape="(N, {in_channels}, H, W)", channels="in_channels",
                      window=("kh", "kw", "padding"))

    @keyword_only
    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride: int = 1,
                 padding: int = 0, groups: int = 1, weight_std: float = 0.01, bias: float = 0.0,
                 rng: np.random.Generator | None = None, dtype=np.float32, name: str | None = None):
        super().__init__(name=name)
        self.in_channels = self.check_int("in_channels", in_channels, 1)
        self.out_channels = self.check_int("out_channels", out_channels, 1)
        self.kh, self.kw = (self.check_int("kernel_size", k, 1) for k in _pair(kernel_size))
        self.stride = self.check_int("stride", stride, 1)
        self.padding = self.check_int("padding", padding, 0)
        self.groups = self.check_int("groups", groups, 1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"Conv2D '{self.name}': in_channels={in_channels} and "
                             f"out_channels={out_channels} must both divide by groups={groups}")
        rng = rng if rng is not None else np.random.default_rng(0)
        shape = (self.out_channels, self.in_channels // self.groups, self.kh, self.kw)
        self.set_params(
            W=(rng.standard_normal(shape) * weight_std).astype(dtype),
            b=np.full(self.out_channels, bias, dtype=dtype))

    def describe(self) -> str:
        g = f", groups={self.groups}" if self.groups > 1 else ""
        return (f"{self.out_channels} x {self.kh}x{self.kw}x{self.in_channels // self.groups}, "
                f"stride {self.stride}, pad {self.padding}{g}")

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            self._fail("input shape", f"({self.in_channels}, H, W) per example", tuple(input_shape))
        C, H, W = input_shape
        if H + 2 * self.padding < self.kh or W + 2 * self.padding < self.kw:
            self._fail("input height/width", f"at least {self.kh - 2 * self.padding}x"
                       f"{self.kw - 2 * self.padding}", f"{H}x{W} (per example {tuple(input_shape)})")
        return (self.out_channels, conv_output_size(H, self.kh, self.stride, self.padding),
                conv_output_size(W, self.kw, self.stride, self.padding))

    def forward(self, x, train: bool = False):
        out, self.cache = self.ops.conv2d_forward(x, self.params["W"], self.params["b"],
                                                  self.stride, self.padding, self.groups)
        return out

    def backward(self, dout, input_grad: bool = True):
        dx, self.grads["W"], self.grads["b"] = self.ops.conv2d_backward(
            dout, self.cache, self.params["W"], self.stride, self.padding, self.groups,
            input_grad)
        return dx

    def param_backward(self, dout) -> None:
        """Only dW and db: the GEMM and col2im for dx are skipped."""
        self.backward(dout, input_grad=False)
