"""The fast backends against the NumPy reference, and the two towers against one device.

* every op each fast backend registers, and every layer, forward and backward, in
  float32 (and the ops in float64), on awkward shapes (H != W, stride > 1,
  padding, groups = 2, overlapping pools, LRN at the channel edges);
* a drift check: 50 training steps of the Figure-1 net give the same losses
  on every backend, to float32 rounding;
* the two-tower AlexNet (``numpy_alexnet.towers``) against the single-device
  model with grouped layers: on the host to float64 rounding, and on one GPU
  with ``devices=(0, 0)`` to float32 rounding.

Numba tests run wherever Numba is installed (CI installs it); CuPy tests are
skipped unless CuPy sees a CUDA device.  Tolerances are relative errors of
whole arrays (``gradcheck.rel_error``): the Numba kernels add in the
reference's order, so most of them agree bit for bit; CuPy's GEMMs (cuBLAS)
round differently from OpenBLAS, hence its looser bound.
"""
import copy

import numpy as np
import pytest

from numpy_alexnet import MomentumSGD, SoftmaxCrossEntropy, cifar_fig1
from numpy_alexnet.backend import (cupy_available, get_ops, numba_available, overrides,
                                   reference_op, to_numpy)
from numpy_alexnet.gradcheck import check_layer, rel_error
from numpy_alexnet.layers import LayerInputError
from numpy_alexnet.layers import (AvgPool2D, Conv2D, Dropout, Flatten, Linear, LocalResponseNorm,
                                  MaxPool2D, ReLU, Tanh)
from numpy_alexnet.models import alexnet

HAS_CUPY = cupy_available()
needs_numba = pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
needs_gpu = pytest.mark.skipif(not HAS_CUPY, reason="needs CuPy and a CUDA device")

FAST = [pytest.param("numba", marks=needs_numba),
        pytest.param("cupy", marks=[needs_gpu, pytest.mark.gpu])]
# Relative error allowed against the reference, per backend, in float32.
TOL32 = {"numba": 1e-6, "cupy": 1e-5}


def on(backend, a):
    """``a`` (host) as an array of ``backend``."""
    if backend == "cupy":
        import cupy
        return cupy.asarray(a)
    return a


def assert_close(ref, got, tol, what=""):
    err = rel_error(ref, got)
    print(f"  {what}: rel error {err:.2e}")
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol}"


# -- every op -----------------------------------------------------------------------------
CONV_CASES = [(2, 3, 7, 5, 3, 3, 2, 1), (1, 2, 9, 11, 5, 4, 3, 2), (3, 1, 6, 6, 2, 2, 2, 0),
              (2, 3, 23, 19, 11, 11, 4, 0), (2, 4, 8, 7, 5, 5, 1, 2), (2, 3, 9, 6, 4, 5, 1, 1)]
POOL_CASES = [(3, 2, 9, 7), (2, 2, 6, 8), (3, 1, 5, 6), (3, 2, 13, 13)]
LRN_CASES = [(7, 5), (3, 5), (6, 3), (2, 1), (1, 5)]


def test_every_backend_provides_every_op():
    """Every backend has every op of the reference: its own kernel or the reference's."""
    reference = vars(get_ops("numpy"))
    names = ["numba"] if numba_available() else []
    names += ["cupy"] if HAS_CUPY else []
    for name in names:
        ops, own = vars(get_ops(name)), overrides(name)
        assert set(ops) == set(reference), name
        assert own and all(ops[op] is fn for op, fn in own.items()), name
        assert all(ops[op] is reference[op] for op in set(reference) - set(own)), name


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im(rng, backend, dtype):
    ref, fast = get_ops("numpy"), get_ops(backend)
    for (N, C, H, W, kh, kw, s, p) in CONV_CASES:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        cols = ref.im2col(x, kh, kw, s, p)
        got = fast.im2col(on(backend, x), kh, kw, s, p)
        assert got.dtype == dtype and got.shape == cols.shape
        np.testing.assert_array_equal(to_numpy(got), cols)          # a copy: exact
        c = rng.standard_normal(cols.shape).astype(dtype)
        dx = ref.col2im(c, x.shape, kh, kw, s, p)
        got = fast.col2im(on(backend, c), x.shape, kh, kw, s, p)
        assert got.dtype == dtype and got.shape == x.shape
        assert_close(dx, got, 1e-15 if dtype == np.float64 else 1e-7, f"col2im {(N, C, H, W, kh, s, p)}")


