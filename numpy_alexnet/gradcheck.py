"""Gradient checking: compare ``backward`` with central differences.

    df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)

Run in float64 (``net.astype(np.float64)``).  The step h trades two errors:
truncation, which shrinks like h^2, and rounding in f(x+h) - f(x-h), which
grows like 1e-16 * |f| / h.  With h = 1e-5 both stay near 1e-9 to 1e-8 of the
gradient's size here, below the 1e-7 relative error the tests demand (with
h = 1e-6 rounding alone reaches ~1e-7 on a whole net); in float32 rounding
alone is near 1e-3, which is why checks never run in float32.

``rel_error`` is the norm-wise relative error ||a - b|| / (||a|| + ||b||),
which, unlike an element-wise ratio, does not blow up on gradients that are
zero (a ReLU that is off, a max-pool input that is never the maximum).
"""
from __future__ import annotations

import copy

import numpy as np

from .backend import to_numpy


def rel_error(a, b) -> float:
    """||a - b|| / max(||a|| + ||b||, 1e-300)."""
    a, b = np.asarray(to_numpy(a), dtype=np.float64), np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def numerical_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every element of ``x``.

    ``x`` is perturbed in place and restored.  A loop over elements is right
    here: this is the slow, obviously correct oracle, never the training path.
    """
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)         # views of x and grad
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return grad


class _FrozenRandomness:
    """Restores a layer's random generator before every forward, so that a
    dropout mask is the same in each evaluation of the difference quotient."""

    def __init__(self, layers):
        self.saved = [(l, copy.deepcopy(l.rng.bit_generator.state))
                      for l in layers if hasattr(l, "rng")]

    def reset(self):
        for layer, state in self.saved:
            layer.rng.bit_generator.state = copy.deepcopy(state)


def check_layer(layer, x: np.ndarray, seed: int = 0, h: float = 1e-5) -> dict[str, float]:
    """Relative errors of dx and of every parameter gradient of ``layer`` at ``x``.

    The loss is L = sum(forward(x) * R) for a fixed random R, so that
    dL/dout = R exercises every output.
    """
    frozen = _FrozenRandomness([layer])
    frozen.reset()
    out = layer.forward(x, True)
    R = np.random.default_rng(seed).standard_normal(out.shape)

    def loss():
        frozen.reset()
        return float(np.sum(layer.forward(x, True) * R))

    frozen.reset()
    layer.forward(x, True)
    dx = layer.backward(R)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    errors = {"x": rel_error(dx, numerical_gradient(loss, x, h))}
    for key, p in layer.params.items():
        errors[key] = rel_error(grads[key], numerical_gradient(loss, p, h))
    return errors


def check_net(net, x: np.ndarray, labels: np.ndarray, h: float = 1e-5) -> dict[str, float]:
    """Relative errors of dx and of every parameter of a whole net under the
    softmax cross-entropy loss."""
    from .layers import SoftmaxCrossEntropy
    crit = SoftmaxCrossEntropy()
    frozen = _FrozenRandomness(net.layers)

    def loss():
        frozen.reset()
        return float(crit.forward(net.forward(x, True), labels))

    loss()
    dx = net.backward(crit.backward())
    analytic = {name: layer.grads[key].copy() for name, layer, key in net.named_params()}
    errors = {"x": rel_error(dx, numerical_gradient(loss, x, h))}
    for name, layer, key in net.named_params():
        errors[name] = rel_error(analytic[name], numerical_gradient(loss, layer.params[key], h))
    return errors
