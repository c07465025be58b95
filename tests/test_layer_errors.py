"""Bad input gets a clear error naming what was wrong and what was expected.

Constructors refuse nonsense hyperparameters at once; ``.to()`` refuses
unknown or missing backends before anything moves; every ``backward``
checks its ``dout`` against the last forward's output (``Layer.check_dout``);
nets check what they are given; KeyErrors print their sentence without quotes.
"""
import re

import numpy as np
import pytest

from numpy_alexnet import backend as B
from numpy_alexnet import LayerInputError, MomentumSGD, SoftmaxCrossEntropy, cifar_fig1
from numpy_alexnet.backend import BackendUnavailable
from numpy_alexnet.layers import (AvgPool2D, Conv2D, Dropout, Flatten, Layer, Linear,
                                  LocalResponseNorm, MaxPool2D, ReLU, Tanh)
from numpy_alexnet.models import alexnet, alexnet_torchvision, build
from numpy_alexnet.net import Sequential
from numpy_alexnet.towers import TwoTowerAlexNet, two_tower_alexnet


def raises(exc, *parts):
    """pytest.raises whose message must contain every one of ``parts`` (literally)."""
    return pytest.raises(exc, match="(?s)" + ".*".join(re.escape(p) for p in parts))


@pytest.fixture(scope="module")
def tiny():
    """A one-layer net for the optimizer."""
    return build([("fc", "linear", dict(in_features=2, out_features=3))], (2,), dtype=np.float64)


@pytest.fixture(scope="module")
def towers():
    """The two-tower AlexNet on the host, built once."""
    return two_tower_alexnet(num_classes=4, seed=0)


# -- 1. constructors ------------------------------------------------------------------------
@pytest.mark.parametrize("make, parts", [
    (lambda: Conv2D(3, 4, 0, name="c"), ("Conv2D 'c'", "kernel_size", ">= 1", "got 0")),
    (lambda: Conv2D(3, 4, (3, 0), name="c"), ("Conv2D 'c'", "kernel_size", ">= 1", "got 0")),
    (lambda: Conv2D(3, 4, 2.5, name="c"), ("Conv2D 'c'", "kernel_size", "integer", "got 2.5")),
    (lambda: Conv2D(3, 4, 3, padding=-1, name="c"), ("Conv2D 'c'", "padding", ">= 0", "got -1")),
    (lambda: Conv2D(3, 4, 3, stride=0, name="c"), ("Conv2D 'c'", "stride", ">= 1", "got 0")),
    (lambda: Conv2D(3, 0, 3, name="c"), ("Conv2D 'c'", "out_channels", ">= 1", "got 0")),
    (lambda: Conv2D(0, 4, 3, name="c"), ("Conv2D 'c'", "in_channels", ">= 1", "got 0")),
    (lambda: Conv2D(4, 4, 3, groups=0, name="c"), ("Conv2D 'c'", "groups", ">= 1", "got 0")),
    (lambda: Linear(0, 5, name="fc"), ("Linear 'fc'", "in_features", ">= 1", "got 0")),
    (lambda: Linear(5, 0, name="fc"), ("Linear 'fc'", "out_features", ">= 1", "got 0")),
    (lambda: MaxPool2D(kernel_size=3, stride=0, name="p"), ("MaxPool2D 'p'", "stride", ">= 1", "got 0")),
    (lambda: MaxPool2D(kernel_size=0, stride=2, name="p"), ("MaxPool2D 'p'", "kernel_size", ">= 1", "got 0")),
    (lambda: AvgPool2D(kernel_size=3, stride=0, name="p"), ("AvgPool2D 'p'", "stride", ">= 1", "got 0")),
    (lambda: AvgPool2D(kernel_size=0, stride=2, name="p"), ("AvgPool2D 'p'", "kernel_size", ">= 1", "got 0")),
    (lambda: LocalResponseNorm(k=-5, name="n"), ("LocalResponseNorm 'n'", "k", "> 0", "got -5")),
    (lambda: LocalResponseNorm(k=0, name="n"), ("LocalResponseNorm 'n'", "k", "> 0", "got 0")),
    (lambda: LocalResponseNorm(alpha=-1e-4, name="n"),
     ("LocalResponseNorm 'n'", "alpha", ">= 0", "got -0.0001")),
    (lambda: LocalResponseNorm(beta=float("nan"), name="n"),
     ("LocalResponseNorm 'n'", "beta", "finite", "got nan")),
    (lambda: LocalResponseNorm(n=4, name="n"), ("LocalResponseNorm 'n'", "n", "odd", "got 4")),
    (lambda: Dropout(rate=1.0, name="d"), ("Dropout 'd'", "rate", "[0, 1)", "got 1.0")),
])
def test_constructor_refuses_nonsense(make, parts):
    with raises(ValueError, *parts):
        make()


