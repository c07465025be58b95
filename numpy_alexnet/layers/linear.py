"""Fully connected layers (fc6, fc7, fc8) and the Flatten that feeds them.

Linear: out = x @ W + b with W (D_in, D_out), b (D_out,)
        dx = dout @ W.T, dW = x.T @ dout, db = sum over the batch of dout.
Flatten: (N, C, H, W) -> (N, C*H*W) in C-order, channel-major, as the paper's
6x6x256 pool5 output reaches fc6 (9216 inputs).
"""
from __future__ import annotations

import numpy as np

from .base import Layer, keyword_only


class Flatten(Layer):
    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, train: bool = False):
        self.check_input(x)
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)                        # (N, C*H*W)

    def backward(self, dout):
        self.check_dout(dout)                                   # (N, C*H*W)
        return dout.reshape(self.cache)                         # (N, C, H, W)


class Linear(Layer):
    """Fully connected: W (D_in, D_out) ~ N(0, weight_std), b = ``bias``.

    Weights are drawn on the host in float64 from ``rng``, then cast.
    """

    @keyword_only
    def __init__(self, in_features: int, out_features: int, *, weight_std: float = 0.01,
                 bias: float = 0.0, rng: np.random.Generator | None = None,
                 dtype=np.float32, name: str | None = None):
        super().__init__(name=name)
        self.in_features = self.check_int("in_features", in_features, 1)
        self.out_features = self.check_int("out_features", out_features, 1)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params = {
            "W": (rng.standard_normal((self.in_features, self.out_features)) * weight_std).astype(dtype),
            "b": np.full(self.out_features, bias, dtype=dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def describe(self) -> str:
        return f"{self.in_features} -> {self.out_features}"

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            self._fail("input shape", f"({self.in_features},) per example", tuple(input_shape))
        return (self.out_features,)

    def forward(self, x, train: bool = False):
        self.check_input(x, ndim=2, channels=self.in_features,
                         expected=f"(N, {self.in_features})")
        self.cache = x
        fast = getattr(self.ops, "linear_forward", None)        # Numba: the GEMM shared by the cores
        if fast is not None:
            return fast(x, self.params["W"], self.params["b"])
        return x @ self.params["W"] + self.params["b"]          # (N, D_out)

    def backward(self, dout):
        self.check_dout(dout)                                   # (N, D_out)
        x, W = self.cache, self.params["W"]
        dW = self._host_dW_buffer(dout)                         # (D_in, D_out), or None
        fast = getattr(self.ops, "linear_backward", None)
        if fast is not None:
            dx = fast(dout, x, W, dW)                           # fills dW
        else:
            if dW is None:
                dW = x.T @ dout
            else:
                np.matmul(x.T, dout, out=dW)                    # dW = x.T @ dout, in place
            dx = dout @ W.T                                     # (N, D_in)
        self.grads["W"] = dW
        self.grads["b"] = dout.sum(axis=0)                      # (D_out,)
        return dx

    def _host_dW_buffer(self, dout):
        """An array for dW on the host: last step's, to be overwritten, when it fits.
        fc6's dW is 151 MB, and a fresh host array that size is fresh memory from the
        OS, zeroed page by page, every step.  None on a GPU, whose memory pool
        already hands back the same block."""
        if not isinstance(dout, np.ndarray):
            return None
        gW = self.grads.get("W")
        if (isinstance(gW, np.ndarray) and gW.shape == self.params["W"].shape
                and gW.dtype == dout.dtype and gW.flags.c_contiguous):
            return gW
        return np.empty(self.params["W"].shape, dtype=dout.dtype)
