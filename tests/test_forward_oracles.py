"""Forward passes against naive loops (PyTorch, where installed: test_torch_oracle.py)."""
import numpy as np
import pytest

from numpy_alexnet.layers import (AvgPool2D, Conv2D, LocalResponseNorm, MaxPool2D,
                                  SoftmaxCrossEntropy, col2im, im2col)
from oracles import conv_naive, lrn_naive, pool_naive


def test_im2col_col2im_adjoint(rng):
    """<im2col(x), c> == <x, col2im(c)> for every x, c: col2im is im2col's transpose."""
    for (N, C, H, W, kh, kw, s, p) in [(2, 3, 7, 5, 3, 3, 2, 1), (1, 2, 9, 11, 5, 4, 3, 2),
                                       (3, 1, 6, 6, 2, 2, 2, 0)]:
        x = rng.standard_normal((N, C, H, W))
        cols = im2col(x, kh, kw, s, p)
        c = rng.standard_normal(cols.shape)
        lhs = np.sum(cols * c)
        rhs = np.sum(x * col2im(c, x.shape, kh, kw, s, p))
        assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


def test_im2col_values(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    cols = im2col(x, 3, 2, 2, 1)              # (C*KH*KW, N*Ho*Wo)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    Ho, Wo = (6 + 2 - 3) // 2 + 1, (5 + 2 - 2) // 2 + 1
    assert cols.shape == (3 * 3 * 2, 2 * Ho * Wo)
    # column (n, y, x) is the flattened (C, KH, KW) patch of example n at output position (y, x)
    for n in range(2):
        for y in range(Ho):
            for xx in range(Wo):
                patch = xp[n, :, 2 * y:2 * y + 3, 2 * xx:2 * xx + 2].reshape(-1)
                np.testing.assert_array_equal(cols[:, (n * Ho + y) * Wo + xx], patch)


@pytest.mark.parametrize("groups,stride,pad", [(1, 1, 0), (2, 2, 1), (2, 3, 2)])
def test_conv_forward_matches_loops(rng, groups, stride, pad):
    layer = Conv2D(4, 6, (3, 4), stride=stride, padding=pad, groups=groups, weight_std=1.0,
                   bias=0.3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 4, 9, 8))
    ref = conv_naive(x, layer.params["W"], layer.params["b"], stride, pad, groups)
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-12, atol=1e-12)


def test_pools_match_loops(rng):
    x = rng.standard_normal((2, 3, 9, 8))
    np.testing.assert_allclose(MaxPool2D(kernel_size=3, stride=2).forward(x),
                               pool_naive(x, 3, 2, np.max))
    np.testing.assert_allclose(AvgPool2D(kernel_size=3, stride=2).forward(x),
                               pool_naive(x, 3, 2, np.mean))


def test_maxpool_tie_goes_to_first_and_overlaps_add():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0                        # the centre is in all four 3x3/2 windows
    layer = MaxPool2D(kernel_size=3, stride=2)
    out = layer.forward(x)
    assert out.shape == (1, 1, 2, 2) and np.all(out == 1.0)
    dx = layer.backward(np.ones_like(out))
    assert dx[0, 0, 2, 2] == 4.0 and dx.sum() == 4.0   # added, not assigned
    # an all-equal window routes its gradient to the top-left element
    y = np.ones((1, 1, 3, 3))
    layer.forward(y)
    dy = layer.backward(np.ones((1, 1, 1, 1)))
    assert dy[0, 0, 0, 0] == 1.0 and dy.sum() == 1.0


def test_lrn_matches_formula(rng):
    x = rng.standard_normal((2, 7, 3, 4))
    out = LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75).forward(x)
    np.testing.assert_allclose(out, lrn_naive(x, 5, 2.0, 0.5, 0.75), rtol=1e-12)


def test_softmax_cross_entropy_is_stable_and_correct():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    labels = np.array([0, 2])
    loss = SoftmaxCrossEntropy().forward(logits, labels)
    expected = (0.0 + (np.log(np.exp(1) + np.exp(2) + np.exp(3)) - 3.0)) / 2
    assert np.isfinite(loss) and abs(loss - expected) < 1e-12
