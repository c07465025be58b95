"""Max and average pooling, including the paper's overlapping 3x3/2 pools.

Section 3.4: with window z=3 and stride s=2 neighbouring windows overlap by
one row or column, which the paper found lowers top-1 error by 0.4%.  The
consequence for the backward pass: an input pixel can be the maximum of more
than one window, so gradients are *added* into the input, never assigned.

Ties in max pooling go to the first maximum in row-major window order (the
top-most, then left-most element of the window), as ``argmax`` returns it.
Output sizes use floor mode, ``(H - K) // stride + 1``, as Caffe and PyTorch
do (cuda-convnet rounds up; see docs/faithfulness.md).
"""
from __future__ import annotations

from ..backend import get_array_module, register
from .base import Accepts, Layer, conv_output_size, keyword_only
from .conv import _pair


# -- the reference kernels ----------------------------------------------------------
def pool_windows(x, kh: int, kw: int, stride: int):
    """A strided view (N, C, Ho, Wo, KH, KW) of every pooling window of x (N, C, H, W)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, stride, 0), conv_output_size(W, kw, stride, 0)
    sN, sC, sH, sW = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, Ho, Wo, kh, kw),
        strides=(sN, sC, sH * stride, sW * stride, sH, sW))      # (N, C, Ho, Wo, KH, KW), a view


def maxpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), state for the backward pass).

    A running maximum over the KH*KW window offsets: offset (i, j) of every
    window at once is one strided slice, so the loop never visits a pixel.
    """
    xp = get_array_module(x)
    win = pool_windows(x, kh, kw, stride)                        # (N, C, Ho, Wo, KH, KW), a view
    out = win[..., 0, 0].copy()                                  # (N, C, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            xp.maximum(out, win[..., i, j], out=out)
    return out, (x, out)


def maxpool_backward(dout, state, x_shape: tuple, kh: int, kw: int, stride: int):
    """Route each dout to the maximum of its window; overlapping windows add up.

    Offsets are visited in row-major order and each window routes its gradient
    once, to the first offset holding the maximum: ties go to the top-most,
    then left-most element.
    """
    xp = get_array_module(dout)
    x, out = state
    win = pool_windows(x, kh, kw, stride)                        # (N, C, Ho, Wo, KH, KW), a view
    N, C, Ho, Wo = dout.shape
    dx = xp.zeros(x_shape, dtype=dout.dtype)                     # (N, C, H, W)
    unrouted = xp.ones(out.shape, dtype=bool)                    # (N, C, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            hit = (win[..., i, j] == out) & unrouted             # (N, C, Ho, Wo) bool
            unrouted &= ~hit
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += dout * hit
    return dx


def avgpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), None): the mean of each window."""
    win = pool_windows(x, kh, kw, stride)                        # (N, C, Ho, Wo, KH, KW), a view
    out = win[..., 0, 0].copy()                                  # (N, C, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            if i or j:
                out += win[..., i, j]
    return out / x.dtype.type(kh * kw), None


def avgpool_backward(dout, state, x_shape: tuple, kh: int, kw: int, stride: int):
    """Spread each dout evenly over its window; overlapping windows add up."""
    xp = get_array_module(dout)
    N, C, Ho, Wo = dout.shape
    dx = xp.zeros(x_shape, dtype=dout.dtype)                     # (N, C, H, W)
    share = dout / (kh * kw)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += share
    return dx


register("numpy", maxpool_forward=maxpool_forward, maxpool_backward=maxpool_backward,
         avgpool_forward=avgpool_forward, avgpool_backward=avgpool_backward)


# -- the layers ---------------------------------------------------------------------
class _Pool2D(Layer):
    """What max and average pooling share: the window, the stride, the output size."""
    accepts = Accepts(ndim=4, shape="(N, C, H, W)", window=("kh", "kw", None))

    @keyword_only
    def __init__(self, *, kernel_size=3, stride: int = 2, name: str | None = None):
        super().__init__(name=name)
        self.kh, self.kw = (self.check_int("kernel_size", k, 1) for k in _pair(kernel_size))
        self.stride = self.check_int("stride", stride, 1)

    def describe(self) -> str:
        return f"{self.kh}x{self.kw}, stride {self.stride}"

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            self._fail("input shape", "(C, H, W) per example", tuple(input_shape))
        C, H, W = input_shape
        if H < self.kh or W < self.kw:
            self._fail("input height/width", f"at least {self.kh}x{self.kw}",
                       f"{H}x{W} (per example {tuple(input_shape)})")
        return (C, conv_output_size(H, self.kh, self.stride, 0),
                conv_output_size(W, self.kw, self.stride, 0))


class MaxPool2D(_Pool2D):
    """Max pooling; ``MaxPool2D(kernel_size=3, stride=2)`` is the paper's overlapping pool."""

    def forward(self, x, train: bool = False):
        out, state = self.ops.maxpool_forward(x, self.kh, self.kw, self.stride)
        self.cache = (state, x.shape)
        return out

    def backward(self, dout):
        state, x_shape = self.cache
        return self.ops.maxpool_backward(dout, state, x_shape, self.kh, self.kw, self.stride)


class AvgPool2D(_Pool2D):
    """Average pooling (used by the cuda-convnet CIFAR-10 net of Figure 1)."""

    def forward(self, x, train: bool = False):
        out, state = self.ops.avgpool_forward(x, self.kh, self.kw, self.stride)
        self.cache = (state, x.shape)
        return out

    def backward(self, dout):
        state, x_shape = self.cache
        return self.ops.avgpool_backward(dout, state, x_shape, self.kh, self.kw, self.stride)
