"""The networks, written down as data, apart from the training recipe.

A spec is a list of rows ``(name, kind, arguments)``; :func:`build` turns one
into a :class:`~numpy_alexnet.net.Sequential`.  Read ``alexnet_spec`` next to
the table in section 3.5 of the paper (and docs/paper.md): one row a layer.

Initialization (section 5) is part of the spec: ``weight_std`` and ``bias``.
All weights are drawn from one host ``numpy.random.Generator(seed)`` in layer
order, so a seed fixes the starting point on every backend.
"""
from __future__ import annotations

import numpy as np

from .layers import (AvgPool2D, Conv2D, Dropout, Flatten, LayerInputError, Linear,
                     LocalResponseNorm, MaxPool2D, make_activation)
from .net import Sequential
from .layers import LocallyConnected2D, SpatialResponseNorm
from .layers.base import conv_output_size

# kind -> layer class; activations are built by make_activation.
LAYER_KINDS = {
    "conv": Conv2D, "linear": Linear, "lrn": LocalResponseNorm, "maxpool": MaxPool2D,
    "avgpool": AvgPool2D, "dropout": Dropout, "flatten": Flatten,
}
_WITH_RNG = ("conv", "linear")


# Initial (weight std, bias) of AlexNet's eight learned layers, by name.
#   'paper': section 5, weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7.
#   'caffe': Caffe's bvlc_alexnet (models/bvlc_alexnet/train_val.prototxt), a
#            deviation: biases 0.1 where the paper has 1, and N(0, 0.005) in fc6
#            and fc7.
#   'kaiming': He et al. (2015), a deviation: N(0, 2 / fan-in), biases 0, made
#            for unit-variance inputs (--input-scale unit).
# Why the deviations exist (benchmarks/diag_alexnet_init.py, CIFAR-10 at 256):
# at the paper's start, weights of 0.01 shrink the image-dependent part of the
# activations layer by layer while the biases of 1 add a constant, so from
# conv4 on it is 2-9% of the activation and at test time the logits differ
# across images by about 0.003 (dropout moves them by 0.36); fc8 then mostly
# learns the label mix of each batch.  Caffe's start calms that (the loss
# stays at ln 10) but keeps the image signal small (0.0006); Kaiming's keeps
# it (0.12), and a short run on a small set learns.  See docs/replication.md.
ALEXNET_INITS = {
    "paper": {"conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.01, 0.0),
              "conv4": (0.01, 1.0), "conv5": (0.01, 1.0), "fc6": (0.01, 1.0),
              "fc7": (0.01, 1.0), "fc8": (0.01, 0.0)},
    "caffe": {"conv1": (0.01, 0.0), "conv2": (0.01, 0.1), "conv3": (0.01, 0.0),
              "conv4": (0.01, 0.1), "conv5": (0.01, 0.1), "fc6": (0.005, 0.1),
              "fc7": (0.005, 0.1), "fc8": (0.01, 0.0)},
    # "he": sqrt(2 / fan-in), computed per layer in alexnet_spec.
    "kaiming": {name: ("he", 0.0) for name in
                ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")},
}


def check_num_classes(model: str, num_classes) -> None:
    """At least 2 classes: a softmax over one class is always 1, so it learns nothing."""
    ok = (isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool)
          and num_classes >= 2)
    if not ok:
        raise ValueError(f"{model}: num_classes must be an integer >= 2 (a softmax over one "
                         f"class always outputs 1, so there is nothing to learn), "
                         f"got {num_classes!r}")


