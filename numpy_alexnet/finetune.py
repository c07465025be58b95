"""Fine-tuning: a network started from pretrained weights, with layers made new or held.

The recipe of the TensorFlow ports of AlexNet (and of Caffe's examples):
load the weights (any layout of ``pretrained.py``) except the layers to learn
afresh, give the network a new classifier for its own classes, draw chosen
layers again, and freeze some or slow them down through the optimizer's
per-layer rate multipliers.  :func:`prepare_finetune` does it in one call, as
``numpy-alexnet train --init-from/--reinit/--freeze/--lr-mult`` does.
"""
from __future__ import annotations

import numpy as np

from .layers import Linear
from .models import MODELS
from .net import KeyMismatchError, Sequential
from .pretrained import WeightsError, load_weights


def classifier_name(net: Sequential) -> str:
    """The name of the last Linear layer (fc8 in AlexNet, fc10 in the Figure-1 net)."""
    for layer in reversed(net.layers):
        if isinstance(layer, Linear):
            return layer.name
    raise WeightsError(f"{net.name} has no Linear layer to act as its classifier")


def _init_args(net: Sequential, name: str) -> tuple[float, float]:
    """(weight_std, bias) that the model's spec gives layer ``name`` (section 5: 0.01, 0 or 1).

    A network built by name (``models.MODELS``) is looked up by its name; any
    other network gets N(0, 0.01) and bias 0.
    """
    if net.name in MODELS:
        for lname, _, args in MODELS[net.name].spec():
            if lname == name:
                return float(args.get("weight_std", 0.01)), float(args.get("bias", 0.0))
    return 0.01, 0.0


def replace_classifier(net: Sequential, num_classes: int, seed: int = 0,
                       weight_std: float | None = None, bias: float | None = None) -> Sequential:
    """Swap the last Linear layer for a new one with ``num_classes`` outputs; return ``net``.

    The new layer keeps the old one's name, inputs, dtype and backend; its
    weights are drawn from ``Generator(seed)``, N(0, 0.01) with bias 0 (the
    model's own initialization of that layer) unless given.
    """
    name = classifier_name(net)
    old = net[name]
    std0, bias0 = _init_args(net, name)
    new = Linear(old.in_features, int(num_classes),
                 weight_std=std0 if weight_std is None else weight_std,
                 bias=bias0 if bias is None else bias,
                 rng=np.random.default_rng(seed), dtype=old.params["W"].dtype, name=name)
    net[name] = new.to(old.backend, old.device)
    return net


def reinit_layers(net: Sequential, names, seed: int = 0) -> Sequential:
    """Draw the weights of the named layers afresh, as the model initializes them; return ``net``.

    W ~ N(weight_std) and b = constant, both from the model's spec (section 5);
    one ``Generator(seed)`` serves the layers in network order.
    """
    names = list(names)
    _check_layer_names(net, names, "reinit", need_params=True)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.name not in names:
            continue
        std, bias = _init_args(net, layer.name)
        shape, dtype = layer.params["W"].shape, layer.params["W"].dtype
        layer.params["W"] = (rng.standard_normal(shape) * std).astype(dtype)
        layer.params["b"] = np.full(layer.params["b"].shape, bias, dtype=dtype)
        layer.to(layer.backend, layer.device)        # back onto the layer's device
    return net


def _check_layer_names(net: Sequential, names, what: str, need_params: bool = False):
    layers = {layer.name: layer for layer in net.layers}
    with_params = [layer.name for layer in net.layers if layer.params]
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise KeyMismatchError(f"{what}: {net.name} has no layers {unknown}; layers with weights: "
                       f"{with_params}")
    if need_params:
        bare = [n for n in names if not layers[n].params]
        if bare:
            raise ValueError(f"{what}: layers {bare} of {net.name} have no weights; "
                             f"layers with weights: {with_params}")


def parse_names(text) -> list[str]:
    """'conv1,conv2' (or a list) -> ['conv1', 'conv2']: for --reinit and --freeze."""
    if text is None:
        return []
    if isinstance(text, str):
        text = text.split(",")
    return [t.strip() for t in text if t and t.strip()]


def parse_lr_mults(items) -> dict[str, float]:
    """['conv3=0.1', 'conv4=0.5'] or 'conv3=0.1,conv4=0.5' -> {'conv3': 0.1, 'conv4': 0.5}."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    out = {}
    for item in parse_names(",".join(items)):
        name, _, value = item.partition("=")
        try:
            mult = float(value)
        except ValueError:
            mult = -1.0
        if not name.strip() or not mult >= 0.0:
            raise ValueError(f"--lr-mult: expected LAYER=MULTIPLIER with a multiplier >= 0, "
                             f"got {item!r}")
        out[name.strip()] = mult
    return out


def prepare_finetune(net: Sequential, init_from=None, reinit=(), freeze=(), lr_mults=None,
                     num_classes: int | None = None, seed: int = 0, layout: str | None = None
                     ) -> tuple[Sequential, dict[str, float]]:
    """Fine-tuning in one call: (net, lr_mults for :class:`~numpy_alexnet.optim.MomentumSGD`).

    1. load ``init_from`` (a file in any layout, or a weights dict), skipping
       the layers in ``reinit`` and, when ``num_classes`` is given, the
       classifier (the last Linear layer);
    2. with ``num_classes``: replace the classifier by a fresh one of that size;
    3. re-initialize the ``reinit`` layers (as the model initializes them);
    4. ``freeze`` layers get multiplier 0 (the optimizer leaves them; the
       backward pass still runs through them), on top of ``lr_mults``
       ({layer: multiplier}, e.g. {'conv3': 0.1} for a slower layer).

    Every name is checked against ``net`` before anything is loaded.
    """
    reinit, freeze = parse_names(reinit), parse_names(freeze)
    lr_mults = dict(lr_mults or {})
    _check_layer_names(net, reinit, "reinit", need_params=True)
    _check_layer_names(net, freeze, "freeze", need_params=True)
    _check_layer_names(net, list(lr_mults), "lr_mults", need_params=True)
    both = sorted(set(reinit) & set(freeze))
    if both:
        raise ValueError(f"layers {both} are both re-initialized and frozen: they would stay random")
    clash = sorted(n for n in freeze if lr_mults.get(n, 0.0) != 0.0)
    if clash:
        raise ValueError(f"layers {clash} are frozen and also given a non-zero lr_mult")
    bad = sorted(n for n, m in lr_mults.items() if not m >= 0.0)
    if bad:
        raise ValueError(f"lr_mults for {bad} must be >= 0 (0 freezes)")
    clf = classifier_name(net)
    replace = num_classes is not None
    if replace and clf in freeze:
        raise ValueError(f"the classifier {clf} is replaced (num_classes={num_classes}) and frozen")
    if init_from is not None:
        skip = set(reinit) | ({clf} if replace else set())
        load_weights(init_from, net=net, skip=skip, layout=layout)
    if replace:
        replace_classifier(net, num_classes, seed=seed)
    rest = [n for n in reinit if not (replace and n == clf)]
    if rest:
        reinit_layers(net, rest, seed=seed + 1)
    mults = dict(lr_mults)
    mults.update({n: 0.0 for n in freeze})
    return net, mults
