"""The networks, written down as data, apart from their training recipes (``recipes.py``).

A spec is a list of rows ``(name, kind, arguments)``; :func:`build` turns one
into a :class:`~numpy_alexnet.net.Sequential`.  Read ``alexnet_spec`` next to
the table in section 3.5 of the paper (and docs/paper.md): one row a layer.

Initialization (section 5) is part of the spec: ``weight_std`` and ``bias``.
All weights are drawn from one host ``numpy.random.Generator(seed)`` in layer
order, so a seed fixes the starting point on every backend.

``MODELS`` names every network (name -> :class:`Network`: its spec, its input
size, its classes and its named initializations); :func:`build_model` is the
one way to build one by name, as the command line and the studies do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

from .layers import (AvgPool2D, Conv2D, Dropout, Flatten, LayerInputError, Linear,
                     LocallyConnected2D, LocalResponseNorm, MaxPool2D, SpatialResponseNorm,
                     make_activation)
from .layers.base import conv_output_size
from .net import Sequential

# kind -> layer class; activations are built by make_activation.  'local' is
# cuda-convnet's unshared locally connected layer, 'srn' the 2012 code's
# same-map response normalization.
LAYER_KINDS = {
    "conv": Conv2D, "linear": Linear, "lrn": LocalResponseNorm, "maxpool": MaxPool2D,
    "avgpool": AvgPool2D, "dropout": Dropout, "flatten": Flatten,
    "local": LocallyConnected2D, "srn": SpatialResponseNorm,
}
_WITH_RNG = ("conv", "linear", "local")     # the kinds whose weights are drawn

# The square inputs (3, S, S) the networks take.
ALEXNET_INPUT = 227            # the paper's 224 does not give its 55x55 (docs/faithfulness.md)
TORCHVISION_INPUT = 224
CIFAR_INPUT = 32               # the Figure-1 net sees whole CIFAR-10 images
CONV_LOCAL_INPUT = 24          # the conv-local recipe's random 24x24 crops of them


# Initial (weight std, bias) of AlexNet's eight learned layers, by name.
#   'paper': section 5, weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7.
#   'caffe': Caffe's bvlc_alexnet (models/bvlc_alexnet/train_val.prototxt), a
#            deviation: biases 0.1 where the paper has 1, and N(0, 0.005) in fc6
#            and fc7.
#   'kaiming': He et al. (2015), a deviation: N(0, 2 / fan-in), biases 0, made
#            for unit-variance inputs (--input-scale unit).
# Why the deviations exist (benchmarks/diag_alexnet_init.py, CIFAR-10 at 256):
# at the paper's start the biases of 1 swamp the image-dependent part of the
# activations from conv4 on (2-9% of it), so fc8 mostly learns the label mix
# of each batch; Caffe's start calms the loss but keeps the image signal small,
# Kaiming's keeps it, and a short run on a small set learns (docs/replication.md).
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


# -- The Figure-1 net (section 3.1) ----------------------------------------------------------
# cuda-convnet's layers-80sec.cfg initialization for the Figure-1 net.
CUDA_CONVNET_STDS = (1e-4, 1e-2, 1e-2, 1e-2)
# conv1, conv2, conv3, fc10 initial standard deviations of the Figure-1 net, by name:
# 'cuda-convnet', made for raw 0-255 inputs; 'fan-in', 1/sqrt(fan-in) (LeCun), made for
# unit-variance inputs: conv1 sees 5*5*3 = 75 inputs, conv2 and conv3 5*5*32 = 800, fc10
# 3*3*64 = 576.
FIG1_WEIGHT_STDS = {
    "cuda-convnet": CUDA_CONVNET_STDS,
    "fan-in": tuple(float(1 / np.sqrt(f)) for f in (75, 800, 800, 576)),
}


def fig1_weight_stds(init: str) -> tuple:
    """The Figure-1 net's initial standard deviations by name (``FIG1_WEIGHT_STDS``)."""
    if init not in FIG1_WEIGHT_STDS:
        raise ValueError(f"unknown init {init!r}; expected 'cuda-convnet' or 'fan-in'")
    return FIG1_WEIGHT_STDS[init]


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