def test_hyperparameters_are_keyword_only_torch_order_refused():
    """torch's order LocalResponseNorm(size, alpha, beta, k) would be read as n, k, alpha, beta."""
    with raises(TypeError, "LocalResponseNorm takes its hyperparameters by keyword",
                "LocalResponseNorm(n=..., k=..., alpha=..., beta=..., groups=..., name=...)",
                "got 4 positional arguments (5, 0.0001, 0.75, 2.0)"):
        LocalResponseNorm(5, 1e-4, 0.75, 2.0)


@pytest.mark.parametrize("make, parts", [
    (lambda: MaxPool2D(3, 2), ("MaxPool2D takes its hyperparameters by keyword",
                               "MaxPool2D(kernel_size=..., stride=..., name=...)")),
    (lambda: AvgPool2D(3), ("AvgPool2D takes its hyperparameters by keyword",)),
    (lambda: Dropout(0.5), ("Dropout takes its hyperparameters by keyword", "rate=...")),
    (lambda: Conv2D(3, 8, 3, 2), ("Conv2D takes its hyperparameters by keyword",
                                  "Conv2D(in_channels, out_channels, kernel_size, stride=...",
                                  "at most 3 (in_channels, out_channels, kernel_size)")),
    (lambda: Linear(4, 2, 0.1), ("Linear takes its hyperparameters by keyword",
                                 "Linear(in_features, out_features, weight_std=...")),
])
def test_every_layer_takes_hyperparameters_by_keyword(make, parts):
    with raises(TypeError, *parts):
        make()


def test_keyword_only_keeps_the_signature_readable():
    import inspect
    params = inspect.signature(LocalResponseNorm).parameters
    assert [p.name for p in params.values()] == ["n", "k", "alpha", "beta", "groups", "name"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
    layer = LocalResponseNorm(n=3, k=1.0, alpha=0.5, beta=0.5, name="norm")
    assert (layer.n, layer.k, layer.alpha, layer.beta, layer.name) == (3, 1.0, 0.5, 0.5, "norm")


def test_lrn_constants_the_paper_uses_still_work():
    layer = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)
    x = np.random.default_rng(0).standard_normal((1, 6, 2, 2))
    assert np.all(np.isfinite(layer.forward(x)))


# -- 2. the optimizer -------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, parts", [
    (dict(lr=-1), ("MomentumSGD", "lr", "> 0", "got -1")),
    (dict(lr=0.0), ("MomentumSGD", "lr", "> 0", "got 0.0")),
    (dict(momentum=2), ("MomentumSGD", "momentum", "[0, 1)", "got 2")),
    (dict(momentum=-0.1), ("MomentumSGD", "momentum", "[0, 1)", "got -0.1")),
    (dict(weight_decay=-5e-4), ("MomentumSGD", "weight_decay", ">= 0", "got -0.0005")),
    (dict(lr_mults={"fc": -1.0}), ("MomentumSGD", "lr_mults", ">= 0", "{'fc': -1.0}")),
])
def test_optimizer_refuses_nonsense_settings(tiny, kwargs, parts):
    with raises(ValueError, *parts):
        MomentumSGD(tiny, **kwargs)


def test_optimizer_needs_a_net():
    with raises(TypeError, "MomentumSGD: net", "named_params", "got list"):
        MomentumSGD([1, 2])


def test_optimizer_load_refuses_nonsense_settings(tiny):
    opt = MomentumSGD(tiny, lr=0.1)
    state = opt.state_dict()
    state["momentum"] = 1.5
    with raises(ValueError, "MomentumSGD", "momentum", "got 1.5"):
        opt.load_state_dict(state)
    assert opt.momentum == 0.9


