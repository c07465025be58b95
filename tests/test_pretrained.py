"""Pretrained weights: layouts in and out, logits against independent code, fine-tuning.

Every weight file here is made by the test itself (random arrays of the right
shapes).  The bvlc layout is checked against a framework-free forward pass
written in TensorFlow's terms (NHWC activations, (KH, KW, C/G, F) kernels,
NHWC flatten before fc6) with naive loops, on a small two-tower net whose
pool5 output is 2x3 (so the fc6 flatten order matters and H != W); the full
AlexNet is checked against PyTorch where it is installed.
"""
import pickle
import sys
from fractions import Fraction

import numpy as np
import pytest

from numpy_alexnet import finetune as F
from numpy_alexnet import pretrained as P
from numpy_alexnet.models import alexnet_torchvision_spec, build, cifar_fig1
from numpy_alexnet.optim import MomentumSGD
from oracles import lrn_naive, pool_naive

LRN = dict(n=3, k=2.0, alpha=0.05, beta=0.75)      # a large alpha, so LRN really acts


def tiny_two_tower_spec(num_classes=7):
    """AlexNet's shape in miniature: groups=2 in conv2, conv4, conv5; LRN; paper-mode dropout.

    Input (3, 23, 31): conv1 -> 11x15, pool1 -> 5x7, conv2..5 keep 5x7, pool5 -> 2x3,
    so fc6 sees 8 x 2 x 3 inputs in an order that differs between (C, H, W) and (H, W, C).
    """
    pool = dict(kernel_size=3, stride=2)
    return [
        ("conv1", "conv", dict(in_channels=3, out_channels=6, kernel_size=3, stride=2, weight_std=0.3)),
        ("relu1", "relu", {}),
        ("norm1", "lrn", LRN),
        ("pool1", "maxpool", pool),
        ("conv2", "conv", dict(in_channels=6, out_channels=8, kernel_size=3, padding=1, groups=2,
                               weight_std=0.3, bias=0.1)),
        ("relu2", "relu", {}),
        ("conv3", "conv", dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, weight_std=0.3)),
        ("relu3", "relu", {}),
        ("conv4", "conv", dict(in_channels=8, out_channels=10, kernel_size=3, padding=1, groups=2,
                               weight_std=0.3, bias=0.1)),
        ("relu4", "relu", {}),
        ("conv5", "conv", dict(in_channels=10, out_channels=8, kernel_size=(3, 3), padding=1,
                               groups=2, weight_std=0.3, bias=0.1)),
        ("relu5", "relu", {}),
        ("pool5", "maxpool", pool),
        ("flatten", "flatten", {}),
        ("fc6", "linear", dict(in_features=8 * 2 * 3, out_features=12, weight_std=0.3, bias=0.1)),
        ("relu6", "relu", {}),
        ("drop6", "dropout", dict(rate=0.5)),
        ("fc7", "linear", dict(in_features=12, out_features=12, weight_std=0.3, bias=0.1)),
        ("relu7", "relu", {}),
        ("drop7", "dropout", dict(rate=0.5)),
        ("fc8", "linear", dict(in_features=12, out_features=num_classes, weight_std=0.3)),
    ]


def tiny_net(seed=0, dropout_mode="paper"):
    return build(tiny_two_tower_spec(), (3, 23, 31), seed=seed, dtype=np.float64,
                 dropout_mode=dropout_mode, name="tiny")


def random_bvlc(rng, shapes: dict, dtype=np.float64) -> dict:
    """{'conv1': [W, b], ...} of random arrays with the given (W shape, b shape)."""
    return {name: [rng.standard_normal(ws, dtype=dtype), rng.standard_normal(bs, dtype=dtype)]
            for name, (ws, bs) in shapes.items()}


