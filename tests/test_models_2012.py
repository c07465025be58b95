"""The 2012 code's AlexNet against the paper's, difference by difference; the
same-map response normalization it adds; weight decay without the biases;
and the conv-local CIFAR-10 nets of section 3.3 as data.

Most checks read the specs (no 60-million-parameter build); one build of the
2012 net (at 10 classes) checks what the layers were made with.
"""
import numpy as np
import pytest

from numpy_alexnet import MomentumSGD, SpatialResponseNorm
from numpy_alexnet.cli import main
from numpy_alexnet.gradcheck import check_layer, check_net
from numpy_alexnet.layers import LayerInputError, LocalResponseNorm
from numpy_alexnet.models import (CONV_LOCAL_LRN, MODELS, alexnet_2012_code,
                                  alexnet_2012_code_spec, alexnet_spec, build, build_model,
                                  cifar_conv_local_spec)
from numpy_alexnet.net import KeyMismatchError
from numpy_alexnet.optim import no_bias_decay
from numpy_alexnet.recipes import ALEXNET_2012_RECIPE, CONV_LOCAL_RECIPE

LEARNED = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


def names(spec):
    return [name for name, _, _ in spec]


def rows(spec):
    return {name: (kind, args) for name, kind, args in spec}


@pytest.fixture(scope="module")
def net2012():
    return alexnet_2012_code(num_classes=10)


# -- each named difference from alexnet() ---------------------------------------------------
def test_conv1_has_lrn_on_the_pre_activation_and_relu_after_the_pool():
    paper, code = names(alexnet_spec(10)), names(alexnet_2012_code_spec(10))
    assert paper[:5] == ["conv1", "relu1", "norm1", "pool1", "conv2"]
    assert code[:5] == ["conv1", "norm1", "pool1", "relu1", "conv2"]


def test_conv2_adds_a_same_map_normalization_after_the_cross_map_one():
    paper, code = names(alexnet_spec(10)), names(alexnet_2012_code_spec(10))
    i = code.index("conv2")
    assert code[i:i + 5] == ["conv2", "relu2", "norm2", "snorm2", "pool2"]
    assert "snorm2" not in paper
    kind, args = rows(alexnet_2012_code_spec(10))["snorm2"]
    assert kind == "srn"
    assert args == dict(size=5, k=1.0, alpha=pytest.approx(0.001 / 25), beta=0.75)
    # Apart from those rows (and pool5/relu5, whose order gives the same values), the
    # layers are the paper's.
    assert sorted(code) == sorted(paper + ["snorm2"])
    assert [n for n in code if n != "snorm2"] == (
        ["conv1", "norm1", "pool1", "relu1"] + paper[4:13] + ["pool5", "relu5"] + paper[15:])
    assert paper[12:15] == ["conv5", "relu5", "pool5"]


def test_lrn_constants_divide_the_scale_by_the_size_with_k_2_per_tower():
    for norm in ("norm1", "norm2"):
        _, paper = rows(alexnet_spec(10))[norm]
        _, code = rows(alexnet_2012_code_spec(10))[norm]
        assert paper["alpha"] == 1e-4
        assert code == dict(n=5, k=2.0, alpha=pytest.approx(1e-4 / 5), beta=0.75, groups=2)


def test_init_stds_and_biases(net2012):
    paper = {n: (a["weight_std"], a["bias"]) for n, a in
             ((n, a) for n, (k, a) in rows(alexnet_spec(10)).items() if n in LEARNED)}
    code = {n: (a["weight_std"], a["bias"]) for n, a in
            ((n, a) for n, (k, a) in rows(alexnet_2012_code_spec(10)).items() if n in LEARNED)}
    differs = {n for n in LEARNED if paper[n] != code[n]}
    assert differs == {"conv3", "conv4", "conv5"}
    assert {n: code[n][0] for n in LEARNED} == {**dict.fromkeys(LEARNED, 0.01),
                                                "conv3": 0.03, "conv4": 0.03, "conv5": 0.03}
    assert {n for n in LEARNED if code[n][1] == 1.0} == {"conv2", "conv4", "conv5", "fc6", "fc7"}
    # What the built layers hold (hundreds of thousands of draws: the std is within 1%).
    for name in ("conv1", "conv3", "conv5", "fc7"):
        std = float(net2012[name].params["W"].std())
        assert std == pytest.approx(code[name][0], rel=0.01), name
        np.testing.assert_array_equal(net2012[name].params["b"], code[name][1])