# (N, C, H, W, F, K, stride, pad, groups): 'same' convolutions (the fast path's contiguous
# runs), strided, unpadded, grouped, and H != W.
CONV2D_CASES = [(5, 4, 9, 10, 6, 5, 1, 2, 1), (7, 4, 8, 8, 6, 3, 1, 1, 2), (3, 3, 13, 12, 4, 5, 2, 1, 1),
                (4, 2, 7, 7, 4, 3, 1, 0, 1), (9, 6, 15, 15, 4, 5, 1, 2, 2), (2, 3, 23, 23, 4, 11, 4, 0, 1)]


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_ops(rng, backend, dtype, monkeypatch):
    """The fused convolution against the reference, forward and backward (and without dx)."""
    if backend == "numba":                       # chunks of one or two examples: many chunks
        from numpy_alexnet.fast import numba_conv
        monkeypatch.setattr(numba_conv, "CHUNK_BYTES", 3000)
    ref, fast = get_ops("numpy"), get_ops(backend)
    tol = 1e-13 if dtype == np.float64 else TOL32[backend]
    for (N, C, H, W, F, K, s, p, G) in CONV2D_CASES:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        Wt = rng.standard_normal((F, C // G, K, K)).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        out, state = ref.conv2d_forward(x, Wt, b, s, p, G)
        got, got_state = fast.conv2d_forward(on(backend, x), on(backend, Wt), on(backend, b), s, p, G)
        assert got.dtype == dtype and got.shape == out.shape
        assert_close(out, got, tol, f"conv forward {(N, C, H, W, F, K, s, p, G)}")
        d = rng.standard_normal(out.shape).astype(dtype)
        want = ref.conv2d_backward(d, state, Wt, s, p, G)
        for input_grad in (True, False):
            dx, dW, db = fast.conv2d_backward(on(backend, d), got_state, on(backend, Wt), s, p, G,
                                              input_grad)
            if input_grad:
                assert dx.shape == x.shape
                assert_close(want[0], dx, tol, f"conv dx {(N, C, H, W, F, K, s, p, G)}")
            else:
                assert dx is None
            assert_close(want[1], dW, tol, f"conv dW {(N, C, H, W, F, K, s, p, G)}")
            assert_close(want[2], db, tol, f"conv db {(N, C, H, W, F, K, s, p, G)}")


@needs_numba
def test_numba_conv_gradients_do_not_depend_on_the_thread_count(rng, monkeypatch):
    """dx, dW and db bit for bit the same on one thread as on two: each thread sums its
    chunks' dW products in float64 (in float32, 16 chunks in one chain and two chains of
    8 round differently, and training drifted apart with the thread count)."""
    import numba
    from numpy_alexnet.fast import numba_conv
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads")
    monkeypatch.setattr(numba_conv, "CHUNK_BYTES", 3000)     # chunks of one example: 16 chunks
    ops = get_ops("numba")
    x = rng.standard_normal((16, 4, 9, 9)).astype(np.float32)
    Wt = rng.standard_normal((6, 4, 5, 5)).astype(np.float32)
    out, state = ops.conv2d_forward(x, Wt, rng.standard_normal(6).astype(np.float32), 1, 2, 1)
    d = rng.standard_normal(out.shape).astype(np.float32)
    threads, grads = numba.get_num_threads(), {}
    try:
        for T in (1, 2):
            numba.set_num_threads(T)
            grads[T] = ops.conv2d_backward(d, state, Wt, 1, 2, 1)
    finally:
        numba.set_num_threads(threads)
    for name, one, two in zip(("dx", "dW", "db"), grads[1], grads[2]):
        np.testing.assert_array_equal(one, two, err_msg=name)


def test_numba_chunks_share_the_batch_evenly():
    """Each thread a contiguous share, the shares within one example of each other."""
    from numpy_alexnet.fast.numba_threads import shares as thread_shares
    for N, nb, T in [(128, 3, 2), (128, 6, 2), (128, 1, 2), (10, 8, 2), (7, 1, 3), (5, 8, 1)]:
        shares = thread_shares(N, nb, T)
        sizes = [sum(m for _, m in share) for share in shares]
        assert len(shares) == T and max(sizes) - min(sizes) <= 1, (N, nb, T, sizes)
        chunks = [chunk for share in shares for chunk in share]
        assert all(1 <= m <= nb for _, m in chunks), (N, nb, T, chunks)
        assert [n for n0, m in chunks for n in range(n0, n0 + m)] == list(range(N))


# (N, C, H, W, F, K, stride, pad, groups, pool kernel, pool stride): the Figure-1 blocks
# (5x5 'same', 3x3/2 pools), strided, grouped, H != W, a pool that does not overlap.
FUSED_CASES = [(5, 3, 12, 11, 6, 5, 1, 2, 1, 3, 2), (4, 4, 9, 9, 6, 3, 1, 1, 2, 3, 2),
               (3, 3, 13, 12, 4, 5, 2, 1, 1, 2, 2), (6, 2, 8, 10, 4, 3, 1, 0, 1, 2, 1)]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("neuron", [ReLU, Tanh])
def test_fused_conv_neuron_pool(rng, dtype, pool, neuron, monkeypatch):
    """Numba's fused Conv2D -> ReLU/Tanh -> pool step against the three reference layers."""
    from numpy_alexnet.fast import fused, numba_conv
    monkeypatch.setattr(numba_conv, "CHUNK_BYTES", 3000)     # chunks of one or two examples
    tol = 1e-13 if dtype == np.float64 else TOL32["numba"]
    for (N, C, H, W, F, K, s, p, G, pk, ps) in FUSED_CASES:
        case = (N, C, H, W, F, K, s, p, G, pk, ps)
        conv = Conv2D(C, F, K, stride=s, padding=p, groups=G, weight_std=0.5, bias=0.1, rng=rng,
                      dtype=dtype)
        conv.params["b"][0] = -1e3               # channel 0 all below 0: ReLU's zeros tie in every window
        ref = [conv, neuron(), pool(kernel_size=pk, stride=ps)]
        fast = [copy.deepcopy(layer).to("numba") for layer in ref]
        steps = fused.fuse(fast)
        assert len(steps) == 1 and isinstance(steps[0], fused.ConvNeuronPool)
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        out = x
        for layer in ref:
            out = layer.forward(out)
        got = steps[0].forward(x)
        assert got.dtype == dtype and got.shape == out.shape
        if neuron is ReLU:
            assert (out[:, 0] == 0).all() and (out[:, 1:] > 0).any()
        assert_close(out, got, tol, f"fused forward {case}")
        d = rng.standard_normal(out.shape).astype(dtype)
        dx = d
        for layer in reversed(ref):
            dx = layer.backward(dx)
        for input_grad in (True, False):
            gdx = steps[0].backward(d, input_grad)
            if input_grad:
                assert gdx.shape == x.shape
                assert_close(dx, gdx, tol, f"fused dx {case}")
            else:
                assert gdx is None
            assert_close(conv.grads["W"], fast[0].grads["W"], tol, f"fused dW {case}")
            assert_close(conv.grads["b"], fast[0].grads["b"], tol, f"fused db {case}")


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_conv_relu(rng, dtype, monkeypatch):
    """Numba's fused Conv2D -> ReLU step (no pool after it) against the two reference
    layers; the step keeps its own cache, so the layers' own backwards have nothing to go
    back through."""
    from numpy_alexnet.fast import fused, numba_conv
    monkeypatch.setattr(numba_conv, "CHUNK_BYTES", 3000)     # chunks of one or two examples
    tol = 1e-13 if dtype == np.float64 else TOL32["numba"]
    for (N, C, H, W, F, K, s, p, G, _, _) in FUSED_CASES:
        case = (N, C, H, W, F, K, s, p, G)
        conv = Conv2D(C, F, K, stride=s, padding=p, groups=G, weight_std=0.5, bias=0.1, rng=rng,
                      dtype=dtype)
        conv.params["b"][0] = -1e3               # channel 0 all below 0
        ref = [conv, ReLU()]
        fast = [copy.deepcopy(layer).to("numba") for layer in ref]
        steps = fused.fuse(fast + [LocalResponseNorm().to("numba")])
        assert [type(s).__name__ for s in steps] == ["ConvReLU", "LocalResponseNorm"]
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        out = ref[1].forward(ref[0].forward(x))
        got = steps[0].forward(x)
        assert got.dtype == dtype and got.shape == out.shape
        assert (got[:, 0] == 0).all() and (got[:, 1:] > 0).any()
        assert_close(out, got, tol, f"fused forward {case}")
        d = rng.standard_normal(out.shape).astype(dtype)
        dx = ref[0].backward(ref[1].backward(d))
        for input_grad in (True, False):
            gdx = steps[0].backward(d, input_grad)
            if input_grad:
                assert_close(dx, gdx, tol, f"fused dx {case}")
            else:
                assert gdx is None
            assert_close(conv.grads["W"], fast[0].grads["W"], tol, f"fused dW {case}")
            assert_close(conv.grads["b"], fast[0].grads["b"], tol, f"fused db {case}")
        with pytest.raises(LayerInputError, match="ReLU.*backward before forward"):
            fast[1].backward(d)                  # the step wrote nothing into the layers' caches
    with pytest.raises(LayerInputError, match="ReLU.*dout shape"):
        steps[0].backward(d[:, :1])


@needs_numba
def test_numba_net_fuses_the_figure1_blocks_and_checks_dout():
    """Sequential on Numba runs each conv -> neuron -> pool as one step; the checks still hold."""
    net = cifar_fig1(seed=0).to("numba")
    assert [type(s).__name__ for s in net.steps] == ["ConvNeuronPool"] * 3 + ["Flatten", "Linear"]
    steps = net.steps
    net.forward(np.zeros((1, 3, 32, 32), np.float32))
    assert net.steps is steps                    # made once, when the net moved: not at every pass
    tanh = cifar_fig1(seed=0, activation="tanh").to("numba")
    assert [type(s).__name__ for s in tanh.steps] == ["ConvNeuronPool"] * 3 + ["Flatten", "Linear"]
    assert [type(s).__name__ for s in alexnet(num_classes=10).to("numba").steps] == [
        "ConvReLU", "LocalResponseNorm", "MaxPool2D", "ConvReLU", "LocalResponseNorm", "MaxPool2D",
        "ConvReLU", "ConvReLU", "ConvNeuronPool", "Flatten", "Linear", "ReLU", "Dropout", "Linear",
        "ReLU", "Dropout", "Linear"]
    assert [type(s).__name__ for s in cifar_fig1(seed=0).steps] == [
        "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "AvgPool2D", "Conv2D", "ReLU", "AvgPool2D",
        "Flatten", "Linear"]                     # the NumPy reference runs every layer on its own
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    net.forward(x)
    with pytest.raises(LayerInputError, match="pool1.*dout shape"):
        net.steps[0].backward(np.zeros((2, 32, 14, 15), np.float32))
    with pytest.raises(LayerInputError, match="act1.*backward before forward"):
        net["act1"].backward(np.zeros((2, 32, 32, 32), np.float32))
    for layer in net.layers:                     # one by one: no fused state to go back through
        x = layer.forward(x)
    with pytest.raises(LayerInputError, match="fused step after a forward that ran the layers"):
        net.backward(np.ones_like(x))
    net.forward(np.zeros((2, 3, 32, 32), np.float32))   # fused again: the layers' own passes are stale
    with pytest.raises(LayerInputError, match="conv1.*backward before forward"):
        net["conv1"].backward(np.zeros((2, 32, 32, 32), np.float32))


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["relu", "tanh"])
def test_activation_ops(rng, backend, dtype, kind):
    """The fused neurons give the reference's numbers exactly, zeros included."""
    ref, fast = get_ops("numpy"), get_ops(backend)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    x[0, 0, 0, :3] = 0                                # ReLU's gradient at 0 is 0
    d = rng.standard_normal(x.shape).astype(dtype)
    out, state = getattr(ref, f"{kind}_forward")(x)
    got, got_state = getattr(fast, f"{kind}_forward")(on(backend, x))
    assert got.dtype == dtype
    np.testing.assert_allclose(to_numpy(got), out, rtol=TOL32[backend] if backend == "cupy" else 0)
    dx = getattr(ref, f"{kind}_backward")(d, state)
    got = getattr(fast, f"{kind}_backward")(on(backend, d), got_state)
    assert got.dtype == dtype
    np.testing.assert_allclose(to_numpy(got), dx, rtol=TOL32[backend] if backend == "cupy" else 0)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_ops(rng, backend, dtype, kind):
    ref, fast = get_ops("numpy"), get_ops(backend)
    for (k, s, H, W) in POOL_CASES:
        x = rng.standard_normal((2, 3, H, W)).astype(dtype)
        x[0, 0, :3, :3] = 0.5                                   # an all-tie window: first wins
        out, state = getattr(ref, f"{kind}pool_forward")(x, k, k, s)
        got, fstate = getattr(fast, f"{kind}pool_forward")(on(backend, x), k, k, s)
        assert got.dtype == dtype
        np.testing.assert_array_equal(to_numpy(got), out)
        d = rng.standard_normal(out.shape).astype(dtype)
        dx = getattr(ref, f"{kind}pool_backward")(d, state, x.shape, k, k, s)
        got = getattr(fast, f"{kind}pool_backward")(on(backend, d), fstate, x.shape, k, k, s)
        assert got.dtype == dtype and got.shape == x.shape
        assert_close(dx, got, 1e-7 if dtype == np.float32 else 1e-16, f"{kind}pool {(k, s, H, W)}")


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_ops(rng, backend, dtype):
    ref, fast = get_ops("numpy"), get_ops(backend)
    tol = TOL32[backend] if dtype == np.float32 else 1e-14
    for (C, n) in LRN_CASES:
        # the paper's alpha and beta (Numba: square roots for beta 0.75), an alpha that
        # shows, and another beta (Numba: pow)
        for alpha, beta in ((1e-4, 0.75), (0.5, 0.75), (0.5, 0.6)):
            x = rng.standard_normal((2, C, 3, 4)).astype(dtype)
            out, scale = ref.lrn_forward(x, n, 2.0, alpha, beta)
            got, gscale = fast.lrn_forward(on(backend, x), n, 2.0, alpha, beta)
            assert got.dtype == dtype and gscale.dtype == dtype
            assert_close(out, got, tol, f"lrn forward C={C} n={n} beta={beta}")
            assert_close(scale, gscale, tol, f"lrn scale C={C} n={n} beta={beta}")
            d = rng.standard_normal(x.shape).astype(dtype)
            dx = ref.lrn_backward(d, x, out, scale, n, 2.0, alpha, beta)
            got = fast.lrn_backward(*(on(backend, a) for a in (d, x, out, scale)), n, 2.0, alpha, beta)
            assert got.dtype == dtype
            assert_close(dx, got, tol, f"lrn backward C={C} n={n} beta={beta}")


# -- every layer ---------------------------------------------------------------------------
def layer_cases(rng):
    """(name, layer, input) with float32 parameters and inputs."""
    f32 = np.float32
    return [
        ("conv-3x3-s1-p1", Conv2D(3, 4, 3, stride=1, padding=1, weight_std=0.5, bias=0.1, rng=rng),
         rng.standard_normal((2, 3, 7, 5))),
        ("conv-3x3-s2-p1-g2",
         Conv2D(4, 6, 3, stride=2, padding=1, groups=2, weight_std=0.5, rng=rng),
         rng.standard_normal((2, 4, 9, 6))),
        ("conv-11x11-s4", Conv2D(3, 4, 11, stride=4, padding=0, weight_std=0.1, rng=rng),
         rng.standard_normal((2, 3, 23, 27))),
        ("conv-2x3-p2-g2",
         Conv2D(2, 4, (2, 3), stride=1, padding=2, groups=2, weight_std=0.5, rng=rng),
         rng.standard_normal((2, 2, 4, 6))),
        ("maxpool-3-2", MaxPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7))),
        ("maxpool-2-2", MaxPool2D(kernel_size=2, stride=2), rng.standard_normal((2, 3, 6, 8))),
        ("avgpool-3-2", AvgPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7))),
        ("lrn-paper", LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75),
         rng.standard_normal((2, 7, 3, 4))),
        ("lrn-alpha0.5", LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75),
         rng.standard_normal((2, 7, 3, 4))),
        ("lrn-groups2", LocalResponseNorm(n=3, k=1.0, alpha=0.5, beta=0.75, groups=2),
         rng.standard_normal((2, 6, 3, 4))),
        ("relu", ReLU(), rng.standard_normal((3, 2, 4, 5))),
        ("tanh", Tanh(), rng.standard_normal((3, 2, 4, 5))),
        ("dropout", Dropout(rate=0.5, seed=3), rng.standard_normal((4, 9))),
        ("flatten", Flatten(), rng.standard_normal((2, 3, 2, 2))),
        ("linear", Linear(7, 5, weight_std=0.5, bias=0.2, rng=rng), rng.standard_normal((3, 7))),
    ], f32