TINY_BVLC_SHAPES = {
    "conv1": ((3, 3, 3, 6), (6,)), "conv2": ((3, 3, 3, 8), (8,)), "conv3": ((3, 3, 8, 8), (8,)),
    "conv4": ((3, 3, 4, 10), (10,)), "conv5": ((3, 3, 5, 8), (8,)),
    "fc6": ((48, 12), (12,)), "fc7": ((12, 12), (12,)), "fc8": ((12, 7), (7,)),
}
ALEXNET_BVLC_SHAPES = {
    "conv1": ((11, 11, 3, 96), (96,)), "conv2": ((5, 5, 48, 256), (256,)),
    "conv3": ((3, 3, 256, 384), (384,)), "conv4": ((3, 3, 192, 384), (384,)),
    "conv5": ((3, 3, 192, 256), (256,)), "fc6": ((9216, 4096), (4096,)),
    "fc7": ((4096, 4096), (4096,)), "fc8": ((4096, 1000), (1000,)),
}


# --------------------------------------------------------------------------- #
# An independent forward pass in TensorFlow's terms, with loops
# --------------------------------------------------------------------------- #
def conv_nhwc_loops(x, W, b, stride, pad, groups):
    """x (N, H, W, C), W (KH, KW, C/G, F) as TensorFlow holds them: the group g of the
    output channels sees only the input channels of group g (tf.split along C)."""
    N, H, Wd, C = x.shape
    KH, KW, Cg, F = W.shape
    Fg = F // groups
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    Ho, Wo = (H + 2 * pad - KH) // stride + 1, (Wd + 2 * pad - KW) // stride + 1
    out = np.zeros((N, Ho, Wo, F))
    for i in range(Ho):
        for j in range(Wo):
            patch = x[:, i * stride:i * stride + KH, j * stride:j * stride + KW, :]   # (N, KH, KW, C)
            for g in range(groups):
                pg = patch[..., g * Cg:(g + 1) * Cg]                                  # (N, KH, KW, Cg)
                wg = W[..., g * Fg:(g + 1) * Fg]                                      # (KH, KW, Cg, Fg)
                for f in range(Fg):
                    out[:, i, j, g * Fg + f] = (pg * wg[..., f]).sum(axis=(1, 2, 3))
    return out + b


def nchw(x):
    return x.transpose(0, 3, 1, 2)      # (N, H, W, C) -> (N, C, H, W), for the NCHW oracles


def nhwc(x):
    return x.transpose(0, 2, 3, 1)      # (N, C, H, W) -> (N, H, W, C)


def tiny_forward_tf(weights, x_nchw):
    """The tiny net's test-time logits from bvlc-layout weights, as a TF port computes them.

    Dropout at test time is the identity (TensorFlow's inverted dropout).
    """
    relu = lambda a: np.maximum(a, 0)                                   # noqa: E731
    x = nhwc(x_nchw)
    x = relu(conv_nhwc_loops(x, *weights["conv1"], 2, 0, 1))
    x = nhwc(lrn_naive(nchw(x), **LRN))
    x = nhwc(pool_naive(nchw(x), 3, 2, np.max))
    x = relu(conv_nhwc_loops(x, *weights["conv2"], 1, 1, 2))
    x = relu(conv_nhwc_loops(x, *weights["conv3"], 1, 1, 1))
    x = relu(conv_nhwc_loops(x, *weights["conv4"], 1, 1, 2))
    x = relu(conv_nhwc_loops(x, *weights["conv5"], 1, 1, 2))
    x = nhwc(pool_naive(nchw(x), 3, 2, np.max))                         # (N, 2, 3, 8)
    x = x.reshape(len(x), -1)                                           # TF's flatten: (H, W, C)
    x = relu(x @ weights["fc6"][0] + weights["fc6"][1])
    x = relu(x @ weights["fc7"][0] + weights["fc7"][1])
    return x @ weights["fc8"][0] + weights["fc8"][1]


@pytest.fixture
def tiny_weights(rng):
    return random_bvlc(rng, TINY_BVLC_SHAPES)


@pytest.fixture
def tiny_input(rng):
    return rng.standard_normal((2, 3, 23, 31))


