"""LocallyConnected2D: gradient checks, a loop oracle, PyTorch, the fast paths, bad input.

Shapes are awkward on purpose: stride 2, padding, H != W, C_in != C_out, so a
swapped axis or a height used for a width cannot cancel out.
"""
import numpy as np
import pytest

from numpy_alexnet import LocallyConnected2D, Sequential
from numpy_alexnet.backend import cupy_available, get_ops, numba_available, to_numpy
from numpy_alexnet.gradcheck import check_layer, rel_error
from numpy_alexnet.layers import LayerInputError

needs_numba = pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
needs_gpu = pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA device")
FAST = [pytest.param("numba", marks=needs_numba),
        pytest.param("cupy", marks=[needs_gpu, pytest.mark.gpu])]

# (N, C, H, W, F, K, stride, pad): H != W everywhere; C != F.
CASES = [(2, 3, 7, 6, 4, 3, 2, 1), (3, 2, 5, 8, 3, 3, 1, 1), (2, 4, 6, 5, 2, 2, 2, 0),
         (1, 3, 9, 7, 5, (3, 2), 1, 2)]


def local_naive(x, W, b, stride, pad):
    """The definition, one output element at a time: the slow, obvious oracle."""
    N, C, H, Wd = x.shape
    Ho, Wo, F, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for y in range(Ho):
                for xo in range(Wo):
                    patch = xp[n, :, y * stride:y * stride + KH, xo * stride:xo * stride + KW]
                    out[n, f, y, xo] = np.sum(patch * W[y, xo, f]) + b[f, y, xo]
    return out


def make(case, rng, dtype=np.float64, **kw):
    N, C, H, W, F, K, s, p = case
    layer = LocallyConnected2D(in_channels=C, out_channels=F, kernel_size=K, input_size=(H, W),
                               stride=s, padding=p, weight_std=1.0, rng=rng, dtype=dtype, **kw)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)  # every bias differs
    return layer, rng.standard_normal((N, C, H, W)).astype(dtype)


@pytest.mark.parametrize("case", CASES)
def test_gradients_float64(rng, case):
    layer, x = make(case, rng)
    errors = check_layer(layer, x)
    print(case, errors)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("case", CASES)
def test_forward_against_loop_oracle(rng, case):
    layer, x = make(case, rng)
    out = layer.forward(x)
    want = local_naive(x, layer.params["W"], layer.params["b"], layer.stride, layer.padding)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_weights_differ_by_position_unlike_a_convolution(rng):
    """Changing the weights at one output position changes that position's output only."""
    layer, x = make(CASES[0], rng)
    before = layer.forward(x)
    layer.params["W"][1, 2] += 1.0                      # position (y=1, x=2) only
    after = layer.forward(x)
    changed = np.abs(after - before).sum(axis=(0, 1)) > 0
    expected = np.zeros_like(changed)
    expected[1, 2] = True
    np.testing.assert_array_equal(changed, expected)


def test_shapes_and_parameter_count(rng):
    layer, x = make((2, 64, 5, 5, 32, 3, 1, 1), rng, dtype=np.float32)
    assert layer.params["W"].shape == (5, 5, 32, 64, 3, 3)
    assert layer.params["b"].shape == (32, 5, 5)
    assert layer.num_params() == 25 * 32 * 64 * 9 + 32 * 25
    out = layer.forward(x.astype(np.float32))
    assert out.dtype == np.float32
    assert out.flags.c_contiguous                  # a plain (N, F, Ho, Wo) array for the next layer
    assert layer.output_shape((64, 5, 5)) == (32, 5, 5)


def test_first_layer_skips_dx(rng):
    """As the first layer of a net it leaves dW and db exactly as a full backward does."""
    layer, x = make(CASES[1], rng)
    out = layer.forward(x)
    d = rng.standard_normal(out.shape)
    layer.backward(d)
    full = {k: v.copy() for k, v in layer.grads.items()}
    net = Sequential([layer], input_shape=x.shape[1:])
    net.forward(x)
    assert net.backward(d, input_grad=False) is None
    for k in full:
        np.testing.assert_array_equal(layer.grads[k], full[k])


