"""The training recipes of the 2012 code's networks, as data, apart from the networks.

The networks are in ``models.py``; what trains them is here: learning rates,
their per-parameter multipliers, weight-decay multipliers and schedules, as
the 2012 code's layer-params files give them.  cuda-convnet gives each layer
a weight rate epsW and a bias rate epsB, and decays weights only (never
biases), by wc per layer.  As :class:`~numpy_alexnet.optim.MomentumSGD`
settings: ``lr`` is epsW, ``lr_mults`` give each bias epsB / epsW
(:func:`bias_lr_mults`), ``weight_decay`` times ``decay_mults`` is wc.
"""
from __future__ import annotations

from .models import ALEXNET_2012_INIT

# layer-params-conv-local-11pct.cfg (the 13% net's is the same); ``numpy-alexnet
# ablate`` trains the conv-local nets with it.  epsW 0.001 and epsB 0.002 in every
# layer: biases learn at twice their weights' rate.  wc: 0 in the convolutions,
# 0.004 in the local and fc layers (weights only).
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

# The conv-local recipe for cifar_conv_fc: decay 0.004 on the fc weights, none on
# the convolutions or any bias.
CONV_FC_RECIPE = dict(CONV_LOCAL_RECIPE, decay_mults={"conv1": 0.0, "conv2": 0.0, "fc3.b": 0.0,
                                                      "fc4.b": 0.0})

# The training recipe of the 2012 code's AlexNet (layer-params-145-2010.cfg), as
# data (no trainer reads it yet).  Per-layer rates are the file's final values
# (weights, biases); the bias rates were not lowered with the weights, and conv1
# ends frozen.  Weight decay is on weights only: decay_mults switch it off on
# every bias (= no_bias_decay(net)).
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


def bias_rate(recipe: dict) -> float:
    """epsB / epsW of a recipe: how much faster its biases learn (2 in the conv-local files)."""
    return recipe["lr_biases"] / recipe["lr_weights"]


def bias_lr_mults(net, mult: float) -> dict[str, float]:
    """``lr_mults`` giving every bias ('layer.b') of ``net`` ``mult`` times the learning rate.

    cuda-convnet's epsB = 2 * epsW is ``bias_lr_mults(net, 2.0)`` with ``lr`` = epsW.
    """
    return {name: float(mult) for name, _, key in net.named_params() if key == "b"}
