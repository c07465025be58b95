"""Locally connected layer: a convolution whose weights differ at every output position.

cuda-convnet calls it a "local" (unshared) layer; its CIFAR-10 nets of section
3.3 of the paper end with two of them (``models.cifar_conv_local_spec``).
Where ``Conv2D`` slides one bank of F kernels over the image, here output
position (y, x) has its own bank ``W[y, x]`` of shape (F, C, KH, KW) and its
own biases ``b[:, y, x]``:

    out[n, f, y, x] = b[f, y, x] + sum_{c, i, j} W[y, x, f, c, i, j]
                                   * x_padded[n, c, y*stride + i, x*stride + j]

So the weights are shaped by the output size, which the input size fixes:
the layer is made for one input height and width.

With the receptive fields unfolded by ``im2col`` (as in ``Conv2D``), each
position p is one small matrix product, all P of them in one batched matmul:

    out[p] = W[p] @ cols[p]          (F, C*K*K) @ (C*K*K, N) -> (F, N)

Backward, with the same per-position products (the ``Conv2D`` formulas, one
position at a time, no sum over positions for the weights):

    dW[p]    = dout[p] @ cols[p].T   (F, N) @ (N, C*K*K)
    db       = sum over the batch of dout
    dcols[p] = W[p].T @ dout[p]      then col2im adds overlapping fields into dx.

(the code computes the transposes of the first and the last, so that every
product is of C-order matrices).

Biases are per position and filter, (F, Ho, Wo), as cuda-convnet's local
layer has them (its convolutions share one bias per filter).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, register
from .base import Accepts, Layer, conv_output_size, keyword_only
from .conv import _pair, col2im, im2col


# -- the reference kernels ---------------------------------------------------------
def local_forward(x, W, b, stride: int, pad: int):
    """x (N, C, H, W), W (Ho, Wo, F, C, KH, KW), b (F, Ho, Wo) -> (out (N, F, Ho, Wo), cache).

    Axes: P = Ho*Wo output positions, K kernel size.
    """
    xp = get_array_module(x)
    N = x.shape[0]
    Ho, Wo, F, C, kh, kw = W.shape
    P = Ho * Wo
    cols = im2col(x, kh, kw, stride, pad).reshape(C * kh * kw, N, P)   # (C*K*K, N, P)
    cols = xp.ascontiguousarray(cols.transpose(2, 0, 1))         # (P, C*K*K, N), a copy
    Wm = W.reshape(P, F, C * kh * kw)                            # (P, F, C*K*K), a view
    out = Wm @ cols                                              # (P, F, N): one GEMM per position
    out = out.transpose(2, 1, 0).reshape(N, F, Ho, Wo)           # (N, F, Ho, Wo), a view
    out = xp.ascontiguousarray(out)                              # (N, F, Ho, Wo), a copy
    out += b                                                     # b (F, Ho, Wo) broadcast over N
    return out, (cols, x.shape)


def local_backward(dout, cache, W, stride: int, pad: int, input_grad: bool = True):
    """dout (N, F, Ho, Wo) -> (dx (N, C, H, W) or None, dW like W, db (F, Ho, Wo))."""
    xp = get_array_module(dout)
    cols, x_shape = cache                                        # (P, C*K*K, N)
    Ho, Wo, F, C, kh, kw = W.shape
    N, P = dout.shape[0], Ho * Wo
    db = dout.sum(axis=0)                                        # (F, Ho, Wo)
    dout_p = dout.reshape(N, F, P).transpose(2, 0, 1)            # (P, N, F), a view
    dout_p = xp.ascontiguousarray(dout_p)                        # (P, N, F), a copy
    # dW[p] = dout[p] @ cols[p].T, computed as its transpose cols[p] @ dout[p].T so
    # that both operands are plain C-order matrices (a GEMM, not a strided loop).
    dW = cols @ dout_p                                           # (P, C*K*K, F)
    dW = dW.transpose(0, 2, 1).reshape(W.shape)                  # (P, F, C*K*K) -> (Ho, Wo, F, C, KH, KW), a copy
    if not input_grad:
        return None, dW, db
    Wm = W.reshape(P, F, C * kh * kw)                            # (P, F, C*K*K), a view
    dcols = dout_p @ Wm                                          # (P, N, C*K*K): (W[p].T @ dout[p]).T
    dcols = dcols.transpose(2, 1, 0).reshape(C * kh * kw, N * P)  # (C*K*K, N*P), a copy
    return col2im(dcols, x_shape, kh, kw, stride, pad), dW, db


register("numpy", local_forward=local_forward, local_backward=local_backward)


# -- the layer ----------------------------------------------------------------------
class LocallyConnected2D(Layer):
    """Unshared convolution: W (Ho, Wo, F, C, KH, KW), b (F, Ho, Wo).

    ``input_size`` (H, W), or one int for a square input, fixes the output
    size (Ho, Wo) and so the number of weight banks.  Initialization as
    cuda-convnet's: weights ~ N(0, ``weight_std``) (0.04 in its CIFAR-10 nets),
    biases constant ``bias`` (0 there); drawn on the host in float64 from
    ``rng`` and cast, so a seed gives the same start in any dtype and on any
    backend.  No groups: cuda-convnet's CIFAR-10 nets use none.
    """
    accepts = Accepts(ndim=4, shape="(N, {in_channels}, {H}, {W})", channels="in_channels",
                      size=("H", "W"))

    @keyword_only
    def __init__(self, *, in_channels: int, out_channels: int, kernel_size, input_size,
                 stride: int = 1, padding: int = 0, weight_std: float = 0.01, bias: float = 0.0,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 name: str | None = None):
        super().__init__(name=name)
        self.in_channels = self.check_int("in_channels", in_channels, 1)
        self.out_channels = self.check_int("out_channels", out_channels, 1)
        self.kh, self.kw = (self.check_int("kernel_size", k, 1) for k in _pair(kernel_size))
        self.stride = self.check_int("stride", stride, 1)
        self.padding = self.check_int("padding", padding, 0)
        self.H, self.W = (self.check_int("input_size", s, 1) for s in _pair(input_size))
        self.check_arg("input_size", input_size,
                       self.H + 2 * self.padding >= self.kh and self.W + 2 * self.padding >= self.kw,
                       f"at least the kernel size less twice the padding "
                       f"({self.kh - 2 * self.padding}x{self.kw - 2 * self.padding})")
        self.Ho = conv_output_size(self.H, self.kh, self.stride, self.padding)
        self.Wo = conv_output_size(self.W, self.kw, self.stride, self.padding)
        rng = rng if rng is not None else np.random.default_rng(0)
        shape = (self.Ho, self.Wo, self.out_channels, self.in_channels, self.kh, self.kw)
        self.set_params(
            W=(rng.standard_normal(shape) * weight_std).astype(dtype),
            b=np.full((self.out_channels, self.Ho, self.Wo), bias, dtype=dtype))

    def describe(self) -> str:
        return (f"{self.out_channels} x {self.kh}x{self.kw}x{self.in_channels} at each of "
                f"{self.Ho}x{self.Wo} positions, stride {self.stride}, pad {self.padding}")

    def output_shape(self, input_shape):
        expected = (self.in_channels, self.H, self.W)
        if tuple(input_shape) != expected:
            self._fail("input shape", f"{expected} per example (the weights are made for "
                       f"{self.H}x{self.W} inputs)", tuple(input_shape))
        return (self.out_channels, self.Ho, self.Wo)

    def forward(self, x, train: bool = False):
        out, self.cache = self.ops.local_forward(x, self.params["W"], self.params["b"],
                                                 self.stride, self.padding)
        return out

    def backward(self, dout, input_grad: bool = True):
        dx, self.grads["W"], self.grads["b"] = self.ops.local_backward(
            dout, self.cache, self.params["W"], self.stride, self.padding, input_grad)
        return dx

    def param_backward(self, dout) -> None:
        """Only dW and db: the GEMMs and col2im for dx are skipped."""
        self.backward(dout, input_grad=False)