@pytest.mark.parametrize("backend", FAST)
def test_every_layer_forward_backward(backend):
    cases, f32 = layer_cases(np.random.default_rng(7))
    rng = np.random.default_rng(8)
    for name, layer, x in cases:
        x = x.astype(f32)
        fast = copy.deepcopy(layer).to(backend, 0 if backend == "cupy" else None)
        out = layer.forward(x, train=True)                  # train: Dropout draws its mask
        got = fast.forward(on(backend, x), train=True)
        assert got.dtype == f32 and got.shape == out.shape, name
        assert_close(out, got, TOL32[backend], f"{name} forward")
        d = rng.standard_normal(out.shape).astype(f32)
        dx = layer.backward(d)
        gdx = fast.backward(on(backend, d))
        assert gdx.dtype == f32, name
        assert_close(dx, gdx, TOL32[backend], f"{name} dx")
        for key in layer.grads:
            assert_close(layer.grads[key], fast.grads[key], TOL32[backend], f"{name} d{key}")


def test_grouped_lrn_is_lrn_per_group(rng):
    """groups=2 normalizes each half of the channels on its own (one tower each)."""
    x = rng.standard_normal((2, 8, 3, 5))
    grouped = LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75, groups=2)
    one = LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75)
    out = grouped.forward(x)
    halves = [one.forward(x[:, :4]), one.forward(x[:, 4:])]
    np.testing.assert_allclose(out, np.concatenate(halves, axis=1), rtol=1e-15)
    errors = check_layer(LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75, groups=2), x)
    assert all(err < 1e-7 for err in errors.values()), errors


