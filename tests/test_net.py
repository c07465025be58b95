"""Sequential, the models as data, the optimizer, errors, and the CLI summary."""
import numpy as np
import pytest

from numpy_alexnet import LayerInputError, MomentumSGD, SoftmaxCrossEntropy, alexnet, cifar_fig1
from numpy_alexnet.cli import main
from numpy_alexnet.gradcheck import check_net
from numpy_alexnet.models import build

# A tiny net with AlexNet's shape: strided conv, LRN, overlapping pools, grouped
# convolutions, a conv that crosses the towers, dropout, fully connected layers.
TINY_ALEXNET = [
    ("conv1", "conv", dict(in_channels=3, out_channels=4, kernel_size=5, stride=2, padding=1,
                           weight_std=0.3)),
    ("relu1", "relu", {}),
    ("norm1", "lrn", dict(n=3, k=1.0, alpha=0.3, beta=0.75)),
    ("pool1", "maxpool", dict(kernel_size=3, stride=2)),
    ("conv2", "conv", dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2,
                           weight_std=0.3, bias=0.1)),
    ("relu2", "relu", {}),
    ("norm2", "lrn", dict(n=5, k=2.0, alpha=0.5, beta=0.75)),
    ("conv3", "conv", dict(in_channels=6, out_channels=4, kernel_size=3, padding=1,
                           weight_std=0.3)),
    ("relu3", "relu", {}),
    ("conv4", "conv", dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=2,
                           weight_std=0.3, bias=0.1)),
    ("relu4", "relu", {}),
    ("pool5", "maxpool", dict(kernel_size=3, stride=2)),
    ("flatten", "flatten", {}),
    ("fc6", "linear", dict(in_features=4 * 2 * 1, out_features=7, weight_std=0.3, bias=0.1)),
    ("relu6", "relu", {}),
    ("drop6", "dropout", dict(rate=0.5)),
    ("fc8", "linear", dict(in_features=7, out_features=3, weight_std=0.3)),
]


def test_whole_tiny_alexnet_gradients(rng):
    net = build(TINY_ALEXNET, (3, 23, 17), seed=3, dtype=np.float64)
    assert net.shapes()[3] == (4, 5, 3)          # pool1 output: H != W carried through
    x = rng.standard_normal((2, 3, 23, 17))
    errors = check_net(net, x, np.array([0, 2]))
    worst = max(errors, key=errors.get)
    print(f"worst: {worst} {errors[worst]:.2e}")
    assert all(err < 1e-7 for err in errors.values()), errors


def test_alexnet_shapes_and_parameters():
    net = alexnet()
    shapes = {layer.name: s for layer, s in zip(net, net.shapes())}
    expected = {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27),
                "pool2": (256, 13, 13), "conv3": (384, 13, 13), "conv4": (384, 13, 13),
                "conv5": (256, 13, 13), "pool5": (256, 6, 6), "fc6": (4096,), "fc7": (4096,),
                "fc8": (1000,)}
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    assert net.num_params() == 60_965_224
    per_layer = {l.name: l.num_params() for l in net if l.params}
    assert per_layer == {"conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936,
                         "conv5": 442_624, "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}


def test_alexnet_init_follows_the_paper():
    net = alexnet(num_classes=10)
    for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
        assert np.all(net[name].params["b"] == 1.0), name
    for name in ("conv1", "conv3", "fc8"):
        assert np.all(net[name].params["b"] == 0.0), name
    assert abs(net["fc6"].params["W"].std() - 0.01) < 1e-4
    assert net["conv1"].params["W"].dtype == np.float32


def test_alexnet_forward_runs_on_one_image():
    net = alexnet(num_classes=10)
    x = np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32)
    out = net.forward(x, train=False)
    assert out.shape == (1, 10) and out.dtype == np.float32 and np.all(np.isfinite(out))


def test_inference_is_the_default_mode():
    """net(x) and net.forward(x) without train= use every unit (the paper's test mode)."""
    net = alexnet(num_classes=10)
    x = np.random.default_rng(0).standard_normal((2, 3, 227, 227)).astype(np.float32)
    test_mode = net.forward(x, train=False)
    np.testing.assert_array_equal(net(x), test_mode)            # twice: no random drops
    np.testing.assert_array_equal(net.forward(x), test_mode)
    assert not np.array_equal(net.forward(x, train=True), test_mode)


def test_backward_after_a_default_forward_says_to_pass_train(rng):
    """Training with the default (test) mode would silently skip dropout: refused."""
    net = build(TINY_ALEXNET, input_shape=(3, 23, 17), seed=0, dtype=np.float64)
    crit = SoftmaxCrossEntropy()
    crit.forward(net(rng.standard_normal((2, 3, 23, 17))), np.array([0, 2]))
    with pytest.raises(RuntimeError, match=r"Dropout 'drop6'.*test-time forward.*train=True"):
        net.backward(crit.backward())