# -- 3. the models --------------------------------------------------------------------------
@pytest.mark.parametrize("make, model", [
    (lambda: alexnet(num_classes=0), "alexnet"),
    (lambda: cifar_fig1(num_classes=0), "cifar_fig1"),
    (lambda: cifar_fig1(num_classes=1), "cifar_fig1"),
    (lambda: alexnet_torchvision(num_classes=-3), "alexnet_torchvision"),
])
def test_models_need_two_classes(make, model):
    with raises(ValueError, f"{model}: num_classes", ">= 2", "softmax over one class"):
        make()


def test_too_small_input_says_the_smallest():
    with raises(LayerInputError, "cifar_fig1_relu: input (3, 8, 8)", "AvgPool2D 'pool3'",
                "at least 3x3", "got 1x1", "smallest 31x31", "too small"):
        cifar_fig1(input_size=8)
    with raises(LayerInputError, "Linear 'fc10'", "(576,)", "31x31 to 38x38", "too large"):
        cifar_fig1(input_size=64)
    for size in (31, 32, 38):
        assert cifar_fig1(input_size=size).shapes()[-1] == (10,)


def test_two_towers_need_an_alexnet():
    with raises(ValueError, "TwoTowerAlexNet: expected the paper's AlexNet",
                "cifar_fig1_relu", "lacking layers", "conv4", "fc8"):
        TwoTowerAlexNet(cifar_fig1())
    with raises(TypeError, "TwoTowerAlexNet: expected the paper's AlexNet", "got list"):
        TwoTowerAlexNet([ReLU()])


# -- 4. backends ------------------------------------------------------------------------------
def test_to_refuses_unknown_backends():
    net = cifar_fig1()
    with raises(ValueError, "Sequential 'cifar_fig1_relu'.to", "expected one of",
                "'numpy', 'numba', 'cupy'", "got 'tpu'"):
        net.to("tpu")
    with raises(ValueError, "got 'NumPy'", "lower case: 'numpy'"):
        net.to("NumPy")
    with raises(ValueError, "Conv2D 'c'", "backend", "got 'tpu'"):
        Conv2D(3, 4, 3, name="c").to("tpu")
    with raises(ValueError, "device", "None or a GPU number >= 0", "got -1"):
        net.to("numpy", -1)
    assert net.backend == "numpy" and all(layer.backend == "numpy" for layer in net)


def test_two_towers_refuse_unknown_backends():
    with raises(ValueError, "two_tower_alexnet", "got 'tpu'"):
        two_tower_alexnet(num_classes=2, backend="tpu")


def test_failed_move_leaves_the_net_as_it_was(monkeypatch):
    def no_cupy():
        raise BackendUnavailable("the 'cupy' backend needs CuPy (made missing by this test)")
    monkeypatch.setattr(B, "import_cupy", no_cupy)
    monkeypatch.delitem(B._OPS_CACHE, "cupy", raising=False)
    net = cifar_fig1()
    x = np.zeros((1, 3, 32, 32), np.float32)
    with raises(BackendUnavailable, "needs CuPy"):
        net.to("cupy")
    assert net.backend == "numpy"
    assert all(layer.backend == "numpy" and layer.device is None for layer in net)
    assert all(type(p) is np.ndarray for layer in net for p in layer.params.values())
    assert net.forward(x).shape == (1, 10)                 # still usable
    with raises(BackendUnavailable, "needs CuPy"):
        net["conv1"].to("cupy")
    assert net["conv1"].backend == "numpy" and type(net["conv1"].params["W"]) is np.ndarray


# -- 5. backward ------------------------------------------------------------------------------
# (layer, input shape, a dout of the wrong shape, the expected dout shape as printed)
LAYERS = [
    (lambda: Conv2D(3, 4, 3, name="l"), (2, 3, 5, 5), (2, 4, 3, 4), "(2, 4, 3, 3)"),
    (lambda: MaxPool2D(kernel_size=3, stride=2, name="l"), (2, 3, 7, 7), (2, 3, 4, 3), "(2, 3, 3, 3)"),
    (lambda: AvgPool2D(kernel_size=3, stride=2, name="l"), (2, 3, 7, 7), (2, 3, 3, 2), "(2, 3, 3, 3)"),
    (lambda: LocalResponseNorm(n=3, name="l"), (2, 4, 3, 3), (2, 4, 3, 2), "(2, 4, 3, 3)"),
    (lambda: Dropout(rate=0.5, name="l"), (2, 5), (2, 4), "(2, 5)"),
    (lambda: ReLU(name="l"), (2, 5), (3, 5), "(2, 5)"),
    (lambda: Tanh(name="l"), (2, 5), (2, 5, 1), "(2, 5)"),
    (lambda: Linear(5, 3, name="l"), (2, 5), (2, 4), "(2, 3)"),
    (lambda: Flatten(name="l"), (2, 3, 2, 2), (2, 13), "(2, 12)"),
]