def test_no_bias_decay_in_the_recipe(net2012):
    mults = no_bias_decay(net2012)
    assert mults == ALEXNET_2012_RECIPE["decay_mults"]
    assert sorted(mults) == sorted(f"{n}.b" for n in LEARNED)
    assert ALEXNET_2012_RECIPE["weight_decay"] == 0.0005
    assert ALEXNET_2012_RECIPE["final_rates"]["conv1"] == (0.0, 0.0)          # frozen at the end
    assert ALEXNET_2012_RECIPE["final_rates"]["fc6"] == (0.00001, 0.002)


def test_summary_shows_the_2012_code_alexnet(capsys):
    assert "alexnet_2012_code" in MODELS
    assert main(["summary", "alexnet_2012_code", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "SpatialResponseNorm" in out and "alpha=2e-05" in out
    # alexnet()'s count at 10 classes: 60,965,224 less fc8's 4096*990 weights and 990 biases
    assert "Total parameters: 56,909,194" in out


# -- SpatialResponseNorm ----------------------------------------------------------------------
def srn_naive(x, size, k, alpha, beta):
    """The definition, one pixel at a time."""
    N, C, H, W = x.shape
    h = size // 2
    out = np.zeros_like(x)
    for y in range(H):
        for xo in range(W):
            win = x[:, :, max(0, y - h):y + h + 1, max(0, xo - h):xo + h + 1]
            out[:, :, y, xo] = x[:, :, y, xo] / (k + alpha * np.sum(win ** 2, axis=(2, 3))) ** beta
    return out


@pytest.mark.parametrize("size,shape", [(5, (2, 3, 7, 6)), (3, (1, 2, 4, 9)), (1, (2, 2, 3, 3)),
                                        (7, (1, 2, 5, 4))])                # window > image
def test_spatial_norm_forward_and_gradients(rng, size, shape):
    # A large alpha, so a window bug changes the numbers; inputs well away from 0.
    layer = SpatialResponseNorm(size=size, k=1.5, alpha=0.3, beta=0.75)
    x = rng.standard_normal(shape) * 2
    np.testing.assert_allclose(layer.forward(x), srn_naive(x, size, 1.5, 0.3, 0.75),
                               rtol=1e-12, atol=1e-14)
    errors = check_layer(layer, x)
    print(size, shape, errors)
    assert errors["x"] < 1e-7


def test_spatial_norm_is_not_the_cross_map_one(rng):
    """Same constants, different windows: the two layers disagree."""
    x = rng.standard_normal((1, 6, 5, 5))
    a = SpatialResponseNorm(size=5, k=1.0, alpha=0.5, beta=0.75).forward(x)
    b = LocalResponseNorm(n=5, k=1.0, alpha=0.5, beta=0.75).forward(x)
    assert np.abs(a - b).max() > 0.01


def test_spatial_norm_errors(rng):
    with pytest.raises(TypeError):
        SpatialResponseNorm(5)                                   # keyword-only
    for arg, value in [("size", 4), ("size", 0), ("k", 0.0), ("alpha", -1.0), ("beta", float("nan"))]:
        with pytest.raises(ValueError, match=f"SpatialResponseNorm.*{arg}"):
            SpatialResponseNorm(**{arg: value})
    layer = SpatialResponseNorm()
    with pytest.raises(LayerInputError, match="input shape"):
        layer.forward(rng.standard_normal((2, 3, 4)))
    with pytest.raises(LayerInputError, match="backward before forward"):
        layer.backward(np.zeros((1, 2, 3, 3)))
    layer.forward(rng.standard_normal((1, 2, 3, 3)))
    with pytest.raises(LayerInputError, match="dout shape"):
        layer.backward(np.zeros((1, 2, 3, 4)))


# -- weight decay per parameter ---------------------------------------------------------------
def _tiny(seed=0):
    spec = [("conv1", "conv", dict(in_channels=2, out_channels=3, kernel_size=3, bias=0.5)),
            ("relu1", "relu", {}), ("flatten", "flatten", {}),
            ("fc", "linear", dict(in_features=3 * 3 * 4, out_features=2, bias=0.5))]
    return build(spec, (2, 5, 6), seed=seed, dtype=np.float64)


def test_decay_mults_leave_biases_undecayed():
    """With zero gradients one step is decay alone: w -> w (1 - wd lr mult)."""
    net = _tiny()
    before = {n: l.params[k].copy() for n, l, k in net.named_params()}
    opt = MomentumSGD(net, lr=0.1, weight_decay=0.5, decay_mults={**no_bias_decay(net), "fc": 0.5})
    for _, layer, key in net.named_params():
        layer.grads[key] = np.zeros_like(layer.params[key])
    opt.step()
    after = {n: l.params[k] for n, l, k in net.named_params()}
    np.testing.assert_array_equal(after["conv1.b"], before["conv1.b"])
    np.testing.assert_array_equal(after["fc.b"], before["fc.b"])            # its own name wins
    np.testing.assert_allclose(after["conv1.W"], before["conv1.W"] * (1 - 0.5 * 0.1), rtol=1e-15)
    np.testing.assert_allclose(after["fc.W"], before["fc.W"] * (1 - 0.5 * 0.1 * 0.5), rtol=1e-15)


def test_without_decay_mults_every_parameter_decays_as_before():
    net = _tiny()
    before = net["conv1"].params["b"].copy()
    opt = MomentumSGD(net, lr=0.1, weight_decay=0.5)
    for _, layer, key in net.named_params():
        layer.grads[key] = np.zeros_like(layer.params[key])
    opt.step()
    np.testing.assert_allclose(net["conv1"].params["b"], before * 0.95, rtol=1e-15)


def test_decay_mults_errors():
    net = _tiny()
    with pytest.raises(KeyMismatchError, match=r"decay_mults names unknown.*\['conv9.b'\]"):
        MomentumSGD(net, decay_mults={"conv9.b": 0.0})
    with pytest.raises(ValueError, match="decay_mults must be finite numbers >= 0"):
        MomentumSGD(net, decay_mults={"fc.W": -1.0})


# -- the conv-local CIFAR-10 nets (section 3.3) ----------------------------------------------
def test_conv_local_nets_differ_only_by_lrn():
    plain, normed = cifar_conv_local_spec(lrn=False), cifar_conv_local_spec(lrn=True)
    assert [r for r in normed if r[1] != "lrn"] == plain
    lrns = [(n, a) for n, k, a in normed if k == "lrn"]
    assert [n for n, _ in lrns] == ["norm1", "norm2"]
    assert all(a == CONV_LOCAL_LRN for _, a in lrns)
    assert CONV_LOCAL_LRN == dict(n=5, k=1.0, alpha=pytest.approx(0.001 / 5), beta=0.75)
    assert names(normed).index("norm1") == names(normed).index("relu1") + 1   # ReLU, LRN, pool
    stds = {n: a["weight_std"] for n, k, a in plain if "weight_std" in a}
    assert stds == {"conv1": 1e-4, "conv2": 0.01, "local3": 0.04, "local4": 0.04, "fc10": 0.01}


def test_conv_local_net_trains_a_step_and_its_recipe_names_its_layers(rng):
    net = build_model("cifar_conv_local_11pct")
    assert net.shapes()[-1] == (10,)
    assert net.num_params() == 808_138
    from numpy_alexnet import SoftmaxCrossEntropy
    x = rng.standard_normal((4, 3, 24, 24)).astype(np.float32) * 50
    crit = SoftmaxCrossEntropy()
    opt = MomentumSGD(net, lr=CONV_LOCAL_RECIPE["lr_weights"],
                      weight_decay=CONV_LOCAL_RECIPE["weight_decay"],
                      decay_mults=CONV_LOCAL_RECIPE["decay_mults"])
    w0 = net["local3"].params["W"].copy()
    crit.forward(net.forward(x), np.array([0, 1, 2, 3]))
    net.backward(crit.backward())
    opt.step()
    assert not np.array_equal(net["local3"].params["W"], w0)


def test_a_net_with_local_and_lrn_layers_passes_a_whole_net_gradient_check(rng):
    spec = [("conv1", "conv", dict(in_channels=3, out_channels=4, kernel_size=3, padding=1,
                                   weight_std=0.5)),
            ("relu1", "relu", {}),
            ("norm1", "lrn", dict(CONV_LOCAL_LRN, alpha=0.2)),
            ("pool1", "maxpool", dict(kernel_size=3, stride=2)),
            ("local2", "local", dict(in_channels=4, out_channels=3, kernel_size=3, padding=1,
                                     stride=2, input_size=(4, 3), weight_std=0.5)),
            ("flatten", "flatten", {}),
            ("fc", "linear", dict(in_features=3 * 2 * 2, out_features=3, weight_std=0.5))]
    net = build(spec, (3, 9, 8), seed=3, dtype=np.float64)
    x = rng.standard_normal((2, 3, 9, 8))
    errors = check_net(net, x, np.array([0, 2]))
    print(errors)
    assert max(errors.values()) < 1e-7, errors