# -- drift: 50 training steps -----------------------------------------------------------------
def train_fig1(backend, steps=50, batch=16):
    """Losses of the Figure-1 net on two fixed batches, alternating, for ``steps`` steps.

    Weights N(0, 0.05) and lr 0.005, so that the loss falls within 50 steps
    while training stays far from the edge of stability (where float32
    rounding differences would grow into different trajectories).
    """
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, batch, 3, 32, 32)).astype(np.float32)
    ys = rng.integers(0, 10, (2, batch))
    net = cifar_fig1(seed=0, weight_stds=(0.05,) * 4).to(backend, 0 if backend == "cupy" else None)
    crit = SoftmaxCrossEntropy()
    opt = MomentumSGD(net, lr=0.005, momentum=0.9, weight_decay=0.0005)
    losses = []
    for step in range(steps):
        x, y = on(backend, xs[step % 2]), on(backend, ys[step % 2])
        losses.append(float(crit.forward(net.forward(x, train=True), y)))
        net.backward(crit.backward())
        opt.step()
    return np.array(losses)


@pytest.fixture(scope="module")
def numpy_losses():
    return train_fig1("numpy")


@pytest.mark.slow
@pytest.mark.parametrize("backend", FAST)
def test_fig1_training_drift(numpy_losses, backend):
    losses = train_fig1(backend)
    drift = np.abs(losses - numpy_losses) / np.abs(numpy_losses)
    print(f"  {backend}: loss {numpy_losses[0]:.4f} -> {numpy_losses[-1]:.4f} (numpy), "
          f"{losses[-1]:.4f} ({backend}); largest relative drift {drift.max():.2e}")
    assert numpy_losses[-1] < 0.9 * numpy_losses[0]               # it trains
    assert drift.max() < 1e-5, drift