def test_two_tower_net_defaults_to_inference_too():
    from numpy_alexnet.towers import two_tower_alexnet
    net = two_tower_alexnet(num_classes=10, seed=0)
    x = np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32)
    np.testing.assert_array_equal(net(x), net.forward(x, train=False))


def test_summary_command(capsys):
    assert main(["summary", "alexnet"]) == 0
    text = capsys.readouterr().out
    for shape in ["55x55x96", "27x27x96", "27x27x256", "13x13x256", "13x13x384", "6x6x256"]:
        assert shape in text
    assert "Total parameters: 60,965,224" in text


def test_same_seed_same_weights_different_seed_different():
    a, b, c = cifar_fig1(seed=5), cifar_fig1(seed=5), cifar_fig1(seed=6)
    for name, layer, key in a.named_params():
        np.testing.assert_array_equal(layer.params[key], b[layer.name].params[key])
    assert not np.array_equal(a["conv2"].params["W"], c["conv2"].params["W"])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fig1_net_fits_a_small_fixed_batch(activation):
    """Training error goes to zero on 16 fixed examples: forward, backward and
    the optimizer work together.  (lr 0.01: at 0.02 the ReLU run was on the edge
    of stability and its end depended on the BLAS thread count's rounding.)"""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    net = cifar_fig1(activation, seed=0, weight_stds=(0.05, 0.05, 0.05, 0.05))
    crit = SoftmaxCrossEntropy()
    opt = MomentumSGD(net, lr=0.01, momentum=0.9, weight_decay=0.0)
    first = None
    for step in range(150):
        loss = crit.forward(net.forward(x, train=True), y)
        first = loss if first is None else first
        net.backward(crit.backward())
        opt.step()
    error = np.mean(net.forward(x, train=False).argmax(1) != y)
    print(f"{activation}: loss {first:.3f} -> {loss:.4f}, training error {error:.2f}")
    assert error == 0.0 and loss < 0.05 * first


def test_momentum_sgd_is_the_papers_rule():
    net = build([("fc", "linear", dict(in_features=2, out_features=1))], (2,), seed=0,
                dtype=np.float64)
    w0 = net["fc"].params["W"].copy()
    opt = MomentumSGD(net, lr=0.1, momentum=0.9, weight_decay=0.5)
    v = np.zeros_like(w0)
    w = w0.copy()
    for g in (np.array([[1.0], [2.0]]), np.array([[-3.0], [0.5]])):
        net["fc"].grads["W"] = g
        net["fc"].grads["b"] = np.zeros(1)
        opt.step()
        v = 0.9 * v - 0.5 * 0.1 * w - 0.1 * g      # v <- mu v - wd eps w - eps g
        w = w + v
    np.testing.assert_allclose(net["fc"].params["W"], w, rtol=1e-15)
    assert opt.velocity["fc.W"] is not None and opt.steps == 2


def test_frozen_layer_does_not_move():
    net = cifar_fig1(seed=0)
    opt = MomentumSGD(net, lr=0.1, lr_mults={"conv1": 0.0})
    before = net["conv1"].params["W"].copy()
    crit = SoftmaxCrossEntropy()
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    crit.forward(net.forward(x, train=True), np.array([0, 1, 2, 3]))
    net.backward(crit.backward())
    opt.step()
    np.testing.assert_array_equal(net["conv1"].params["W"], before)
    with pytest.raises(KeyError, match="conv9"):
        MomentumSGD(net, lr_mults={"conv9": 0.5})


def test_a_parameter_rate_wins_over_its_layers():
    """cuda-convnet's biases learn at twice their weights' rate: lr_mults by parameter name."""
    net = build([("fc", "linear", dict(in_features=2, out_features=1))], (2,), seed=0,
                dtype=np.float64)
    w0, b0 = net["fc"].params["W"].copy(), net["fc"].params["b"].copy()
    opt = MomentumSGD(net, lr=0.1, momentum=0.0, weight_decay=0.0,
                      lr_mults={"fc": 0.5, "fc.b": 2.0})
    net["fc"].grads["W"], net["fc"].grads["b"] = np.ones((2, 1)), np.ones(1)
    opt.step()
    np.testing.assert_allclose(net["fc"].params["W"], w0 - 0.05, rtol=1e-15)    # the layer's 0.5
    np.testing.assert_allclose(net["fc"].params["b"], b0 - 0.2, rtol=1e-15)     # its own 2.0
    with pytest.raises(KeyError, match=r"lr_mults names unknown layers or parameters \['fc.c'\]"):
        MomentumSGD(net, lr_mults={"fc.c": 2.0})