@pytest.mark.parametrize("dropout_mode", ["paper", "inverted"])
def test_bvlc_logits_match_tf_style_loops(tiny_weights, tiny_input, dropout_mode):
    """Grouped convs, the (H, W, C) fc6 rows and the dropout convention all converted."""
    net = P.load_bvlc(tiny_weights, tiny_net(seed=5, dropout_mode=dropout_mode))
    ours = net.forward(tiny_input, train=False)
    ref = tiny_forward_tf(tiny_weights, tiny_input)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_fc6_flatten_order_is_the_trap(tiny_weights, tiny_input):
    """Copying fc6's rows as they are (no (H, W, C) -> (C, H, W) permutation) gives other logits."""
    net = P.load_bvlc(tiny_weights, tiny_net(dropout_mode="inverted"))
    good = net.forward(tiny_input, train=False)
    net["fc6"].params["W"] = tiny_weights["fc6"][0].copy()             # the classic mistake
    wrong = net.forward(tiny_input, train=False)
    assert np.abs(wrong - good).max() > 1e-3 * np.abs(good).max()
    np.testing.assert_allclose(good, tiny_forward_tf(tiny_weights, tiny_input), rtol=1e-10, atol=1e-10)


def test_fc6_rows_permuted_exactly():
    """Row (h, w, c) of the bvlc fc6 becomes row (c, h, w) of ours: check with labelled rows."""
    net = tiny_net(dropout_mode="inverted")
    C, H, W = 8, 2, 3
    weights = {n: [np.zeros(ws), np.zeros(bs)] for n, (ws, bs) in TINY_BVLC_SHAPES.items()}
    h, w, c = np.meshgrid(np.arange(H), np.arange(W), np.arange(C), indexing="ij")
    label = (100 * c + 10 * h + w).reshape(-1)                   # rows in (H, W, C) order
    weights["fc6"][0] = np.repeat(label[:, None], 12, axis=1).astype(np.float64)
    P.load_bvlc(weights, net)
    c, h, w = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
    expected = (100 * c + 10 * h + w).reshape(-1)                # our rows: (C, H, W) order
    np.testing.assert_array_equal(net["fc6"].params["W"][:, 0], expected)


def test_bvlc_roundtrip_tiny_via_file(tmp_path, tiny_weights):
    """File -> network -> file gives back the same arrays, with paper-mode dropout folded."""
    for key_type, seq in [(str, list), (bytes, tuple)]:
        obj = {(k.encode() if key_type is bytes else k): seq(v) for k, v in tiny_weights.items()}
        path = tmp_path / f"w_{key_type.__name__}.npy"
        np.save(path, obj, allow_pickle=True)
        net = P.load_bvlc(path, tiny_net(seed=3))              # paper-mode dropout
        out = tmp_path / "out.npy"
        P.save_bvlc(net, out)
        back = np.load(out, allow_pickle=True).item()
        assert list(back) == list(tiny_weights)
        for name, (W, b) in tiny_weights.items():
            np.testing.assert_array_equal(back[name][0], W)
            np.testing.assert_array_equal(back[name][1], b)


def test_bvlc_roundtrip_full_alexnet(tmp_path):
    """The real shapes: import into alexnet(), export, same float32 arrays; default net."""
    rng = np.random.default_rng(7)
    weights = random_bvlc(rng, ALEXNET_BVLC_SHAPES, dtype=np.float32)
    net = P.load_weights(weights)                              # detects the layout, builds alexnet
    assert net.name == "alexnet" and net["fc8"].out_features == 1000
    assert net["norm1"].k == 1.0 and net["drop6"].mode == "inverted"
    # conv1: our W[f, c, i, j] is the file's W[i, j, c, f]
    np.testing.assert_array_equal(net["conv1"].params["W"][5, 2, 3, 7], weights["conv1"][0][3, 7, 2, 5])
    back = P.to_bvlc(net)
    for name, (W, b) in weights.items():
        assert back[name][0].dtype == np.float32
        np.testing.assert_array_equal(back[name][0], W)
        np.testing.assert_array_equal(back[name][1], b)