@pytest.mark.parametrize("make, x_shape, bad, expected", LAYERS)
def test_backward_checks_dout(make, x_shape, bad, expected):
    layer = make()
    kind = type(layer).__name__
    with raises(LayerInputError, f"{kind} 'l': backward before forward"):
        layer.backward(np.ones(x_shape))
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    out = layer.forward(x, True)
    with raises(LayerInputError, f"{kind} 'l': dout shape: expected {expected}", f"got {bad}"):
        layer.backward(np.ones(bad))
    with raises(LayerInputError, f"{kind} 'l': dout type", "got list"):
        layer.backward(np.ones(out.shape).tolist())
    assert layer.backward(np.ones_like(out)).shape == x_shape   # a wrong dout changed nothing
    assert layer.backward(np.ones_like(out)).shape == x_shape   # and twice is fine
    layer.to("numpy")                                           # a move clears the cache
    with raises(LayerInputError, "backward before forward"):
        layer.backward(np.ones_like(out))


def test_conv_param_backward_checks_dout():
    layer = Conv2D(3, 4, 3, name="c")
    layer.forward(np.zeros((2, 3, 5, 5), np.float32))
    with raises(LayerInputError, "Conv2D 'c': dout shape: expected (2, 4, 3, 3)", "(1, 4, 3, 3)"):
        layer.param_backward(np.ones((1, 4, 3, 3)))


def test_a_failed_forward_leaves_nothing_to_go_back_through():
    layer = LocalResponseNorm(n=3, groups=2, name="n")
    layer.forward(np.ones((1, 4, 2, 2)))
    with raises(LayerInputError, "LocalResponseNorm 'n'", "multiple of groups=2", "got 3"):
        layer.forward(np.ones((1, 3, 2, 2)))
    with raises(LayerInputError, "'n': backward before forward"):
        layer.backward(np.ones((1, 3, 2, 2)))


def test_dropout_tells_no_forward_from_a_test_time_forward():
    layer = Dropout(rate=0.5, name="d")
    with raises(LayerInputError, "Dropout 'd': backward before forward"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.ones((2, 3)), train=False)
    with raises(RuntimeError, "Dropout 'd': backward after a test-time forward"):
        layer.backward(np.ones((2, 3)))