# -- The conv-local CIFAR-10 nets of section 3.3 and their ablation variants ------------------
# cuda-convnet's cross-map LRN in layers-conv-local-11pct.cfg: size 5, scale
# 0.001 which cuda-convnet divides by the size (so alpha multiplies the plain
# sum, as in this project's LocalResponseNorm), pow 0.75, and k = 1 (its
# default) where the paper's ImageNet net has k = 2.
CONV_LOCAL_LRN_SIZE = 5
CONV_LOCAL_LRN_SCALE = 0.001
CONV_LOCAL_LRN = dict(n=CONV_LOCAL_LRN_SIZE, k=1.0,
                      alpha=CONV_LOCAL_LRN_SCALE / CONV_LOCAL_LRN_SIZE, beta=0.75)
# Non-overlapping pooling (section 3.4): the 11% conv-local net with 2x2/2 pools.
CONV_LOCAL_POOL2 = (2, 2)


def cifar_conv_local_spec(lrn: bool, num_classes: int = 10, input_size: int = CONV_LOCAL_INPUT,
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


def cifar_conv_fc_spec(dropout: bool, num_classes: int = 10,
                       input_size: int = CONV_LOCAL_INPUT) -> list[tuple[str, str, dict]]:
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
    (``recipes.CONV_FC_RECIPE``).
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


# -- The 2012 code's AlexNet ------------------------------------------------------------------
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

    The training recipe (no bias decay, per-layer rates) is ``recipes.ALEXNET_2012_RECIPE``.
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


# --------------------------------------------------------------------------- #
# Every network by name
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Network:
    """One entry of ``MODELS``: what :func:`build_model` needs to build the network.

    ``spec(num_classes=..., **inits[name])`` gives its rows; it takes
    (3, ``input_size``, ``input_size``) inputs and has ``num_classes`` outputs
    unless told otherwise; ``inits`` are its named initializations (``--init``),
    name -> the spec's keyword arguments, the first the default (none: the
    spec's own start only).
    """
    spec: Callable[..., list]
    input_size: int
    num_classes: int
    about: str
    inits: dict = field(default_factory=dict)


_FIG1_INITS = {name: {"weight_stds": stds} for name, stds in FIG1_WEIGHT_STDS.items()}
_FIG1_RELU = Network(partial(cifar_fig1_spec, "relu"), CIFAR_INPUT, 10,
                     "the Figure-1 CIFAR-10 net with ReLUs", _FIG1_INITS)

MODELS = {
    "alexnet": Network(alexnet_spec, ALEXNET_INPUT, 1000, "the paper's network",
                       {name: {"init": name} for name in ALEXNET_INITS}),
    "alexnet_2012_code": Network(alexnet_2012_code_spec, ALEXNET_INPUT, 1000,
                                 "AlexNet as the released 2012 code has it"),
    "alexnet_torchvision": Network(alexnet_torchvision_spec, TORCHVISION_INPUT, 1000,
                                   "torchvision's single-tower AlexNet (not the paper's)"),
    "cifar_fig1": _FIG1_RELU,
    "cifar_fig1_relu": _FIG1_RELU,
    "cifar_fig1_tanh": Network(partial(cifar_fig1_spec, "tanh"), CIFAR_INPUT, 10,
                               "the Figure-1 CIFAR-10 net with tanh units", _FIG1_INITS),
    "cifar_conv_local_13pct": Network(partial(cifar_conv_local_spec, False), CONV_LOCAL_INPUT, 10,
                                      "cuda-convnet's conv-local net without LRN"),
    "cifar_conv_local_11pct": Network(partial(cifar_conv_local_spec, True), CONV_LOCAL_INPUT, 10,
                                      "cuda-convnet's conv-local net with LRN"),
    "cifar_conv_local_11pct_pool2": Network(
        partial(cifar_conv_local_spec, True, pool=CONV_LOCAL_POOL2), CONV_LOCAL_INPUT, 10,
        "the 11% conv-local net with non-overlapping 2x2/2 max-pools"),
    "cifar_conv_fc": Network(partial(cifar_conv_fc_spec, False), CONV_LOCAL_INPUT, 10,
                             "conv-local's convolutions, then a hidden fc layer"),
    "cifar_conv_fc_dropout": Network(partial(cifar_conv_fc_spec, True), CONV_LOCAL_INPUT, 10,
                                     "cifar_conv_fc with dropout 0.5 on the hidden fc layer"),
}


def model_names() -> str:
    """'alexnet, alexnet_2012_code, ...': every name of ``MODELS``, for help and messages."""
    return ", ".join(MODELS)


def network(name: str) -> Network:
    """The ``MODELS`` entry of ``name``, or a ValueError that lists the names."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {model_names()}")
    return MODELS[name]


def build_model(name: str, num_classes: int | None = None, seed: int = 0, init: str | None = None,
                dtype=np.float32, dropout_mode: str = "paper") -> Sequential:
    """The network ``name`` of ``MODELS``, its weights drawn from ``Generator(seed)``.

    num_classes: its outputs (None: the entry's, 1000 for the ImageNet nets and
    10 for the CIFAR-10 ones).  init: one of the entry's named initializations
    (``--init``; cifar_fig1*: 'cuda-convnet' (default) or 'fan-in'; alexnet:
    'paper' (default), 'caffe' or 'kaiming'); None or 'default' for its default.
    """
    net = network(name)
    spec = net.spec(num_classes=net.num_classes if num_classes is None else num_classes,
                    **_init_arguments(name, net, init))
    size = net.input_size
    return build(spec, (3, size, size), seed, dtype, dropout_mode, name)


def _init_arguments(name: str, net: Network, init: str | None) -> dict:
    """The spec's keyword arguments of the named initialization ``init`` of ``net``."""
    if init in (None, "default"):
        return next(iter(net.inits.values()), {})
    if init in net.inits:
        return net.inits[init]
    if not net.inits:
        named = ", ".join(n for n, m in MODELS.items() if m.inits)
        raise ValueError(f"--init {init}: {name} has one initialization, its own; named ones "
                         f"are for {named}")
    raise ValueError(f"--init {init}: {name} takes {' or '.join(sorted(net.inits))}")


def model_input_size(name: str) -> int:
    """The input height and width of the network ``name`` of ``MODELS``."""
    return network(name).input_size


# --------------------------------------------------------------------------- #
# The networks the notebooks and the README build
# --------------------------------------------------------------------------- #
def alexnet(num_classes: int = 1000, seed: int = 0, dtype=np.float32,
            dropout_mode: str = "paper", init: str = "paper") -> Sequential:
    """The paper's AlexNet for (N, 3, 227, 227) inputs: 60,965,224 parameters at 1000 classes.

    ``init``: 'paper' (section 5), or 'caffe' or 'kaiming' (named deviations, see
    ``ALEXNET_INITS``).
    """
    return build_model("alexnet", num_classes, seed, init, dtype, dropout_mode)


def alexnet_2012_code(num_classes: int = 1000, seed: int = 0, dtype=np.float32,
                      dropout_mode: str = "paper") -> Sequential:
    """The 2012 code's AlexNet (layers-145) for (N, 3, 227, 227) inputs: 60,965,224
    parameters at 1000 classes, as ``alexnet()`` (the normalizations learn nothing)."""
    return build_model("alexnet_2012_code", num_classes, seed, None, dtype, dropout_mode)


def alexnet_torchvision(num_classes: int = 1000, seed: int = 0, dtype=np.float32) -> Sequential:
    """torchvision's single-tower AlexNet for (N, 3, 224, 224) inputs (61,100,840 parameters)."""
    return build_model("alexnet_torchvision", num_classes, seed, None, dtype)


def cifar_fig1(activation: str = "relu", num_classes: int = 10, seed: int = 0, dtype=np.float32,
               weight_stds: tuple = CUDA_CONVNET_STDS,
               input_size: int = CIFAR_INPUT) -> Sequential:
    """The Figure-1 CIFAR-10 net with ReLU or tanh neurons, for (N, 3, 32, 32) inputs
    (``input_size`` for other square inputs the layers take)."""
    spec = cifar_fig1_spec(activation, num_classes, weight_stds)
    return build(spec, (3, input_size, input_size), seed, dtype, name=f"cifar_fig1_{activation}")