# --------------------------------------------------------------------------- #
# torchvision layout
# --------------------------------------------------------------------------- #
def tiny_torchvision_spec():
    """torchvision's AlexNet in miniature: same layer names and order, single tower, no LRN,
    inverted dropout before fc6 and fc7.  Input (3, 39, 47): pool5 gives 1x2."""
    pool = dict(kernel_size=3, stride=2)
    return [
        ("conv1", "conv", dict(in_channels=3, out_channels=8, kernel_size=5, stride=2, padding=2,
                               weight_std=0.3)),
        ("relu1", "relu", {}), ("pool1", "maxpool", pool),
        ("conv2", "conv", dict(in_channels=8, out_channels=12, kernel_size=3, padding=1, weight_std=0.3)),
        ("relu2", "relu", {}), ("pool2", "maxpool", pool),
        ("conv3", "conv", dict(in_channels=12, out_channels=16, kernel_size=3, padding=1, weight_std=0.3)),
        ("relu3", "relu", {}),
        ("conv4", "conv", dict(in_channels=16, out_channels=12, kernel_size=3, padding=1, weight_std=0.3)),
        ("relu4", "relu", {}),
        ("conv5", "conv", dict(in_channels=12, out_channels=12, kernel_size=3, padding=1, weight_std=0.3)),
        ("relu5", "relu", {}), ("pool5", "maxpool", pool),
        ("flatten", "flatten", {}),
        ("drop6", "dropout", dict(rate=0.5, mode="inverted")),
        ("fc6", "linear", dict(in_features=12 * 1 * 2, out_features=20, weight_std=0.3)),
        ("relu6", "relu", {}),
        ("drop7", "dropout", dict(rate=0.5, mode="inverted")),
        ("fc7", "linear", dict(in_features=20, out_features=20, weight_std=0.3)),
        ("relu7", "relu", {}),
        ("fc8", "linear", dict(in_features=20, out_features=6, weight_std=0.3)),
    ]


def tiny_tv_net(seed=0):
    return build(tiny_torchvision_spec(), (3, 39, 47), seed=seed, dtype=np.float64, name="tiny_tv")


def random_torchvision(rng, net, dtype=np.float32) -> dict:
    """A random state dict with torchvision's keys and layouts for ``net``'s shapes."""
    out = {}
    for layer, _, _ in P._param_layers(net):
        module = P.TORCHVISION_KEYS[layer.name]
        W = layer.params["W"]
        shape = W.shape if W.ndim == 4 else W.shape[::-1]              # Linear: (D_out, D_in)
        out[f"{module}.weight"] = rng.standard_normal(shape, dtype=dtype)
        out[f"{module}.bias"] = rng.standard_normal(layer.params["b"].shape, dtype=dtype)
    return out


def test_torchvision_npz_roundtrip_without_torch(tmp_path):
    rng = np.random.default_rng(3)
    state = random_torchvision(rng, tiny_tv_net(), dtype=np.float64)
    path = tmp_path / "tv.npz"
    np.savez(path, **state)
    net = P.load_weights(path, net=tiny_tv_net(seed=1))
    np.testing.assert_array_equal(net["fc6"].params["W"], state["classifier.1.weight"].T)
    np.testing.assert_array_equal(net["conv2"].params["W"], state["features.3.weight"])
    out = tmp_path / "back.npz"
    P.save_torchvision(net, out)
    with np.load(out) as z:
        assert sorted(z.files) == sorted(state)
        for k, v in state.items():
            np.testing.assert_array_equal(z[k], v)


def test_paper_alexnet_is_refused_by_the_torchvision_export(tmp_path):
    """The grouped paper net has no torchvision layout: a clear error, and no file."""
    from numpy_alexnet.models import alexnet
    with pytest.raises(P.WeightsError, match=r"(?s)alexnet: cannot export to torchvision.*"
                       r"grouped convolutions conv2 \(groups=2\), conv4 \(groups=2\), "
                       r"conv5 \(groups=2\).*local response normalization norm1, norm2.*"
                       r"alexnet_torchvision\(\)"):
        P.save_torchvision(alexnet(num_classes=10), tmp_path / "paper.npz")
    assert not (tmp_path / "paper.npz").exists()


