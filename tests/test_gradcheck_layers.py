"""Every backward pass against central differences, in float64, on awkward shapes.

Awkward on purpose: H != W, stride > 1, padding, groups = 2, overlapping 3x3/2
pools, LRN at the channel edges with a large alpha, batch and channels > 1.
Inputs are spread out so that no ReLU input sits on its kink and no pooling
window holds a near-tie that a 1e-6 step could flip.
"""
import numpy as np
import pytest

from numpy_alexnet.gradcheck import check_layer
from numpy_alexnet.layers import (AvgPool2D, Conv2D, Dropout, Flatten, Linear, LocalResponseNorm,
                                  MaxPool2D, ReLU, Tanh)

TOL = 1e-7


def spread(rng, shape, gap=1e-3):
    """Distinct values at least ``gap`` apart, none within gap/2 of zero, random order."""
    n = int(np.prod(shape))
    vals = (np.arange(n) - n / 2 + 0.5) * gap
    vals = vals + np.sign(vals) * gap / 2
    return rng.permutation(vals).reshape(shape) * (3.0 / (n * gap))


def assert_small(errors):
    for name, err in errors.items():
        print(f"  {name}: rel error {err:.2e}")
        assert err < TOL, f"{name}: relative error {err:.3e} >= {TOL}"


@pytest.mark.parametrize("cfg", [
    dict(C=3, F=4, k=(3, 3), stride=1, pad=1, groups=1, H=7, W=5),
    dict(C=4, F=6, k=(3, 3), stride=2, pad=1, groups=2, H=9, W=6),   # grouped, strided, padded
    dict(C=3, F=2, k=(5, 5), stride=3, pad=0, groups=1, H=13, W=11),
    dict(C=2, F=4, k=(2, 3), stride=1, pad=2, groups=2, H=4, W=6),   # rectangular kernel
], ids=["3x3-s1-p1", "3x3-s2-p1-g2", "5x5-s3-p0", "2x3-s1-p2-g2"])
def test_conv2d(rng, cfg):
    layer = Conv2D(cfg["C"], cfg["F"], cfg["k"], stride=cfg["stride"], padding=cfg["pad"],
                   groups=cfg["groups"], weight_std=0.5, bias=0.1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, cfg["C"], cfg["H"], cfg["W"]))
    assert_small(check_layer(layer, x))


@pytest.mark.parametrize("k,stride,H,W", [(3, 2, 9, 7), (2, 2, 6, 8), (3, 1, 5, 6)])
def test_maxpool(rng, k, stride, H, W):
    x = spread(rng, (2, 3, H, W))
    assert_small(check_layer(MaxPool2D(kernel_size=k, stride=stride), x))


@pytest.mark.parametrize("k,stride,H,W", [(3, 2, 9, 7), (2, 2, 6, 8)])
def test_avgpool(rng, k, stride, H, W):
    x = rng.standard_normal((2, 3, H, W))
    assert_small(check_layer(AvgPool2D(kernel_size=k, stride=stride), x))


@pytest.mark.parametrize("C,n", [(7, 5), (3, 5), (6, 3), (2, 1)])
def test_lrn_edges_large_alpha(rng, C, n):
    # alpha = 0.5 makes the normalizer matter, so a window off by one channel shows.
    x = rng.standard_normal((2, C, 3, 4))
    assert_small(check_layer(LocalResponseNorm(n=n, k=2.0, alpha=0.5, beta=0.75), x))


def test_relu(rng):
    assert_small(check_layer(ReLU(), spread(rng, (3, 2, 4, 5))))


def test_tanh(rng):
    assert_small(check_layer(Tanh(), rng.standard_normal((3, 2, 4, 5))))


@pytest.mark.parametrize("mode", ["paper", "inverted"])
def test_dropout(rng, mode):
    assert_small(check_layer(Dropout(rate=0.5, mode=mode, seed=3), rng.standard_normal((4, 9))))


def test_linear(rng):
    layer = Linear(7, 5, weight_std=0.5, bias=0.2, rng=rng, dtype=np.float64)
    assert_small(check_layer(layer, rng.standard_normal((3, 7))))


def test_flatten(rng):
    assert_small(check_layer(Flatten(), rng.standard_normal((2, 3, 4, 5))))
