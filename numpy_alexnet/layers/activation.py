"""Neuron nonlinearities: ReLU (section 3.1) and tanh, its slower rival in Figure 1.

ReLU f(x) = max(0, x): its gradient is 1 where x > 0 and 0 elsewhere (the
convention at x = 0 is 0).  tanh: f'(x) = 1 - tanh(x)^2, computed from the
cached output.
"""
from __future__ import annotations

from ..backend import get_array_module
from .base import Layer


class ReLU(Layer):
    """Rectified linear unit; caches the mask of positive inputs."""

    def forward(self, x, train: bool = True):
        self.check_input(x)
        positive = x > 0
        self.cache = positive
        return x * positive

    def backward(self, dout):
        return dout * self.cache


class Tanh(Layer):
    """Hyperbolic tangent; caches its output."""

    def forward(self, x, train: bool = True):
        self.check_input(x)
        out = get_array_module(x).tanh(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self.cache
        return dout * (1 - out * out)


def make_activation(kind: str, name: str | None = None) -> Layer:
    """'relu' or 'tanh' as a layer."""
    kinds = {"relu": ReLU, "tanh": Tanh}
    if kind not in kinds:
        raise ValueError(f"unknown activation {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind](name=name)