def test_state_dict_roundtrip_and_mismatch():
    a, b = cifar_fig1(seed=1), cifar_fig1(seed=2)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a["fc10"].params["W"], b["fc10"].params["W"])
    bad = a.state_dict()
    bad["fc10.W"] = np.zeros((3, 3), np.float32)
    before = b["conv1"].params["W"].copy()
    with pytest.raises(ValueError, match=r"fc10\.W.*\(576, 10\).*\(3, 3\)"):
        b.load_state_dict(bad)
    np.testing.assert_array_equal(b["conv1"].params["W"], before)   # nothing half-loaded


# -- wrong input gets an error naming the layer, the expected and the received ----------
def test_wrong_channel_count_names_layer():
    net = cifar_fig1()
    x = np.zeros((2, 4, 32, 32), np.float32)
    with pytest.raises(ValueError, match=r"expected \(N, 3, 32, 32\), got \(2, 4, 32, 32\)"):
        net.forward(x)
    with pytest.raises(LayerInputError, match=r"Conv2D 'conv1'.*expected 3 channels.*got 4"):
        net["conv1"].forward(x)


def test_wrong_rank_and_dtype_name_layer():
    net = cifar_fig1()
    with pytest.raises(LayerInputError, match=r"Conv2D 'conv1': input shape: expected 4-d"):
        net["conv1"].forward(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(LayerInputError, match=r"Conv2D 'conv1': input dtype: expected float32.*float64"):
        net.forward(np.zeros((1, 3, 32, 32), np.float64))
    with pytest.raises(LayerInputError, match=r"input dtype: expected a floating.*uint8"):
        net.forward(np.zeros((1, 3, 32, 32), np.uint8))
    with pytest.raises(LayerInputError, match=r"Linear 'fc10'.*expected 576 channels.*got 100"):
        net["fc10"].forward(np.zeros((2, 100), np.float32))


def test_too_small_input_names_layer():
    from numpy_alexnet.layers import MaxPool2D
    pool = MaxPool2D(kernel_size=3, stride=2, name="pool1")
    with pytest.raises(LayerInputError, match=r"MaxPool2D 'pool1'.*at least 3x3.*got 2x5"):
        pool.forward(np.zeros((1, 1, 2, 5), np.float32))


def test_bad_labels_name_the_loss():
    crit = SoftmaxCrossEntropy(name="loss")
    logits = np.zeros((2, 10), np.float32)
    with pytest.raises(LayerInputError, match=r"'loss'.*expected 0 <= label < 10, got 10"):
        crit.forward(logits, np.array([1, 10]))
    with pytest.raises(LayerInputError, match=r"'loss'.*expected 0 <= label < 10, got -1"):
        crit.forward(logits, np.array([-1, 0]))
    with pytest.raises(LayerInputError, match=r"labels shape: expected \(2,\).*\(3,\)"):
        crit.forward(logits, np.array([1, 2, 3]))
    with pytest.raises(LayerInputError, match=r"labels dtype: expected integers"):
        crit.forward(logits, np.array([1.0, 2.0]))


def test_importing_needs_neither_cupy_nor_numba():
    import subprocess
    import sys
    code = ("import sys; import numpy_alexnet; from numpy_alexnet.models import alexnet; "
            "alexnet(num_classes=2); "
            "bad = [m for m in ('cupy', 'numba') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torchvision_variant_is_a_different_network():
    from numpy_alexnet.models import alexnet_torchvision
    net = alexnet_torchvision()
    assert net.num_params() == 61_100_840
    assert net.shapes()[-1] == (1000,) and net.input_shape == (3, 224, 224)
    assert not any(type(l).__name__ == "LocalResponseNorm" for l in net)


def test_build_rejects_a_spec_whose_shapes_do_not_chain():
    spec = [("conv1", "conv", dict(in_channels=3, out_channels=4, kernel_size=3)),
            ("flatten", "flatten", {}),
            ("fc", "linear", dict(in_features=99, out_features=2))]
    with pytest.raises(LayerInputError, match=r"Linear 'fc'.*expected \(99,\).*got \(144,\)"):
        build(spec, (3, 8, 8))
    with pytest.raises(LayerInputError, match=r"Conv2D 'conv1'.*expected \(3, H, W\).*got \(1, 8, 8\)"):
        build(spec, (1, 8, 8))


def test_backward_without_input_grad_gives_the_same_parameter_gradients(rng):
    """Training skips conv1's dx (``input_grad=False``); every parameter gradient is unchanged."""
    net = cifar_fig1(seed=3, dtype=np.float64)
    x = rng.standard_normal((4, 3, 32, 32))
    y = np.array([0, 3, 7, 9])
    crit = SoftmaxCrossEntropy()
    grads = []
    for input_grad in (True, False):
        crit.forward(net.forward(x), y)
        dx = net.backward(crit.backward(), input_grad=input_grad)
        assert (dx is None) == (not input_grad)
        grads.append({name: layer.grads[key].copy() for name, layer, key in net.named_params()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        np.testing.assert_array_equal(grads[0][name], grads[1][name], err_msg=name)
