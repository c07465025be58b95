"""Same-map (spatial) response normalization: the 2012 code's extra layer in conv2.

The 2012 code (cuda-convnet, layers-145) normalizes conv2's output twice
before pool2: across channels (the paper's LRN, ``LocalResponseNorm``) and
then over a size x size neighbourhood *within* each channel, a layer the
paper does not mention (cuda-convnet's ``rnorm``):

    b[c, y, x] = a[c, y, x] / (k + alpha * sum_{(y', x') in w(y, x)} a[c, y', x']^2) ** beta

where w(y, x) is the size x size window centred on (y, x), truncated at the
image's edges.  The 2012 code's constants: size 5, k = 1 (its default
``minDiv``), beta 0.75 (``pow``), and ``scale=0.001`` which cuda-convnet
divides by size^2 = 25, so alpha = 0.001 / 25 = 4e-5 multiplies the plain sum.

Backward: the derivation of ``LocalResponseNorm`` (layers/normalization.py)
with the channel window replaced by the spatial one.  With s = k + alpha * S
(the *scale*) and b = a * s^-beta, and a window symmetric about its centre
(size odd), so (y', x') in w(y, x) exactly when (y, x) in w(y', x'):

    da = dout * s^-beta - 2 * alpha * beta * a * windowsum(dout * b / s)

The work is plain array math on the input's own array module, so one
implementation serves every backend (on 'numba' it runs as NumPy).
"""
from __future__ import annotations

from ..backend import get_array_module
from .base import Accepts, Layer, is_finite_number, keyword_only


def spatial_window_sum(v, size: int):
    """sum over the size x size window centred on each pixel, clipped at the edges.

    v: (N, C, H, W) -> (N, C, H, W).  The square window is separable: a sum
    over ``size`` rows, then over ``size`` columns; zero padding does the
    clipping, and the loops run over window offsets, not over pixels.
    """
    xp = get_array_module(v)
    half = size // 2
    N, C, H, W = v.shape
    padded = xp.pad(v, ((0, 0), (0, 0), (half, half), (half, half)))   # (N, C, H+2h, W+2h)
    rows = xp.zeros((N, C, H, W + 2 * half), dtype=v.dtype)
    for d in range(size):
        rows += padded[:, :, d:d + H, :]                               # (N, C, H, W+2h)
    out = xp.zeros_like(v)
    for d in range(size):
        out += rows[:, :, :, d:d + W]                                  # (N, C, H, W)
    return out


class SpatialResponseNorm(Layer):
    """Response normalization over a ``size`` x ``size`` neighbourhood in each channel.

    ``alpha`` multiplies the plain sum of squares, as in ``LocalResponseNorm``
    (cuda-convnet's ``scale`` is alpha * size^2).  Not in the paper: the 2012
    code has it after conv2's cross-map LRN (``models.alexnet_2012_code_spec``).
    """
    accepts = Accepts(ndim=4, shape="(N, C, H, W)")

    @keyword_only
    def __init__(self, *, size: int = 5, k: float = 1.0, alpha: float = 0.001 / 25,
                 beta: float = 0.75, name: str | None = None):
        super().__init__(name=name)
        self.size = self.check_int("size", size, 1)
        self.check_arg("size", size, size % 2 == 1, "odd (a window centred on each pixel)")
        # As in LocalResponseNorm, the scale raised to -beta must stay > 0.
        self.check_arg("k", k, is_finite_number(k) and k > 0, "a finite number > 0")
        self.check_arg("alpha", alpha, is_finite_number(alpha) and alpha >= 0,
                       "a finite number >= 0")
        self.check_arg("beta", beta, is_finite_number(beta) and beta >= 0, "a finite number >= 0")
        self.k, self.alpha, self.beta = float(k), float(alpha), float(beta)

    def describe(self) -> str:
        return f"{self.size}x{self.size} in each channel, k={self.k:g}, alpha={self.alpha:g}, beta={self.beta:g}"

    def forward(self, x, train: bool = False):
        scale = self.k + self.alpha * spatial_window_sum(x * x, self.size)   # (N, C, H, W)
        out = x * scale ** -self.beta
        self.cache = (x, out, scale)
        return out

    def backward(self, dout):
        x, out, scale = self.cache
        inner = spatial_window_sum(dout * out / scale, self.size)            # (N, C, H, W)
        return dout * scale ** -self.beta - 2.0 * self.alpha * self.beta * x * inner