# -- two towers ----------------------------------------------------------------------------
def grouped_single(num_classes, seed, dtype):
    """models.alexnet, whose LRN is per tower (groups=2): the one-device twin of the towers."""
    net = alexnet(num_classes=num_classes, seed=seed, dtype=dtype)
    assert all(l.groups == 2 for l in net if isinstance(l, LocalResponseNorm))
    return net


def compare_towers_with_single(single, towers, x, labels, tol):
    """Forward, backward and one SGD step of both; relative errors must stay below tol."""
    crit = SoftmaxCrossEntropy()
    logits, tlogits = single.forward(x, train=True), towers.forward(x, train=True)
    assert_close(logits, tlogits, tol, "logits")
    crit.forward(logits, labels)
    dlogits = crit.backward()
    dx = single.backward(dlogits)
    tdx = towers.backward(on_like(tlogits, dlogits))
    assert_close(dx, tdx, tol, "dx")
    grads = towers.merged("grads")
    for name, layer, key in single.named_params():
        assert_close(layer.grads[key], grads[name], tol, f"d {name}")
    for net in (single, towers):
        MomentumSGD(net, lr=0.01).step()
    params = towers.merged("params")
    for name, layer, key in single.named_params():
        assert_close(layer.params[key], params[name], tol, f"{name} after a step")


