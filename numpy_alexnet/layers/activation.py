"""Neuron nonlinearities: ReLU (section 3.1) and tanh, its slower rival in Figure 1.

ReLU f(x) = max(0, x): its gradient is 1 where x > 0 and 0 elsewhere (the
convention at x = 0 is 0).  tanh: f'(x) = 1 - tanh(x)^2, computed from the
cached output.
"""
from __future__ import annotations

from ..backend import get_array_module, register
from .base import Layer


# -- the reference kernels ----------------------------------------------------------
def relu_forward(x):
    """x -> (max(0, x), state for the backward: the mask of positive inputs)."""
    positive = x > 0
    return x * positive, positive


def relu_backward(dout, positive):
    return dout * positive


def tanh_forward(x):
    """x -> (tanh(x), state for the backward: the output itself)."""
    out = get_array_module(x).tanh(x)
    return out, out


def tanh_backward(dout, out):
    return dout * (1 - out * out)


register("numpy", relu_forward=relu_forward, relu_backward=relu_backward,
         tanh_forward=tanh_forward, tanh_backward=tanh_backward)


# -- the layers ---------------------------------------------------------------------
class ReLU(Layer):
    """Rectified linear unit."""

    def forward(self, x, train: bool = False):
        out, self.cache = self.ops.relu_forward(x)
        return out

    def backward(self, dout):
        return self.ops.relu_backward(dout, self.cache)


class Tanh(Layer):
    """Hyperbolic tangent; caches its output."""

    def forward(self, x, train: bool = False):
        out, self.cache = self.ops.tanh_forward(x)
        return out

    def backward(self, dout):
        return self.ops.tanh_backward(dout, self.cache)


def make_activation(kind: str, name: str | None = None) -> Layer:
    """'relu' or 'tanh' as a layer."""
    kinds = {"relu": ReLU, "tanh": Tanh}
    if kind not in kinds:
        raise ValueError(f"unknown activation {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind](name=name)