def test_torchvision_default_net_is_the_single_tower_one():
    """A state dict of the real shapes builds alexnet_torchvision with the file's classes."""
    rng, state = np.random.default_rng(0), {}
    for name, kind, a in alexnet_torchvision_spec(num_classes=10):      # shapes, no network
        if kind in ("conv", "linear"):
            k = a.get("kernel_size")
            shape = ((a["out_channels"], a["in_channels"], k, k) if kind == "conv"
                     else (a["out_features"], a["in_features"]))    # torchvision's layouts
            state[f"{P.TORCHVISION_KEYS[name]}.weight"] = rng.standard_normal(shape, dtype=np.float32)
            state[f"{P.TORCHVISION_KEYS[name]}.bias"] = np.zeros(shape[0], np.float32)
    net = P.load_torchvision(state)
    assert net.name == "alexnet_torchvision" and net["fc8"].out_features == 10
    assert net["conv1"].params["W"].shape == (64, 3, 11, 11)


def test_own_layout_and_trainer_checkpoint(tmp_path):
    a = cifar_fig1("relu", num_classes=5, seed=1)
    P.save_state(a, tmp_path / "own.npz")
    b = P.load_weights(tmp_path / "own.npz", model="cifar_fig1")
    assert b["fc10"].out_features == 5
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    # The trainer's checkpoint keeps the parameters as 'param/<layer.key>' next to other entries.
    arrays = {f"param/{k}": v for k, v in a.state_dict().items()}
    arrays.update({f"velocity/{k}": np.zeros_like(v) for k, v in a.state_dict().items()})
    arrays["meta"] = np.array('{"format_version": 1}')
    np.savez(tmp_path / "ckpt.npz", **arrays)
    c = P.load_weights(tmp_path / "ckpt.npz", net=cifar_fig1("relu", num_classes=5, seed=2))
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(c.state_dict()[k], v)


# --------------------------------------------------------------------------- #
# PyTorch as the independent computation, where installed
# --------------------------------------------------------------------------- #
def torch_paper_alexnet(torch, weights, lrn):
    """The paper's two-tower AlexNet in torch.nn from bvlc-layout weights (TF's flatten order)."""
    nn = torch.nn
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))                   # noqa: E731
    convs = [("conv1", 3, 96, 11, 4, 0, 1), ("conv2", 96, 256, 5, 1, 2, 2),
             ("conv3", 256, 384, 3, 1, 1, 1), ("conv4", 384, 384, 3, 1, 1, 2),
             ("conv5", 384, 256, 3, 1, 1, 2)]
    mods = {}
    for name, cin, cout, k, s, p, g in convs:
        m = nn.Conv2d(cin, cout, k, s, p, groups=g)
        m.weight.data = t(weights[name][0]).permute(3, 2, 0, 1).contiguous()   # TF -> (F, Cg, KH, KW)
        m.bias.data = t(weights[name][1])
        mods[name] = m
    norm = nn.LocalResponseNorm(lrn["n"], alpha=lrn["alpha"] * lrn["n"], beta=lrn["beta"], k=lrn["k"])
    pool = nn.MaxPool2d(3, 2)

    def forward(x):
        x = pool(norm(torch.relu(mods["conv1"](x))))
        x = pool(norm(torch.relu(mods["conv2"](x))))
        x = torch.relu(mods["conv3"](x))
        x = torch.relu(mods["conv4"](x))
        x = pool(torch.relu(mods["conv5"](x)))                  # (N, 256, 6, 6)
        x = x.permute(0, 2, 3, 1).reshape(len(x), -1)           # TF's (H, W, C) flatten
        x = torch.relu(x @ t(weights["fc6"][0]) + t(weights["fc6"][1]))
        x = torch.relu(x @ t(weights["fc7"][0]) + t(weights["fc7"][1]))
        return x @ t(weights["fc8"][0]) + t(weights["fc8"][1])
    return forward