def on_like(ref, a):
    """``a`` on the device (and array module) of ``ref``."""
    from numpy_alexnet.backend import get_array_module, on_device_of
    with on_device_of(ref):
        return get_array_module(ref).asarray(a)


@pytest.mark.slow
def test_two_towers_on_the_host_are_the_grouped_model():
    """Same seed, same weights; forward, backward and an SGD step agree to float64 rounding."""
    from numpy_alexnet.towers import CROSSINGS, two_tower_alexnet
    towers = two_tower_alexnet(num_classes=10, seed=3, dtype=np.float64)
    single = grouped_single(10, seed=3, dtype=np.float64)
    assert towers.num_params() == single.num_params()
    x = np.random.default_rng(0).standard_normal((2, 3, 227, 227))
    compare_towers_with_single(single, towers, x, np.array([1, 7]), 1e-13)
    # Activations crossed only into conv3, fc6, fc7, fc8 (and the logits to the loss),
    # once each way, and their gradients back the same way.
    names = [name for name, _, _ in towers.crossing_log]
    for crossing in CROSSINGS[:-1]:
        assert names.count(crossing) == 2 and names.count(crossing + ".grad") == 2, crossing
    assert names.count("logits") == 1 and names.count("logits.grad") == 1
    assert set(names) <= set(CROSSINGS) | {c + ".grad" for c in CROSSINGS} | {"input.grad"}


