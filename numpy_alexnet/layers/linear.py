"""Fully connected layers (fc6, fc7, fc8) and the Flatten that feeds them.

Linear: out = x @ W + b with W (D_in, D_out), b (D_out,)
        dx = dout @ W.T, dW = x.T @ dout, db = sum over the batch of dout.
Flatten: (N, C, H, W) -> (N, C*H*W) in C-order, channel-major, as the paper's
6x6x256 pool5 output reaches fc6 (9216 inputs).
"""
from __future__ import annotations

import numpy as np

from ..backend import register
from .base import Accepts, Layer, keyword_only


# -- the reference kernels ----------------------------------------------------------
def linear_forward(x, W, b):
    """x (N, D_in), W (D_in, D_out), b (D_out,) -> out (N, D_out) = x @ W + b."""
    return x @ W + b


def linear_backward(dout, x, W):
    """dout (N, D_out) -> (dx (N, D_in), dW (D_in, D_out), db (D_out,))."""
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


register("numpy", linear_forward=linear_forward, linear_backward=linear_backward)


# -- the layers ---------------------------------------------------------------------
class Flatten(Layer):
    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, train: bool = False):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)                        # (N, C*H*W)

    def backward(self, dout):
        return dout.reshape(self.cache)                         # (N, C, H, W)


class Linear(Layer):
    """Fully connected: W (D_in, D_out) ~ N(0, weight_std), b = ``bias``.

    Weights are drawn on the host in float64 from ``rng``, then cast.
    """
    accepts = Accepts(ndim=2, shape="(N, {in_features})", channels="in_features")

    @keyword_only
    def __init__(self, in_features: int, out_features: int, *, weight_std: float = 0.01,
                 bias: float = 0.0, rng: np.random.Generator | None = None,
                 dtype=np.float32, name: str | None = None):
        super().__init__(name=name)
        self.in_features = self.check_int("in_features", in_features, 1)
        self.out_features = self.check_int("out_features", out_features, 1)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.set_params(
            W=(rng.standard_normal((self.in_features, self.out_features)) * weight_std).astype(dtype),
            b=np.full(self.out_features, bias, dtype=dtype))

    def describe(self) -> str:
        return f"{self.in_features} -> {self.out_features}"

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            self._fail("input shape", f"({self.in_features},) per example", tuple(input_shape))
        return (self.out_features,)

    def forward(self, x, train: bool = False):
        self.cache = x
        return self.ops.linear_forward(x, self.params["W"], self.params["b"])   # (N, D_out)

    def backward(self, dout):
        dx, self.grads["W"], self.grads["b"] = self.ops.linear_backward(dout, self.cache,
                                                                        self.params["W"])
        return dx                                                # (N, D_in)