def test_bvlc_alexnet_logits_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    shapes = dict(ALEXNET_BVLC_SHAPES, fc8=((4096, 20), (20,)))
    weights = random_bvlc(rng, shapes, dtype=np.float32)
    for name, (W, b) in weights.items():                  # keep activations O(1)
        fan_in = np.prod(W.shape[:-1])
        W *= np.float32(1.5 / np.sqrt(fan_in))
        b *= np.float32(0.1)
    x = (rng.standard_normal((2, 3, 227, 227)) * 50).astype(np.float32)
    net = P.load_bvlc(weights)                             # alexnet, Caffe's LRN, inverted dropout
    ours = net.forward(x, train=False)
    with torch.no_grad():
        ref = torch_paper_alexnet(torch, weights, P.CAFFE_LRN)(torch.from_numpy(x)).numpy()
    scale = np.abs(ref).max()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * scale)


def torchvision_module(torch, spec):
    """torchvision.models.alexnet's module structure for ``spec`` (features.N, classifier.N),
    so its state dict has torchvision's keys."""
    nn = torch.nn
    rows = {name: args for name, _, args in spec}
    conv = lambda n: nn.Conv2d(rows[n]["in_channels"], rows[n]["out_channels"],  # noqa: E731
                               rows[n]["kernel_size"], rows[n].get("stride", 1),
                               rows[n].get("padding", 0))
    lin = lambda n: nn.Linear(rows[n]["in_features"], rows[n]["out_features"])  # noqa: E731
    model = nn.Module()
    model.features = nn.Sequential(
        conv("conv1"), nn.ReLU(), nn.MaxPool2d(3, 2), conv("conv2"), nn.ReLU(), nn.MaxPool2d(3, 2),
        conv("conv3"), nn.ReLU(), conv("conv4"), nn.ReLU(), conv("conv5"), nn.ReLU(),
        nn.MaxPool2d(3, 2))
    model.classifier = nn.Sequential(nn.Dropout(0.5), lin("fc6"), nn.ReLU(), nn.Dropout(0.5),
                                     lin("fc7"), nn.ReLU(), lin("fc8"))
    model.forward = lambda x: model.classifier(torch.flatten(model.features(x), 1))
    return model.double().eval()