@needs_numba
@pytest.mark.slow
def test_two_towers_numba_match_numpy():
    """The towers' logic on Numba arrays, in float64: here a float32 run would not be a
    fair test, since a one-ulp difference in LRN can move a max-pool's choice between
    near-equal inputs and so move gradients by a few 1e-3 (the ops and layers are
    compared in float32 above)."""
    from numpy_alexnet.towers import two_tower_alexnet
    ref = two_tower_alexnet(num_classes=10, seed=1, dtype=np.float64)
    fast = two_tower_alexnet(num_classes=10, seed=1, dtype=np.float64, backend="numba")
    x = np.random.default_rng(0).standard_normal((2, 3, 227, 227))
    assert_close(ref.forward(x, train=True), fast.forward(x, train=True), 1e-13, "logits")
    d = np.random.default_rng(1).standard_normal((2, 10))
    assert_close(ref.backward(d), fast.backward(d), 1e-13, "dx")
    grads = fast.merged("grads")
    for name, g in ref.merged("grads").items():
        assert_close(g, grads[name], 1e-13, f"d {name}")


def test_two_towers_need_an_even_class_count_and_matching_devices():
    from numpy_alexnet.towers import TwoTowerAlexNet, tower_spec
    with pytest.raises(ValueError, match="even"):
        tower_spec(7)
    with pytest.raises(ValueError, match="both towers"):
        TwoTowerAlexNet(alexnet(num_classes=2), devices=(0, None))


@needs_gpu
@pytest.mark.gpu
@pytest.mark.slow
def test_two_towers_on_one_gpu_are_the_single_device_model():
    """devices=(0, 0): the same code on one GPU gives the grouped one-device model's numbers.

    In float64, for the reason given in ``test_two_towers_numba_match_numpy``: on
    an H100 the float32 logits agreed to 1.8e-7, but splitting the GEMMs in two
    moved a max-pool's choice between near-equal inputs and so dx by 7e-3.
    """
    from numpy_alexnet.towers import two_tower_alexnet
    towers = two_tower_alexnet(num_classes=10, seed=3, dtype=np.float64, devices=(0, 0))
    single = grouped_single(10, seed=3, dtype=np.float64).to("cupy", 0)
    x = np.random.default_rng(0).standard_normal((4, 3, 227, 227))
    import cupy
    compare_towers_with_single(single, towers, cupy.asarray(x), cupy.asarray([1, 7, 0, 9]), 1e-10)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.slow
def test_two_towers_on_two_gpus_match_one():
    import cupy
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two CUDA devices")
    from numpy_alexnet.towers import two_tower_alexnet
    one = two_tower_alexnet(num_classes=10, seed=3, devices=(0, 0))
    two = two_tower_alexnet(num_classes=10, seed=3, devices=(0, 1))
    x = np.random.default_rng(0).standard_normal((4, 3, 227, 227)).astype(np.float32)
    a, b = one.forward(x, train=True), two.forward(x, train=True)
    assert b.device.id == 0
    assert_close(a, b, 1e-6, "logits")
    d = cupy.ones_like(a)
    assert_close(one.backward(d), two.backward(d), 1e-6, "dx")
    grads_two = two.merged("grads")
    for name, g in one.merged("grads").items():
        assert_close(g, grads_two[name], 1e-6, f"d {name}")


