"""Checks of notebook 6's exercises: dropout in the paper's form and the
inverted one, forward and backward, at several rates; and cuda-convnet's
output size in integers."""
from __future__ import annotations

import numpy as np

from numpy_alexnet.layers import Dropout
from numpy_alexnet.layers.base import conv_output_size

from . import TOL_GRAD, agree, array, fail, numerical_gradient, which

RATES = (0.5, 0.2, 0.7)             # 0.5 alone cannot tell the rate from the keep probability


def _mask(rate, mode, shape, seed=7):
    """The mask Dropout(rate, mode, seed) draws first, as booleans (True = kept)."""
    return Dropout(rate=rate, mode=mode, seed=seed).forward(np.ones(shape), train=True) != 0


def test_dropout(dropout, dropout_backward):
    x = np.random.default_rng(61).standard_normal((200, 50)) + 1.0
    dout = np.random.default_rng(62).standard_normal(x.shape)
    for rate in RATES:
        for mode in ("paper", "inverted"):
            keep = _mask(rate, mode, x.shape)
            for train in (True, False):
                layer = Dropout(rate=rate, mode=mode, seed=7)
                want = layer.forward(x, train=train)
                got = array(dropout(x, keep, rate, mode, train), f"{mode}, rate {rate}, train={train}: out")
                agree(got, want, f"{mode}, rate {rate}, train={train}: out against Dropout(mode='{mode}')",
                      hint=which(got, _forward_mistakes(x, keep, rate, mode, train)) or "")
            layer = Dropout(rate=rate, mode=mode, seed=7)
            layer.forward(x, train=True)
            want = layer.backward(dout)
            got = array(dropout_backward(dout, keep, rate, mode), f"{mode}, rate {rate}: dx")
            agree(got, want, f"{mode}, rate {rate}: dx against Dropout.backward",
                  hint=which(got, _backward_mistakes(dout, keep, rate, mode)) or "")
        train_mean = np.asarray(dropout(x, _mask(rate, "paper", x.shape), rate, "paper", True)).mean()
        test_mean = np.asarray(dropout(x, _mask(rate, "paper", x.shape), rate, "paper", False)).mean()
        if abs(train_mean - test_mean) > 0.05 * abs(test_mean):
            fail(f"paper, rate {rate}: mean {train_mean:.3f} in training but {test_mean:.3f} at test time")
    # The backward against central differences of the forward, on one mask
    xs, d = np.random.default_rng(63).standard_normal((4, 9)), np.random.default_rng(64).standard_normal((4, 9))
    for mode in ("paper", "inverted"):
        keep = _mask(0.3, mode, xs.shape)
        f = lambda: float(np.sum(np.asarray(dropout(xs, keep, 0.3, mode, True)) * d))
        agree(dropout_backward(d, keep, 0.3, mode), numerical_gradient(f, xs),
              f"{mode}, rate 0.3: dx against central differences", tol=TOL_GRAD)
    x32 = x.astype(np.float32)
    if np.asarray(dropout(x32, _mask(0.5, "inverted", x.shape), 0.5, "inverted", True)).dtype != np.float32:
        fail("float32 x gives a float64 output: keep x's dtype")


def _forward_mistakes(x, keep, rate, mode, train) -> dict:
    """{hint: what the mistake gives} for the forward in ``mode``, training or not."""
    p = 1 - rate
    as_keep = "rate is the probability of dropping a neuron; the probability of keeping it is 1 - rate"
    if mode == "paper" and train:
        return {"in training, drop the neurons the mask says: x * keep": x}
    if mode == "paper":
        return {as_keep: x * rate,
                "the paper uses every neuron at test time, multiplied by 1 - rate": x}
    if train:
        return {as_keep: x * keep / rate,
                "in training, drop the neurons the mask says: x * keep / (1 - rate)": x / p,
                "the inverted form divides the kept neurons by 1 - rate in training": x * keep}
    return {"the inverted form scales in training and leaves test time alone: x": x * p}


def _backward_mistakes(dout, keep, rate, mode) -> dict:
    """{hint: what the mistake gives} for the backward in ``mode``."""
    scale = 1 / (1 - rate) if mode == "inverted" else 1.0
    wrong = {"the dropped neurons pass no gradient: multiply by the mask": dout * scale,
             "multiply by dout": keep * scale}
    if mode == "inverted":
        wrong["the backward multiplies by exactly what the forward did: keep / (1 - rate) in "
              "the inverted form"] = dout * keep
        wrong["rate is the probability of dropping; the kept neurons are scaled by "
              "1 / (1 - rate)"] = dout * keep / rate
    return wrong


def test_positions_ceil(positions_ceil):
    cases = {(224, 11, 4, 0): 55, (227, 11, 4, 0): 55, (55, 3, 2, 0): 27, (27, 3, 2, 0): 13,
             (13, 3, 2, 0): 6, (32, 3, 2, 0): 16, (16, 3, 2, 0): 8, (8, 3, 2, 0): 4, (7, 3, 1, 1): 7,
             (2 ** 60 + 1, 3, 2, 0): 2 ** 59}
    for (H, K, s, p), want in cases.items():
        got = positions_ceil(H, K, s, p)
        call = f"positions_ceil({H}, {K}, {s}, {p})"
        if not isinstance(got, (int, np.integer)):
            fail(f"{call} returned {type(got).__name__} {got!r}, not an int: count in integers")
        if got == want:
            continue
        a = H + 2 * p - K
        if got == a // s + 1:
            fail(f"{call} = {got}, expected {want}: that is the floor; the ceiling of a / b in "
                 "integers is -(-a // b)")
        if H > 2 ** 53:
            fail(f"{call} = {got}, expected {want}: (H + 2 pad - K) / stride went through a float, "
                 "which rounds numbers this large (math.ceil and np.ceil take a float): integer "
                 "arithmetic only, ceil(a / b) = -(-a // b)")
        fail(f"{call} = {got}, expected {want}" + (": off by one where a divides by stride; "
             "ceil(a / b) = -(-a // b) = (a + b - 1) // b" if a % s == 0 else ""))
    floor_sizes = [conv_output_size(H, K, s, p) for (H, K, s, p) in cases]
    assert any(f != w for f, w in zip(floor_sizes, cases.values())), "floor and ceil differ somewhere"