def test_torchvision_pth_logits_and_export_match_torch(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torchvision_module(torch, tiny_torchvision_spec())
    path = tmp_path / "alexnet.pth"
    torch.save(model.state_dict(), path)
    x = np.random.default_rng(2).standard_normal((2, 3, 39, 47))
    net = P.load_weights(path, net=tiny_tv_net(seed=4))               # the torchvision layout
    ours = net.forward(x, train=False)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    # Export: the file opens in PyTorch (strict key match) with the same tensors.
    out = tmp_path / "back.pth"
    P.save_torchvision(net, out)
    model2 = torchvision_module(torch, tiny_torchvision_spec())
    model2.load_state_dict(torch.load(out, weights_only=True))
    for (k, v), (k2, v2) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


# --------------------------------------------------------------------------- #
# Mismatched files: a clear error, and nothing half-loaded
# --------------------------------------------------------------------------- #
def test_wrong_shape_names_layer_and_both_shapes_and_loads_nothing(tmp_path, tiny_weights):
    net = tiny_net(seed=1, dropout_mode="inverted")
    before = {k: v.copy() for k, v in net.state_dict().items()}
    tiny_weights["conv2"][0] = np.zeros((3, 3, 6, 8))                    # in, not in/groups
    path = tmp_path / "bad.npy"
    np.save(path, tiny_weights, allow_pickle=True)
    with pytest.raises(P.WeightsError) as err:
        P.load_bvlc(path, net)
    msg = str(err.value)
    assert "bad.npy" in msg and "conv2" in msg
    assert "(3, 3, 6, 8)" in msg and "(3, 3, 3, 8)" in msg and "(kh, kw, in/groups, out)" in msg
    for k, v in net.state_dict().items():                              # conv1 was fine: untouched
        np.testing.assert_array_equal(v, before[k])


def test_missing_and_unknown_layers(tiny_weights):
    net = tiny_net(dropout_mode="inverted")
    del tiny_weights["fc8"]
    with pytest.raises(P.WeightsError, match=r"fc8.*missing.*skip"):
        P.load_bvlc(tiny_weights, net)
    P.load_bvlc(tiny_weights, net, skip=["fc8"])                       # the TF ports' SKIP_LAYER
    tiny_weights["fc9"] = [np.zeros((12, 7)), np.zeros(7)]
    with pytest.raises(P.WeightsError, match="fc9"):
        P.load_bvlc(tiny_weights, net, skip=["fc8"])


def test_skip_leaves_layer_and_loads_the_rest(tiny_weights):
    net = tiny_net(seed=4, dropout_mode="inverted")
    fc8 = net["fc8"].params["W"].copy()
    tiny_weights["fc8"] = [np.zeros((12, 3)), np.zeros(3)]                # 3 classes: wrong size
    P.load_bvlc(tiny_weights, net, skip=("fc8",))
    np.testing.assert_array_equal(net["fc8"].params["W"], fc8)
    np.testing.assert_array_equal(net["fc7"].params["W"], tiny_weights["fc7"][0])


def test_torchvision_wrong_shape_message():
    net = tiny_tv_net()
    state = random_torchvision(np.random.default_rng(0), net)
    state["features.3.weight"] = np.zeros((12, 4, 3, 3), np.float32)
    with pytest.raises(P.WeightsError) as err:
        P.load_torchvision(state, net)
    msg = str(err.value)
    assert "conv2" in msg and "features.3.weight" in msg
    assert "(12, 4, 3, 3)" in msg and "(12, 8, 3, 3)" in msg
    state = random_torchvision(np.random.default_rng(0), net)
    with pytest.raises(P.WeightsError, match="lacks"):                # not a torchvision net
        P.load_torchvision(state, cifar_fig1("relu"))


def test_unknown_layout_lists_the_understood_ones(tmp_path):
    np.savez(tmp_path / "x.npz", foo=np.zeros(3), bar=np.ones(2))
    with pytest.raises(P.WeightsError, match="understood layouts: 'bvlc'.*'torchvision'.*'numpy-alexnet'"):
        P.load_weights(tmp_path / "x.npz", model="cifar_fig1")
    np.save(tmp_path / "plain.npy", np.zeros((2, 2)))
    with pytest.raises(P.WeightsError, match="understood layouts"):
        P.load_weights(tmp_path / "plain.npy")


def test_pth_without_torch_says_how_to_get_it(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    path.write_bytes(pickle.dumps({"features.0.weight": [1.0]}, protocol=2))
    monkeypatch.setitem(sys.modules, "torch", None)                    # import torch fails
    with pytest.raises(ImportError, match=r"reading a \.pth needs PyTorch: pip install torch"):
        P.load_weights(path)


def test_pickles_other_than_arrays_are_refused(tmp_path):
    np.save(tmp_path / "evil.npy", {"conv1": [Fraction(1, 2), np.zeros(3)]}, allow_pickle=True)
    with pytest.raises(P.WeightsError, match="refusing to load fractions.Fraction"):
        P.load_weights(tmp_path / "evil.npy")


# --------------------------------------------------------------------------- #
# Fine-tuning
# --------------------------------------------------------------------------- #
def test_replace_classifier_finds_last_linear():
    net = cifar_fig1("relu", num_classes=10, seed=0)
    conv3 = net["conv3"].params["W"].copy()
    F.replace_classifier(net, 3, seed=1)
    assert F.classifier_name(net) == "fc10" and net["fc10"].out_features == 3
    assert net["fc10"].params["W"].shape == (576, 3) and net["fc10"].params["W"].dtype == np.float32
    assert abs(net["fc10"].params["W"].std() - 0.01) < 0.002          # N(0, 0.01)
    np.testing.assert_array_equal(net["conv3"].params["W"], conv3)
    x = np.zeros((2, 3, 32, 32), np.float32)
    assert net.forward(x, train=False).shape == (2, 3)


def test_reinit_layers_uses_the_models_initialization():
    net = cifar_fig1("relu", num_classes=10, seed=0)
    before = net.state_dict()
    F.reinit_layers(net, ["conv1", "fc10"], seed=3)
    after = net.state_dict()
    assert not np.array_equal(after["conv1.W"], before["conv1.W"])
    assert abs(after["conv1.W"].std() - 1e-4) < 2e-5                 # cuda-convnet's conv1 std
    np.testing.assert_array_equal(after["conv2.W"], before["conv2.W"])
    assert F._init_args(type("N", (), {"name": "alexnet"})(), "conv2") == (0.01, 1.0)
    with pytest.raises(ValueError, match="no weights"):
        F.reinit_layers(net, ["pool1"])


def test_prepare_finetune_loads_replaces_freezes(tmp_path):
    src = cifar_fig1("relu", num_classes=5, seed=1)
    P.save_bvlc(src, tmp_path / "a.npy")
    net = cifar_fig1("relu", num_classes=5, seed=2)
    net, mults = F.prepare_finetune(net, init_from=tmp_path / "a.npy", num_classes=3,
                                    freeze=["conv1"], lr_mults={"conv2": 0.1}, seed=0)
    assert mults == {"conv1": 0.0, "conv2": 0.1}
    for name in ("conv1", "conv2", "conv3"):
        np.testing.assert_array_equal(net[name].params["W"], src[name].params["W"])
    assert net["fc10"].out_features == 3
    # One optimizer step: the frozen layer stays, the others move.
    opt = MomentumSGD(net, lr=0.01, lr_mults=mults)
    from numpy_alexnet.layers import SoftmaxCrossEntropy
    loss = SoftmaxCrossEntropy()
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32) * 50
    loss.forward(net.forward(x), np.array([0, 1, 2, 0]))
    net.backward(loss.backward())
    opt.step()
    np.testing.assert_array_equal(net["conv1"].params["W"], src["conv1"].params["W"])
    assert not np.array_equal(net["conv3"].params["W"], src["conv3"].params["W"])


def test_prepare_finetune_reinit_and_errors(tmp_path):
    src = cifar_fig1("relu", num_classes=5, seed=1)
    P.save_state(src, tmp_path / "a.npz")
    net, mults = F.prepare_finetune(cifar_fig1("relu", num_classes=5, seed=2),
                                    init_from=tmp_path / "a.npz", reinit="conv3,fc10")
    assert mults == {}
    np.testing.assert_array_equal(net["conv2"].params["W"], src["conv2"].params["W"])
    assert not np.array_equal(net["conv3"].params["W"], src["conv3"].params["W"])
    with pytest.raises(KeyError, match="fc8") as info:
        F.prepare_finetune(cifar_fig1("relu"), freeze=["fc8"])
    assert str(info.value).startswith("freeze: ")          # the sentence, not its repr in quotes
    with pytest.raises(ValueError, match="both re-initialized and frozen"):
        F.prepare_finetune(cifar_fig1("relu"), reinit=["conv1"], freeze=["conv1"])
    # A classifier of another size in the file, without reinit: the error names it.
    with pytest.raises(P.WeightsError, match=r"fc10.*\(576, 5\).*\(576, 10\)"):
        F.prepare_finetune(cifar_fig1("relu", num_classes=10), init_from=tmp_path / "a.npz")


def test_parse_helpers():
    assert F.parse_names("conv1, conv2,") == ["conv1", "conv2"]
    assert F.parse_lr_mults("conv3=0.1,fc8=10") == {"conv3": 0.1, "fc8": 10.0}
    assert F.parse_lr_mults(["conv3=0.1", "conv4=0"]) == {"conv3": 0.1, "conv4": 0.0}
    with pytest.raises(ValueError, match="LAYER=MULTIPLIER"):
        F.parse_lr_mults("conv3")