# -- the optimizer's update ----------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shared", [False, True])
def test_numba_momentum_update_is_the_reference_bit_for_bit(dtype, shared, monkeypatch):
    """``MomentumSGD.step`` on a Numba net runs ``momentum_update``, one compiled pass;
    three steps of it, with weight decay, per-layer rates and decay multipliers, leave
    weights and velocities identical to the reference's four array lines.  ``shared``:
    every parameter split between the threads, as AlexNet's large ones are."""
    from numpy_alexnet.fast import numba_ops
    if shared:
        monkeypatch.setattr(numba_ops, "SPLIT_ELEMENTS", 0)
    ops, ran = get_ops("numba"), []
    kernel = ops.momentum_update
    assert kernel is numba_ops.momentum_update
    monkeypatch.setattr(ops, "momentum_update", lambda *a: ran.append(True) or kernel(*a))
    nets = {b: cifar_fig1(seed=3, dtype=dtype).to(b) for b in ("numpy", "numba")}
    opts = {b: MomentumSGD(n, lr=0.01, momentum=0.9, weight_decay=0.004,
                           lr_mults={"conv2": 0.5}, decay_mults={"conv1.b": 0.0})
            for b, n in nets.items()}
    for step in range(3):
        for b, net in nets.items():
            for name, layer, key in net.named_params():
                g = np.random.default_rng(step * 100 + len(name)).standard_normal(
                    layer.params[key].shape)
                layer.grads[key] = g.astype(dtype)
            opts[b].step()
    assert ran and all(ran), "the Numba net's update did not run the compiled pass"
    for (name, ref_layer, key), (_, fast_layer, _) in zip(nets["numpy"].named_params(),
                                                          nets["numba"].named_params()):
        np.testing.assert_array_equal(ref_layer.params[key], fast_layer.params[key], err_msg=name)
        np.testing.assert_array_equal(opts["numpy"].velocity[name], opts["numba"].velocity[name],
                                      err_msg=name)


@needs_numba
def test_numba_momentum_update_leaves_other_arrays_to_the_reference(monkeypatch):
    """A non-contiguous gradient is not the compiled pass's: the reference's lines run,
    with the reference's result."""
    from numpy_alexnet.fast import numba_ops
    compiled = []
    monkeypatch.setattr(numba_ops, "_momentum_update", lambda *a: compiled.append(a))
    rng = np.random.default_rng(5)
    w, v = rng.standard_normal((4, 6)).astype(np.float32), np.zeros((4, 6), np.float32)
    g = rng.standard_normal((6, 4)).astype(np.float32).T       # (4, 6), not C-contiguous
    w_ref, v_ref = w.copy(), v.copy()
    reference_op("momentum_update")(w_ref, g, v_ref, 0.9, 0.001, 0.1)
    get_ops("numba").momentum_update(w, g, v, 0.9, 0.001, 0.1)
    assert not compiled
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(v, v_ref)


# -- fully connected layers ------------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("d_in, d_out", [(7, 5), (300, 97)])
def test_numba_linear_shares_its_gemms_and_matches_the_reference(d_in, d_out, monkeypatch):
    """The Numba backend splits Linear's three products by columns between its threads
    (``numba_ops.linear_forward``/``linear_backward``); forced on small layers here."""
    from numpy_alexnet.fast import numba_ops, numba_threads
    monkeypatch.setattr(numba_ops, "SPLIT_ELEMENTS", 0)
    split = []
    real_split = numba_threads.split
    monkeypatch.setattr(numba_threads, "split", lambda n, work: split.append(n) or real_split(n, work))
    rng = np.random.default_rng(11)
    layer = Linear(d_in, d_out, weight_std=0.5, bias=0.2, rng=rng)
    fast = copy.deepcopy(layer).to("numba")
    x = rng.standard_normal((6, d_in)).astype(np.float32)
    d = rng.standard_normal((6, d_out)).astype(np.float32)
    for step in range(2):                            # the second writes into the first's dW
        assert_close(layer.forward(x, train=True), fast.forward(x, train=True), TOL32["numba"], "out")
        assert_close(layer.backward(d), fast.backward(d), TOL32["numba"], "dx")
        for key in ("W", "b"):
            assert_close(layer.grads[key], fast.grads[key], TOL32["numba"], f"d{key}")
        d = d * 2
    assert split == [d_out, d_out, d_in] * 2


@needs_numba
def test_numba_linear_writes_dW_into_last_steps_array():
    """On Numba, dW goes into the array of the step before (no fresh 151 MB for fc6)."""
    rng = np.random.default_rng(12)
    layer = Linear(8, 6, rng=rng, dtype=np.float64).to("numba")
    x, d = rng.standard_normal((4, 8)), rng.standard_normal((4, 6))
    layer.forward(x, train=True)
    layer.backward(d)
    first = layer.grads["W"]
    layer.forward(2 * x, train=True)
    layer.backward(d)
    assert layer.grads["W"] is first
    np.testing.assert_allclose(first, (2 * x).T @ d, rtol=1e-12)