# -- PyTorch as an independent oracle (optional) ---------------------------------------
@pytest.mark.parametrize("case", CASES[:2])
def test_against_torch_unfold(rng, case):
    """PyTorch has no locally connected layer; its unfold (im2col) and einsum make one."""
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    layer, x = make(case, rng)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    N, C, H, Wd, F, K, s, p = case
    Ho, Wo = out.shape[2:]
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.params["W"], requires_grad=True)      # (Ho, Wo, F, C, KH, KW)
    tb = torch.tensor(layer.params["b"], requires_grad=True)      # (F, Ho, Wo)
    cols = torch.nn.functional.unfold(tx, K, padding=p, stride=s)  # (N, C*KH*KW, P)
    tout = torch.einsum("pfk,nkp->nfp", tw.reshape(Ho * Wo, F, -1), cols)
    tout = tout.reshape(N, F, Ho, Wo) + tb
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], tb.grad.numpy(), rtol=1e-10, atol=1e-12)


# -- the fast paths against the reference ------------------------------------------------
def on(backend, a):
    if backend == "cupy":
        import cupy
        return cupy.asarray(a)
    return a


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_ops_match_reference(rng, backend, dtype):
    ref, fast = get_ops("numpy"), get_ops(backend)
    tol = 1e-13 if dtype == np.float64 else 1e-6
    for case in CASES:
        layer, x = make(case, rng, dtype=dtype)
        W, b = layer.params["W"], layer.params["b"]
        s, p = layer.stride, layer.padding
        out, state = ref.local_forward(x, W, b, s, p)
        got, got_state = fast.local_forward(on(backend, x), on(backend, W), on(backend, b), s, p)
        assert got.dtype == dtype and got.shape == out.shape
        assert rel_error(out, got) <= tol, (case, rel_error(out, got))
        d = rng.standard_normal(out.shape).astype(dtype)
        want = ref.local_backward(d, state, W, s, p)
        for input_grad in (True, False):
            dx, dW, db = fast.local_backward(on(backend, d), got_state, on(backend, W), s, p,
                                             input_grad)
            if input_grad:
                assert dx.dtype == dtype and rel_error(want[0], dx) <= tol, (case, "dx")
            else:
                assert dx is None
            assert dW.shape == W.shape and rel_error(want[1], dW) <= tol, (case, "dW")
            assert db.shape == b.shape and rel_error(want[2], db) <= tol, (case, "db")


@pytest.mark.parametrize("backend", FAST)
def test_layer_on_fast_backend(rng, backend):
    """The layer moved to a fast backend gives the reference's output and gradients."""
    layer, x = make(CASES[0], rng, dtype=np.float32)
    out = layer.forward(x)
    d = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(d)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    layer.to(backend)
    got = layer.forward(on(backend, x))
    assert rel_error(out, got) <= 1e-6
    assert rel_error(dx, layer.backward(on(backend, d))) <= 1e-6
    for k in grads:
        assert rel_error(grads[k], to_numpy(layer.grads[k])) <= 1e-6, k


# -- bad input ----------------------------------------------------------------------------
def test_bad_constructor_arguments_name_the_argument():
    ok = dict(in_channels=3, out_channels=4, kernel_size=3, input_size=(7, 6))
    with pytest.raises(TypeError):
        LocallyConnected2D(3, 4, 3, (7, 6))                       # keyword-only
    for arg, value in [("in_channels", 0), ("kernel_size", 2.5), ("stride", 0), ("padding", -1),
                       ("input_size", (7, 0))]:
        with pytest.raises(ValueError, match=arg):
            LocallyConnected2D(**{**ok, arg: value})
    with pytest.raises(ValueError, match="input_size.*kernel size"):
        LocallyConnected2D(**{**ok, "kernel_size": 5, "input_size": 2})


def test_bad_input_gets_a_clear_error(rng):
    layer, x = make(CASES[0], rng)
    with pytest.raises(LayerInputError, match=r"input height/width: expected 7x6.*got 6x7"):
        layer.forward(rng.standard_normal((2, 3, 6, 7)))
    with pytest.raises(LayerInputError, match="input channels"):
        layer.forward(rng.standard_normal((2, 2, 7, 6)))
    with pytest.raises(LayerInputError, match="input dtype"):
        layer.forward(x.astype(np.float32))                       # the parameters are float64
    with pytest.raises(LayerInputError, match="backward before forward"):
        layer.backward(np.zeros((2, 4, 4, 3)))
    out = layer.forward(x)
    with pytest.raises(LayerInputError, match=r"dout shape: expected \(2, 4, 4, 3\)"):
        layer.backward(np.zeros(out.shape[:-1] + (2,)))
    with pytest.raises(LayerInputError, match=r"input shape.*made for 7x6"):
        layer.output_shape((3, 8, 6))