def test_loss_backward_before_forward():
    loss = SoftmaxCrossEntropy(name="loss")
    with raises(LayerInputError, "SoftmaxCrossEntropy 'loss': backward before forward"):
        loss.backward()
    with raises(LayerInputError, "'loss'", "label out of range"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
    with raises(LayerInputError, "'loss': backward before forward"):     # that forward failed
        loss.backward()
    loss.forward(np.zeros((2, 3)), np.array([0, 2]))
    assert loss.backward().shape == (2, 3)
    with raises(LayerInputError, "'loss': dout shape: expected ()", "got (2,)"):
        loss.backward(np.ones(2))


def test_the_checks_take_the_arguments_by_position_or_by_name():
    """The checks find the input, the labels and dout however they are passed, and under
    whatever names a layer's methods give them."""
    loss, z = SoftmaxCrossEntropy(name="loss"), np.zeros((2, 3))
    assert loss.forward(z, labels=np.array([0, 2])) == loss.forward(logits=z, labels=[0, 2])
    assert loss.backward(dout=1.0).shape == (2, 3)
    with raises(LayerInputError, "'loss'", "label out of range", "got 3"):
        loss.forward(logits=z, labels=np.array([0, 3]))

    class Double(Layer):
        def forward(self, inputs, train=False):
            return 2 * inputs

        def backward(self, grad):
            return 2 * grad

    layer = Double(name="double")
    assert layer.forward(inputs=np.ones((2, 3))).shape == (2, 3)
    with raises(LayerInputError, "Double 'double'", "dout shape: expected (2, 3)", "got (2, 4)"):
        layer.backward(grad=np.ones((2, 4)))
    assert layer.backward(np.ones((2, 3))).shape == (2, 3)
    with raises(LayerInputError, "Double 'double'", "input dtype"):
        layer.forward(inputs=np.ones((2, 3), dtype=np.int64))


def test_sequential_backward_checks_dout():
    net = cifar_fig1()
    with raises(LayerInputError, "Linear 'fc10': backward before forward"):
        net.backward(np.ones((2, 10), np.float32))
    net.forward(np.zeros((2, 3, 32, 32), np.float32))
    for bad in ((2, 9), (3, 10)):
        for input_grad in (True, False):
            with raises(LayerInputError, "Linear 'fc10': dout shape: expected (2, 10)",
                        f"got {bad}"):
                net.backward(np.ones(bad, np.float32), input_grad=input_grad)
    assert net.backward(np.ones((2, 10), np.float32), input_grad=False) is None


def test_two_towers_backward_checks_dlogits(towers):
    fresh = TwoTowerAlexNet.__new__(TwoTowerAlexNet)     # a forward-less copy, without a rebuild
    fresh.__dict__.update(towers.__dict__, _logits_shape=None)
    with raises(LayerInputError, "TwoTowerAlexNet: backward before forward"):
        fresh.backward(np.ones((1, 4), np.float32))
    towers.forward(np.zeros((1, 3, 227, 227), np.float32), train=True)
    for bad in ((1, 3), (2, 4)):
        with raises(LayerInputError, "TwoTowerAlexNet: dout shape: expected (1, 4)", f"got {bad}"):
            towers.backward(np.ones(bad, np.float32))
    assert towers.backward(np.ones((1, 4), np.float32), input_grad=False) is None


# -- 6. nets given the wrong things -----------------------------------------------------------
def test_nets_say_they_need_an_array(towers):
    with raises(LayerInputError, "Sequential 'cifar_fig1_relu': input type",
                "an array (N, 3, 32, 32)", "got list"):
        cifar_fig1().forward([[1, 2]])
    with raises(LayerInputError, "TwoTowerAlexNet: input type", "an array (N, 3, 227, 227)",
                "got list"):
        towers.forward([1, 2, 3])
    with raises(LayerInputError, "ReLU 'a': input type", "got list"):   # no input_shape: layer 0 says it
        Sequential([ReLU(name="a")]).forward([[1.0, 2.0]])


def test_sequential_needs_layers():
    with raises(TypeError, "Sequential 'net': layer 1", "expected a Layer", "got str 'conv'"):
        Sequential([ReLU(name="a"), "conv"])


def test_load_state_dict_refuses_non_arrays_and_non_finite_values():
    net = cifar_fig1(seed=0)
    before = net["conv1"].params["W"].copy()
    state = net.state_dict()
    state["fc10.b"] = state["fc10.b"].tolist()
    with raises(ValueError, "Sequential 'cifar_fig1_relu': parameter fc10.b",
                "an array of shape (10,)", "got list"):
        net.load_state_dict(state)
    state = cifar_fig1(seed=1).state_dict()
    state["conv2.W"] = np.full_like(state["conv2.W"], np.nan)
    with raises(ValueError, "parameter conv2.W", "expected finite values",
                f"got {state['conv2.W'].size} of {state['conv2.W'].size} inf or NaN"):
        net.load_state_dict(state)
    state["conv2.W"] = state["conv2.W"].astype(str)
    with raises(ValueError, "parameter conv2.W", "expected numbers", "dtype <U"):
        net.load_state_dict(state)
    np.testing.assert_array_equal(net["conv1"].params["W"], before)     # nothing half-loaded


# -- 7. KeyErrors print cleanly ---------------------------------------------------------------
def test_key_errors_print_their_sentence_without_quotes(tiny):
    net = cifar_fig1()
    state = net.state_dict()
    del state["conv1.W"]
    for call, start in [(lambda: net.load_state_dict(state), "Sequential 'cifar_fig1_relu': state"),
                        (lambda: net["conv9"], "Sequential 'cifar_fig1_relu' has no layer 'conv9'"),
                        (lambda: MomentumSGD(tiny, lr_mults={"conv9": 0.5}),
                         "MomentumSGD: lr_mults names unknown layers or parameters ['conv9']")]:
        with pytest.raises(KeyError) as info:          # still a KeyError, for callers that catch it
            call()
        assert str(info.value).startswith(start), str(info.value)
