"""Layers against PyTorch, an independent implementation (skipped where PyTorch is absent)."""
import numpy as np
import pytest

from numpy_alexnet.layers import Conv2D, LocalResponseNorm, MaxPool2D

# -- PyTorch as an independent oracle (optional) ---------------------------------------
torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")


def test_conv_grouped_against_torch(rng):
    layer = Conv2D(4, 6, 3, stride=2, padding=1, groups=2, weight_std=1.0, bias=0.5, rng=rng,
                   dtype=np.float64)
    x = rng.standard_normal((2, 4, 9, 7))
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.params["W"], requires_grad=True)
    tb = torch.tensor(layer.params["b"], requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=2, padding=1, groups=2)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_lrn_alpha_convention_against_torch(rng):
    """The paper's alpha=1e-4 is PyTorch's alpha=5e-4 (PyTorch divides by n)."""
    x = rng.standard_normal((2, 9, 4, 3)) * 10
    ours = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)
    out = ours.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = ours.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)(tx)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_maxpool_against_torch(rng):
    x = rng.standard_normal((2, 3, 11, 8))
    layer = MaxPool2D(kernel_size=3, stride=2)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, 3, 2)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12)