def _fan_in(kind: str, args: dict) -> int:
    """Inputs each output unit sees: (in_channels / groups) * k * k, or in_features."""
    if kind == "linear":
        return int(args["in_features"])
    k = args["kernel_size"]
    return int(args["in_channels"] // args.get("groups", 1) * k * k)


def alexnet_spec(num_classes: int = 1000, init: str = "paper") -> list[tuple[str, str, dict]]:
    """The paper's network (section 3.5, figure 2) for 227x227x3 inputs.

    The two towers share one device as ``groups=2`` in conv2, conv4 and conv5,
    where each tower sees only its own half of the previous layer; conv3 and
    fc6-fc8 see both towers.  LRN in norm1 and norm2 also stays inside a tower
    (``groups=2``): on the paper's two GPUs each tower normalizes over its own
    48 or 128 channels, since the towers do not talk there.  Weights N(0, 0.01); biases 1 in conv2, conv4,
    conv5, fc6 and fc7, 0 elsewhere.

    ``init`` picks the starting weights from ``ALEXNET_INITS``: 'paper' (the
    default), or one of two named deviations: 'caffe' (Caffe's bvlc_alexnet
    start, biases 0.1 and N(0, 0.005) in fc6 and fc7) or 'kaiming' (N(0, std
    sqrt(2/fan-in)), biases 0, for unit-variance inputs); see docs/faithfulness.md
    and docs/replication.md for why a short run on a small set needs one.

    Deviation: the paper says 224x224 inputs, which do not give its 55x55;
    227 does (see docs/faithfulness.md).
    """
    if init not in ALEXNET_INITS:
        raise ValueError(f"unknown AlexNet init {init!r}; expected one of {sorted(ALEXNET_INITS)}")
    check_num_classes("alexnet", num_classes)
    lrn = dict(n=5, k=2.0, alpha=1e-4, beta=0.75, groups=2)  # each tower normalizes its own
    pool = dict(kernel_size=3, stride=2)                    # overlapping, section 3.4
    spec = [
        # name     kind        arguments
        ("conv1", "conv",    dict(in_channels=3, out_channels=96, kernel_size=11, stride=4, bias=0.0)),
        ("relu1", "relu",    {}),
        ("norm1", "lrn",     lrn),
        ("pool1", "maxpool", pool),
        ("conv2", "conv",    dict(in_channels=96, out_channels=256, kernel_size=5, padding=2,
                                  groups=2, bias=1.0)),
        ("relu2", "relu",    {}),
        ("norm2", "lrn",     lrn),
        ("pool2", "maxpool", pool),
        ("conv3", "conv",    dict(in_channels=256, out_channels=384, kernel_size=3, padding=1,
                                  bias=0.0)),       # towers cross here
        ("relu3", "relu",    {}),
        ("conv4", "conv",    dict(in_channels=384, out_channels=384, kernel_size=3, padding=1,
                                  groups=2, bias=1.0)),
        ("relu4", "relu",    {}),
        ("conv5", "conv",    dict(in_channels=384, out_channels=256, kernel_size=3, padding=1,
                                  groups=2, bias=1.0)),
        ("relu5", "relu",    {}),
        ("pool5", "maxpool", pool),
        ("flatten", "flatten", {}),
        ("fc6",   "linear",  dict(in_features=6 * 6 * 256, out_features=4096, bias=1.0)),  # cross
        ("relu6", "relu",    {}),
        ("drop6", "dropout", dict(rate=0.5)),
        ("fc7",   "linear",  dict(in_features=4096, out_features=4096, bias=1.0)),         # cross
        ("relu7", "relu",    {}),
        ("drop7", "dropout", dict(rate=0.5)),
        ("fc8",   "linear",  dict(in_features=4096, out_features=num_classes, bias=0.0)),  # cross
    ]
    starts = ALEXNET_INITS[init]
    for name, kind, args in spec:
        if name in starts:
            std, args["bias"] = starts[name]
            args["weight_std"] = float(np.sqrt(2.0 / _fan_in(kind, args))) if std == "he" else std
    return spec


def alexnet_torchvision_spec(num_classes: int = 1000) -> list[tuple[str, str, dict]]:
    """torchvision's AlexNet: a *different*, single-tower network (224x224 input).

    64/192/384/256/256 kernels, no LRN, no groups, padding 2 in conv1, dropout
    *before* fc6 and fc7 (inverted, as PyTorch does): 61,100,840 parameters at
    1000 classes.  Offered so torchvision's weights can be loaded; it is not the
    paper's network.  Initialization here is the paper's N(0, 0.01), not
    torchvision's.  torchvision's adaptive 6x6 average pool is the identity
    for 224x224 inputs and is left out.
    """
    check_num_classes("alexnet_torchvision", num_classes)
    pool = dict(kernel_size=3, stride=2)
    return [
        ("conv1", "conv",    dict(in_channels=3, out_channels=64, kernel_size=11, stride=4, padding=2)),
        ("relu1", "relu",    {}),
        ("pool1", "maxpool", pool),
        ("conv2", "conv",    dict(in_channels=64, out_channels=192, kernel_size=5, padding=2)),
        ("relu2", "relu",    {}),
        ("pool2", "maxpool", pool),
        ("conv3", "conv",    dict(in_channels=192, out_channels=384, kernel_size=3, padding=1)),
        ("relu3", "relu",    {}),
        ("conv4", "conv",    dict(in_channels=384, out_channels=256, kernel_size=3, padding=1)),
        ("relu4", "relu",    {}),
        ("conv5", "conv",    dict(in_channels=256, out_channels=256, kernel_size=3, padding=1)),
        ("relu5", "relu",    {}),
        ("pool5", "maxpool", pool),
        ("flatten", "flatten", {}),
        ("drop6", "dropout", dict(rate=0.5, mode="inverted")),
        ("fc6",   "linear",  dict(in_features=6 * 6 * 256, out_features=4096)),
        ("relu6", "relu",    {}),
        ("drop7", "dropout", dict(rate=0.5, mode="inverted")),
        ("fc7",   "linear",  dict(in_features=4096, out_features=4096)),
        ("relu7", "relu",    {}),
        ("fc8",   "linear",  dict(in_features=4096, out_features=num_classes)),
    ]


# cuda-convnet's layers-80sec.cfg initialization for the Figure-1 net.
CUDA_CONVNET_STDS = (1e-4, 1e-2, 1e-2, 1e-2)


def cifar_fig1_spec(activation: str = "relu", num_classes: int = 10,
                    weight_stds: tuple = CUDA_CONVNET_STDS) -> list[tuple[str, str, dict]]:
    """The four-layer CIFAR-10 net of Figure 1 (section 3.1), for 32x32x3 inputs.

    The paper gives no sizes; this is the nearest public definition, the
    cuda-convnet CIFAR-10 example (layers-80sec.cfg): three 5x5 convolutions
    (32, 32, 64 kernels, padding 2) each followed by the chosen neuron and a
    3x3/2 pool (max, then average, average), and one fully connected layer.

    Deviation: pools use floor mode (32 -> 15 -> 7 -> 3, so fc10 sees
    3*3*64 = 576 inputs) where cuda-convnet rounds up (16 -> 8 -> 4).
    """
    check_num_classes("cifar_fig1", num_classes)
    s1, s2, s3, s4 = weight_stds
    pool = dict(kernel_size=3, stride=2)
    return [
        ("conv1", "conv",    dict(in_channels=3, out_channels=32, kernel_size=5, padding=2, weight_std=s1)),
        ("act1",  activation, {}),
        ("pool1", "maxpool", pool),
        ("conv2", "conv",    dict(in_channels=32, out_channels=32, kernel_size=5, padding=2, weight_std=s2)),
        ("act2",  activation, {}),
        ("pool2", "avgpool", pool),
        ("conv3", "conv",    dict(in_channels=32, out_channels=64, kernel_size=5, padding=2, weight_std=s3)),
        ("act3",  activation, {}),
        ("pool3", "avgpool", pool),
        ("flatten", "flatten", {}),
        ("fc10",  "linear",  dict(in_features=3 * 3 * 64, out_features=num_classes, weight_std=s4)),
    ]


def build(spec, input_shape: tuple, seed: int = 0, dtype=np.float32,
          dropout_mode: str = "paper", name: str = "net") -> Sequential:
    """Make the layers of ``spec`` with weights drawn from ``Generator(seed)``."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (lname, kind, args) in enumerate(spec):
        args = dict(args)
        if kind in ("relu", "tanh"):
            layers.append(make_activation(kind, name=lname))
            continue
        if kind not in LAYER_KINDS:
            raise ValueError(f"layer {lname!r}: unknown kind {kind!r}; expected one of "
                             f"{sorted(LAYER_KINDS) + ['relu', 'tanh']}")
        if kind in _WITH_RNG:
            args.update(rng=rng, dtype=dtype)
        if kind == "dropout":
            args.setdefault("mode", dropout_mode)
            args.setdefault("seed", seed * 1000 + i)
        layers.append(LAYER_KINDS[kind](name=lname, **args))
    net = Sequential(layers, input_shape=input_shape, name=name)
    try:
        net.shapes()    # fail now, not at the first batch, if the spec's shapes do not chain
    except LayerInputError as err:
        raise LayerInputError(f"{name}: input {tuple(input_shape)} does not fit the layers: "
                              f"{err}; {_sizes_that_fit(net, input_shape)}") from err
    return net


def _sizes_that_fit(net: Sequential, input_shape: tuple, largest: int = 1024) -> str:
    """Which square inputs (C, S, S) the layers of ``net`` take, as a sentence."""
    if len(input_shape) != 3:
        return "check the spec's first layer"
    fits = []
    for size in range(1, largest + 1):
        try:
            net.shapes((input_shape[0], size, size))
            fits.append(size)
        except LayerInputError:
            pass
    if not fits:
        return f"no square input up to {largest}x{largest} fits: the spec's shapes do not chain"
    lo, hi = min(fits), max(fits)
    sizes = f"{lo}x{lo}" if lo == hi else f"{lo}x{lo} to {hi}x{hi}"
    where = ("too small" if input_shape[1] < lo and input_shape[2] < lo else
             "too large" if input_shape[1] > hi and input_shape[2] > hi else "not one of them")
    return f"the square inputs they take are {sizes}, the smallest {lo}x{lo} ({where})"


def alexnet(num_classes: int = 1000, seed: int = 0, dtype=np.float32,
            dropout_mode: str = "paper", init: str = "paper") -> Sequential:
    """The paper's AlexNet for (N, 3, 227, 227) inputs: 60,965,224 parameters at 1000 classes.

    ``init``: 'paper' (section 5), or 'caffe' or 'kaiming' (named deviations, see
    ``ALEXNET_INITS``).
    """
    return build(alexnet_spec(num_classes, init), (3, 227, 227), seed, dtype, dropout_mode,
                 "alexnet")


def cifar_fig1(activation: str = "relu", num_classes: int = 10, seed: int = 0, dtype=np.float32,
               weight_stds: tuple = CUDA_CONVNET_STDS, input_size: int = 32) -> Sequential:
    """The Figure-1 CIFAR-10 net with ReLU or tanh neurons, for (N, 3, 32, 32) inputs."""
    spec = cifar_fig1_spec(activation, num_classes, weight_stds)
    return build(spec, (3, input_size, input_size), seed, dtype, name=f"cifar_fig1_{activation}")


def alexnet_torchvision(num_classes: int = 1000, seed: int = 0, dtype=np.float32) -> Sequential:
    """torchvision's single-tower AlexNet for (N, 3, 224, 224) inputs (61,100,840 parameters)."""
    return build(alexnet_torchvision_spec(num_classes), (3, 224, 224), seed, dtype,
                 name="alexnet_torchvision")


MODELS = {
    "alexnet": alexnet,
    "alexnet_torchvision": alexnet_torchvision,
    "cifar_fig1": cifar_fig1,
    "cifar_fig1_relu": lambda **kw: cifar_fig1("relu", **kw),
    "cifar_fig1_tanh": lambda **kw: cifar_fig1("tanh", **kw),
}


def get_model(name: str, **kwargs) -> Sequential:
    """A model by name (see ``MODELS``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)


# -- The cuda-convnet CIFAR-10 nets of section 3.3 (issue 17) ------------------------------
# Two more layer kinds: cuda-convnet's unshared "local" layer and the 2012
# code's same-map response normalization ("srn").
LAYER_KINDS.update(local=LocallyConnected2D, srn=SpatialResponseNorm)
_WITH_RNG = _WITH_RNG + ("local",)

# cuda-convnet's cross-map LRN in layers-conv-local-11pct.cfg: size 5, scale
# 0.001 which cuda-convnet divides by the size (so alpha multiplies the plain
# sum, as in this project's LocalResponseNorm), pow 0.75, and k = 1 (its
# default) where the paper's ImageNet net has k = 2.
CONV_LOCAL_LRN_SIZE = 5
CONV_LOCAL_LRN_SCALE = 0.001
CONV_LOCAL_LRN = dict(n=CONV_LOCAL_LRN_SIZE, k=1.0,
                      alpha=CONV_LOCAL_LRN_SCALE / CONV_LOCAL_LRN_SIZE, beta=0.75)

# The training recipe of layer-params-conv-local-11pct.cfg (the 13% net's is the
# same), as data; ``numpy-alexnet ablate`` (training/ablate.py) trains with it.
# cuda-convnet gives each layer a weight rate epsW and a bias rate epsB, and decays
# weights only (never biases), by wc: 0 in the convolutions, 0.004 in the local and fc layers.  As
# MomentumSGD settings: weight_decay 0.004 with decay_mults below; the bias
# rate (twice the weight rate) needs per-parameter rates, which MomentumSGD
# (per-layer lr_mults) does not have.
CONV_LOCAL_RECIPE = {
    "batch_size": 128,
    "momentum": 0.9,
    "lr_weights": 0.001,                 # epsW, every layer
    "lr_biases": 0.002,                  # epsB, every layer
    "weight_decay": 0.004,
    "decay_mults": {"conv1": 0.0, "conv2": 0.0, "local3.b": 0.0, "local4.b": 0.0,
                    "fc10.b": 0.0},
    "train_crop": 24,                    # random 24x24 crops of 32x32, with reflections
    "test_views": 10,                    # 4 corners and the centre, and their reflections
    "schedule": "about 300 epochs on 40,000 images (validating on the other 10,000), "
                "150 more on all 50,000, then 10 epochs at lr/10 and 10 at lr/100",
}


def cifar_conv_local_spec(lrn: bool, num_classes: int = 10, input_size: int = 24,
                          pool: tuple[int, int] = (3, 2)) -> list[tuple[str, str, dict]]:
    """cuda-convnet's conv-local CIFAR-10 net, the nearest public definition of
    the paper's section-3.3 claim (13% test error without normalization, 11% with).

    layers-conv-local-13pct.cfg (``lrn=False``) and layers-conv-local-11pct.cfg
    (``lrn=True``, which adds the two cross-map LRN layers, ``CONV_LOCAL_LRN``):

        conv 5x5x64 pad 2, ReLU, [LRN], max-pool 3x3/2,
        conv 5x5x64 pad 2, ReLU, [LRN], max-pool 3x3/2,
        locally connected 3x3x32 pad 1, ReLU, locally connected 3x3x32 pad 1, ReLU,
        fc 10.

    Initialization as the files have it: N(0, 1e-4) in conv1, 0.01 in conv2
    and fc10, 0.04 in the local layers; biases 0.  Inputs are 24x24 crops.

    Deviation: pools use floor mode (24 -> 11 -> 5, so the local layers work
    on 5x5 and fc10 sees 5*5*32 = 800 inputs) where cuda-convnet rounds up
    (24 -> 12 -> 6, 1,152 inputs), as in ``cifar_fig1_spec``.

    ``pool`` (window, stride) of both max-pools: (3, 2), overlapping, as the
    files have it; (2, 2) is the non-overlapping pooling of the ablation of
    section 3.4 (24 -> 12 -> 6, fc10 sees 1,152 inputs).
    """
    check_num_classes("cifar_conv_local", num_classes)
    z, stride = pool
    pool = dict(kernel_size=z, stride=stride)
    s1 = conv_output_size(input_size, z, stride, 0)     # after pool1 (conv1 keeps the size)
    s2 = conv_output_size(s1, z, stride, 0)             # after pool2: the local layers' size
    norm = lambda name: [(name, "lrn", dict(CONV_LOCAL_LRN))] if lrn else []   # noqa: E731
    return [
        ("conv1", "conv",    dict(in_channels=3, out_channels=64, kernel_size=5, padding=2,
                                  weight_std=1e-4)),
        ("relu1", "relu",    {}),
        *norm("norm1"),
        ("pool1", "maxpool", pool),
        ("conv2", "conv",    dict(in_channels=64, out_channels=64, kernel_size=5, padding=2,
                                  weight_std=0.01)),
        ("relu2", "relu",    {}),
        *norm("norm2"),
        ("pool2", "maxpool", pool),
        ("local3", "local",  dict(in_channels=64, out_channels=32, kernel_size=3, padding=1,
                                  input_size=s2, weight_std=0.04)),
        ("relu3", "relu",    {}),
        ("local4", "local",  dict(in_channels=32, out_channels=32, kernel_size=3, padding=1,
                                  input_size=s2, weight_std=0.04)),
        ("relu4", "relu",    {}),
        ("flatten", "flatten", {}),
        ("fc10",  "linear",  dict(in_features=32 * s2 * s2, out_features=num_classes,
                                  weight_std=0.01)),
    ]


def cifar_conv_local(lrn: bool = True, num_classes: int = 10, seed: int = 0, dtype=np.float32,
                     input_size: int = 24) -> Sequential:
    """The conv-local CIFAR-10 net with (``lrn=True``, the 11% net) or without LRN (13%)."""
    name = "cifar_conv_local_11pct" if lrn else "cifar_conv_local_13pct"
    return build(cifar_conv_local_spec(lrn, num_classes, input_size),
                 (3, input_size, input_size), seed, dtype, name=name)


# -- The 2012 code's AlexNet (issue 17) ------------------------------------------------------
# layers-145.cfg with layer-params-145-2010.cfg, the files whose comment records
# the paper's ILSVRC-2010 result.  Cross-map LRN: minDiv 2 (k), size 5,
# scale 0.0001 divided by the size; the same-map rnorm after conv2: size 5,
# scale 0.001 divided by size^2, pow 0.75, minDiv 1 (its default).
ALEXNET_2012_LRN = dict(n=5, k=2.0, alpha=0.0001 / 5, beta=0.75, groups=2)
ALEXNET_2012_SRN = dict(size=5, k=1.0, alpha=0.001 / 5 ** 2, beta=0.75)
# Initial (weight std, bias) by layer: 0.03 in conv3-conv5 where the paper has 0.01.
ALEXNET_2012_INIT = {"conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.03, 0.0),
                     "conv4": (0.03, 1.0), "conv5": (0.03, 1.0), "fc6": (0.01, 1.0),
                     "fc7": (0.01, 1.0), "fc8": (0.01, 0.0)}

# The training recipe of the 2012 code, as data (no trainer reads it yet).
# Per-layer rates are the file's final values (weights, biases); the bias rates
# were not lowered with the weights, and conv1 ends frozen.  Weight decay is on
# weights only: decay_mults switch it off on every bias (= no_bias_decay(net)).
ALEXNET_2012_RECIPE = {
    "batch_size": 128,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "decay_mults": {f"{name}.b": 0.0 for name in ALEXNET_2012_INIT},
    "lr_start": 0.01,
    "final_rates": {name: ((0.0, 0.0) if name == "conv1" else (0.00001, 0.002))
                    for name in ALEXNET_2012_INIT},            # (epsW, epsB)
    "schedule_logged": [                                         # (epoch, what changed)
        (23, "weight rates 0.01 -> 0.001"),
        (51, "weight rates 0.001 -> 0.0001"),
        (68, "conv1's weight rate -> 0.00001; PCA colour noise switched off"),
        (72, "conv1 frozen (rate 0)"),
        (78, "the other weight rates -> 0.00001"),
        (93, "stopped"),
    ],
    "pca_colour_std": 0.1,
    "test_views": 10,
}


def alexnet_2012_code_spec(num_classes: int = 1000) -> list[tuple[str, str, dict]]:
    """AlexNet as the 2012 code (layers-145) has it, on one device, for 227x227x3 inputs.

    What differs from ``alexnet_spec`` (the paper's text), each a named deviation
    from the paper that the code made:

    * conv1 has no neuron: LRN on the pre-activation, then max-pool, then ReLU;
    * conv2: cross-map LRN and then a same-map (spatial) response normalization,
      ``SpatialResponseNorm`` (size 5, alpha 0.001 / 25, k 1, beta 0.75), before pool2;
    * LRN constants: k = 2, n = 5, alpha = 0.0001 / 5 (the code divides its scale
      by the size), beta 0.75, each tower's channels on their own (``groups=2``);
    * init: N(0, 0.03) in conv3-conv5 (0.01 in conv1, conv2 and the fc layers);
      biases 1 in conv2, conv4, conv5, fc6, fc7 as in the paper;
    * the neuron of conv5 sits on pool5 (max-pool, then ReLU), which gives the
      same values as ReLU then max-pool.

    The training recipe (no bias decay, per-layer rates) is ``ALEXNET_2012_RECIPE``.
    Deviation: the code takes 224x224 inputs and rounds its window positions
    up so that 224 gives 55 (the last conv1 window reads zeros past the edge);
    here, as in ``alexnet_spec``, 227 with no padding gives the same 55.
    """
    check_num_classes("alexnet_2012_code", num_classes)
    pool = dict(kernel_size=3, stride=2)
    spec = [
        # name     kind        arguments
        ("conv1", "conv",    dict(in_channels=3, out_channels=96, kernel_size=11, stride=4)),
        ("norm1", "lrn",     ALEXNET_2012_LRN),                   # on the pre-activation
        ("pool1", "maxpool", pool),
        ("relu1", "relu",    {}),                                 # after the pool
        ("conv2", "conv",    dict(in_channels=96, out_channels=256, kernel_size=5, padding=2,
                                  groups=2)),
        ("relu2", "relu",    {}),
        ("norm2", "lrn",     ALEXNET_2012_LRN),
        ("snorm2", "srn",    ALEXNET_2012_SRN),                   # not in the paper
        ("pool2", "maxpool", pool),
        ("conv3", "conv",    dict(in_channels=256, out_channels=384, kernel_size=3, padding=1)),
        ("relu3", "relu",    {}),
        ("conv4", "conv",    dict(in_channels=384, out_channels=384, kernel_size=3, padding=1,
                                  groups=2)),
        ("relu4", "relu",    {}),
        ("conv5", "conv",    dict(in_channels=384, out_channels=256, kernel_size=3, padding=1,
                                  groups=2)),
        ("pool5", "maxpool", pool),
        ("relu5", "relu",    {}),
        ("flatten", "flatten", {}),
        ("fc6",   "linear",  dict(in_features=6 * 6 * 256, out_features=4096)),
        ("relu6", "relu",    {}),
        ("drop6", "dropout", dict(rate=0.5)),
        ("fc7",   "linear",  dict(in_features=4096, out_features=4096)),
        ("relu7", "relu",    {}),
        ("drop7", "dropout", dict(rate=0.5)),
        ("fc8",   "linear",  dict(in_features=4096, out_features=num_classes)),
    ]
    for name, kind, args in spec:
        if name in ALEXNET_2012_INIT:
            args["weight_std"], args["bias"] = ALEXNET_2012_INIT[name]
    return spec


def alexnet_2012_code(num_classes: int = 1000, seed: int = 0, dtype=np.float32,
                      dropout_mode: str = "paper") -> Sequential:
    """The 2012 code's AlexNet (layers-145) for (N, 3, 227, 227) inputs: 60,965,224
    parameters at 1000 classes, as ``alexnet()`` (the normalizations learn nothing)."""
    return build(alexnet_2012_code_spec(num_classes), (3, 227, 227), seed, dtype, dropout_mode,
                 "alexnet_2012_code")


MODELS.update({
    "cifar_conv_local_13pct": lambda **kw: cifar_conv_local(False, **kw),
    "cifar_conv_local_11pct": lambda **kw: cifar_conv_local(True, **kw),
    "alexnet_2012_code": alexnet_2012_code,
})


# -- The CIFAR-10 ablation nets (numpy-alexnet ablate) ---------------------------------------
# Non-overlapping pooling (section 3.4): the 11% conv-local net with 2x2/2 pools.
CONV_LOCAL_POOL2 = (2, 2)


def cifar_conv_fc_spec(dropout: bool, num_classes: int = 10,
                       input_size: int = 24) -> list[tuple[str, str, dict]]:
    """``cifar_conv_fc``: a CIFAR-10 net with one hidden fully connected layer, for
    the dropout ablation (section 4.2); this project's own net, named here.

    The 11% conv-local net's two convolution blocks (cross-map LRN included),
    then a hidden fc layer of 256 ReLUs ("fc3") where that net has its two
    locally connected layers, then fc 10:

        conv 5x5x64 pad 2, ReLU, LRN, max-pool 3x3/2,
        conv 5x5x64 pad 2, ReLU, LRN, max-pool 3x3/2,
        fc 256, ReLU, [dropout 0.5], fc 10.

    ``dropout=True`` adds the paper's dropout (rate 0.5, outputs halved at test
    time) after fc3, as AlexNet has it after fc6 and fc7.  Initialization as
    the conv-local net's: N(0, 1e-4) in conv1, 0.01 in conv2 and fc4, 0.04 in
    fc3 (the local layers' std); biases 0.  Trained with the conv-local recipe
    (``CONV_FC_RECIPE``).
    """
    check_num_classes("cifar_conv_fc", num_classes)
    pool = dict(kernel_size=3, stride=2)
    s2 = conv_output_size(conv_output_size(input_size, 3, 2, 0), 3, 2, 0)   # 24 -> 11 -> 5
    spec = [
        ("conv1", "conv",    dict(in_channels=3, out_channels=64, kernel_size=5, padding=2,
                                  weight_std=1e-4)),
        ("relu1", "relu",    {}),
        ("norm1", "lrn",     dict(CONV_LOCAL_LRN)),
        ("pool1", "maxpool", pool),
        ("conv2", "conv",    dict(in_channels=64, out_channels=64, kernel_size=5, padding=2,
                                  weight_std=0.01)),
        ("relu2", "relu",    {}),
        ("norm2", "lrn",     dict(CONV_LOCAL_LRN)),
        ("pool2", "maxpool", pool),
        ("flatten", "flatten", {}),
        ("fc3",   "linear",  dict(in_features=64 * s2 * s2, out_features=256, weight_std=0.04)),
        ("relu3", "relu",    {}),
        *([("drop3", "dropout", dict(rate=0.5))] if dropout else []),
        ("fc4",   "linear",  dict(in_features=256, out_features=num_classes, weight_std=0.01)),
    ]
    return spec


# The conv-local recipe for cifar_conv_fc: decay 0.004 on the fc weights, none on
# the convolutions or any bias.
CONV_FC_RECIPE = dict(CONV_LOCAL_RECIPE, decay_mults={"conv1": 0.0, "conv2": 0.0, "fc3.b": 0.0,
                                                      "fc4.b": 0.0})


def cifar_conv_fc(dropout: bool = True, num_classes: int = 10, seed: int = 0, dtype=np.float32,
                  input_size: int = 24) -> Sequential:
    """``cifar_conv_fc_dropout`` (with dropout after the hidden fc layer) or ``cifar_conv_fc``."""
    name = "cifar_conv_fc_dropout" if dropout else "cifar_conv_fc"
    return build(cifar_conv_fc_spec(dropout, num_classes, input_size),
                 (3, input_size, input_size), seed, dtype, name=name)


def cifar_conv_local_pool2(num_classes: int = 10, seed: int = 0, dtype=np.float32,
                           input_size: int = 24) -> Sequential:
    """The 11% conv-local net with non-overlapping 2x2/2 max-pools (section 3.4's ablation)."""
    return build(cifar_conv_local_spec(True, num_classes, input_size, CONV_LOCAL_POOL2),
                 (3, input_size, input_size), seed, dtype, name="cifar_conv_local_11pct_pool2")


MODELS.update({
    "cifar_conv_local_11pct_pool2": cifar_conv_local_pool2,
    "cifar_conv_fc": lambda **kw: cifar_conv_fc(False, **kw),
    "cifar_conv_fc_dropout": lambda **kw: cifar_conv_fc(True, **kw),
})


# --------------------------------------------------------------------------- #
# Models by name, as the command line and the studies ask for them
# --------------------------------------------------------------------------- #
def fig1_weight_stds(init: str) -> tuple:
    """conv1, conv2, conv3, fc10 initial standard deviations of the Figure-1 net.

    'cuda-convnet': layers-80sec.cfg's (1e-4, 1e-2, 1e-2, 1e-2), made for raw
    0-255 inputs.  'fan-in': 1/sqrt(fan-in) (LeCun), made for unit-variance
    inputs: conv1 sees 5*5*3 = 75 inputs, conv2 and conv3 5*5*32 = 800, fc10
    3*3*64 = 576.
    """
    if init == "cuda-convnet":
        return CUDA_CONVNET_STDS
    if init == "fan-in":
        return tuple(float(1 / np.sqrt(f)) for f in (75, 800, 800, 576))
    raise ValueError(f"unknown init {init!r}; expected 'cuda-convnet' or 'fan-in'")


def build_model(name: str, num_classes: int, seed: int, init: str | None = None) -> Sequential:
    """A model of ``MODELS`` by name with a named initialization (``--init``; None: the default).

    cifar_fig1*: 'cuda-convnet' (default) or 'fan-in'; alexnet: 'paper' (default),
    'caffe' or 'kaiming' (``ALEXNET_INITS``); the other models only their own.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}")
    if name.startswith("cifar_fig1"):
        act = {"cifar_fig1": "relu", "cifar_fig1_relu": "relu", "cifar_fig1_tanh": "tanh"}[name]
        return cifar_fig1(act, num_classes=num_classes, seed=seed,
                          weight_stds=fig1_weight_stds(init or "cuda-convnet"))
    if name == "alexnet":
        if init not in (None, "default", *ALEXNET_INITS):
            raise ValueError(f"--init {init}: alexnet takes {' or '.join(sorted(ALEXNET_INITS))}")
        return get_model(name, num_classes=num_classes, seed=seed,
                         init="paper" if init in (None, "default") else init)
    if init not in (None, "default"):
        raise ValueError(f"--init {init} applies to the cifar_fig1 and alexnet models; "
                         f"{name} uses the paper's")
    return get_model(name, num_classes=num_classes, seed=seed)


def model_input_size(name: str) -> int:
    """The input height and width of a named model (of ``MODELS``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}")
    sizes = {"alexnet": 227, "alexnet_2012_code": 227, "alexnet_torchvision": 224,
             "cifar_conv_local_13pct": 24, "cifar_conv_local_11pct": 24}
    if name in sizes:
        return sizes[name]
    if name.startswith("cifar_fig1"):
        return 32
    return MODELS[name]().input_shape[-1]             # a model added later: build it once
