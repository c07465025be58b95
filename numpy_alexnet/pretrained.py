"""Pretrained weights in and out: the layouts of Caffe's and torchvision's AlexNet weights.

Three layouts are understood (``LAYOUTS``):

``bvlc``
    ``bvlc_alexnet.npy``, the Caffe weights converted by caffe-tensorflow and
    used by the TensorFlow ports: a pickled dict ``{'conv1': [W, b], ...}``.
    Convolution W is (KH, KW, C/G, F), fully connected W is (D_in, D_out), and
    the first fully connected layer after a feature map (fc6) sees its
    9216 inputs in TensorFlow's (H, W, C) flatten order, not ours (C, H, W).
``torchvision``
    a ``torchvision.models.alexnet`` state dict: ``features.0.weight`` ...
    ``classifier.6.bias``.  Convolution W is (F, C, KH, KW) like ours; Linear
    weight is (D_out, D_in), the transpose of ours.  It belongs to the
    single-tower network :func:`~numpy_alexnet.models.alexnet_torchvision`.
``numpy-alexnet``
    this project's own ``Sequential.state_dict()``: ``'conv1.W'`` ... saved
    with ``np.savez``, as the trainer's checkpoints hold it.

Axis legend: N batch, C input channels, F filters, G groups, KH, KW kernel
height and width, H, W feature-map height and width, D feature count.

Loading checks every layer (names, shapes) before it changes anything, and
an error names the file, the layer and both shapes.  Layers in ``skip`` are
not read from the file at all: they keep what they hold (the fresh
initialization, for a network built here), as the TF ports' ``SKIP_LAYER``.

Two conventions differ between this project and those tools, and are
converted so that the network computes the same function on either side:

* dropout: Caffe, TensorFlow and PyTorch use *inverted* dropout (scale by
  1/0.5 while training, nothing at test time); the paper (``mode='paper'``)
  multiplies by 0.5 at test time.  A Linear layer fed through a paper-mode
  dropout holds W / 0.5 of the tools' W, so that (0.5 * h) @ W_ours = h @ W_theirs.
* local response normalization: Caffe trained ``bvlc_alexnet`` with k=1 and
  alpha=1e-4 divided by n=5; the paper has k=2 and alpha=1e-4 multiplying the
  sum.  :func:`load_bvlc` building its own network gives it Caffe's constants
  (``lrn='caffe'``); :func:`use_caffe_lrn` does it to any network.

Files are read by ``weightfiles.py`` (``.npy`` pickles through a restricted
unpickler, ``.npz``, PyTorch's ``.pth``); fine-tuning (a new classifier, layers
drawn afresh or frozen) is ``finetune.py``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .files import atomic_write
from .layers import Conv2D, Dropout, Flatten, Linear, LocalResponseNorm
from .models import alexnet, alexnet_torchvision, build_model, model_names
from .net import Sequential
from .weightfiles import LAYOUTS_HELP, LabelledWeights, WeightsError, read_weights

LAYOUTS = ("bvlc", "torchvision", "numpy-alexnet")

# Our layer name -> torchvision.models.alexnet's module path (its nn.Sequential indexes).
TORCHVISION_KEYS = {
    "conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
    "conv4": "features.8", "conv5": "features.10",
    "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6",
}

# Caffe's LRN in bvlc_alexnet (local_size 5, alpha 1e-4, beta 0.75, k 1), in our
# convention where alpha multiplies the sum: alpha = 1e-4 / 5.
CAFFE_LRN = dict(n=5, k=1.0, alpha=1e-4 / 5, beta=0.75)

_STATE_KEY = re.compile(r"^(?P<layer>[^./]+)\.(?P<key>W|b)$")
_TORCH_KEY = re.compile(r"^(?P<module>(features|classifier)\.\d+)\.(?P<key>weight|bias)$")
# Where a training checkpoint .npz may keep the network's 'layer.key' arrays.
# 'param/' is numpy_alexnet.training.checkpoint's.
_CHECKPOINT_PREFIXES = ("", "param/", "params/", "model/")


def _key_str(k) -> str:
    return k.decode("latin1") if isinstance(k, bytes) else str(k)


def _checkpoint_params(weights: dict) -> dict | None:
    """The 'layer.key' arrays of a state dict or a checkpoint that holds one, else None."""
    keys = [_key_str(k) for k in weights]
    for prefix in _CHECKPOINT_PREFIXES:
        found = {k[len(prefix):]: weights[k0] for k, k0 in zip(keys, weights)
                 if k.startswith(prefix) and _STATE_KEY.match(k[len(prefix):])}
        if found and (prefix or len(found) == len(keys)):
            return found
    return None


def detect_layout(weights: dict) -> str:
    """'bvlc', 'torchvision' or 'numpy-alexnet', from the keys and values of a weights dict."""
    keys = [_key_str(k) for k in weights]
    if keys and all(_TORCH_KEY.match(k) for k in keys):
        return "torchvision"
    if keys and all(isinstance(v, (list, tuple, dict)) for v in weights.values()):
        return "bvlc"
    if _checkpoint_params(weights) is not None:
        return "numpy-alexnet"
    shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
    raise WeightsError(f"unknown weight layout (keys: {shown or 'none'}); "
                       f"understood layouts: {LAYOUTS_HELP}")


# --------------------------------------------------------------------------- #
# What each layer with parameters looks like from outside
# --------------------------------------------------------------------------- #
def _param_layers(net: Sequential) -> list[tuple]:
    """(layer, flatten_chw, dropout_keep) for every Conv2D and Linear of ``net``, in order.

    flatten_chw: for a Linear fed by a Flatten of a (C, H, W) map with H*W > 1,
    that (C, H, W) (fc6: (256, 6, 6)), else None.
    dropout_keep: the product of (1 - rate) of the paper-mode Dropout layers
    between this layer and the previous one with parameters (1.0 if none).
    """
    shapes = [tuple(net.input_shape)] + net.shapes()              # shapes[i] is layer i's input
    out, chw, keep = [], None, 1.0
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            s = shapes[i]
            chw = s if len(s) == 3 and s[1] * s[2] > 1 else None
        elif isinstance(layer, Dropout) and layer.mode == "paper":
            keep *= 1.0 - layer.rate
        elif isinstance(layer, (Conv2D, Linear)):
            out.append((layer, chw if isinstance(layer, Linear) else None, keep))
            chw, keep = None, 1.0
        elif layer.params:
            raise WeightsError(f"layer {layer.name}: {type(layer).__name__} has parameters "
                               "but no weight layout is defined for it")
    return out


def _bvlc_expected(layer) -> tuple[tuple, str]:
    if isinstance(layer, Conv2D):
        F, Cg, KH, KW = layer.params["W"].shape
        return (KH, KW, Cg, F), "(kh, kw, in/groups, out)"
    D_in, D_out = layer.params["W"].shape
    return (D_in, D_out), "(in, out)"


def _torch_expected(layer) -> tuple[tuple, str]:
    if isinstance(layer, Conv2D):
        return tuple(layer.params["W"].shape), "(out, in/groups, kh, kw)"
    D_in, D_out = layer.params["W"].shape
    return (D_out, D_in), "(out, in)"


def _bvlc_to_ours(W: np.ndarray, layer, chw) -> np.ndarray:
    if isinstance(layer, Conv2D):
        return W.transpose(3, 2, 0, 1)                # (KH, KW, Cg, F) -> (F, Cg, KH, KW)
    if chw is not None:                               # fc6: rows in (H, W, C) order -> (C, H, W)
        C, H, Wd = chw
        D_out = W.shape[1]
        W = W.reshape(H, Wd, C, D_out)                # (H*W*C, D) -> (H, W, C, D)
        W = W.transpose(2, 0, 1, 3)                   # (C, H, W, D)
        return W.reshape(C * H * Wd, D_out)           # (C*H*W, D)
    return W                                          # (D_in, D_out) as ours


def _ours_to_bvlc(W: np.ndarray, layer, chw) -> np.ndarray:
    if isinstance(layer, Conv2D):
        return W.transpose(2, 3, 1, 0)                # (F, Cg, KH, KW) -> (KH, KW, Cg, F)
    if chw is not None:                               # fc6: rows (C, H, W) -> TF's (H, W, C)
        C, H, Wd = chw
        D_out = W.shape[1]
        W = W.reshape(C, H, Wd, D_out)                # (C*H*W, D) -> (C, H, W, D)
        W = W.transpose(1, 2, 0, 3)                   # (H, W, C, D)
        return W.reshape(H * Wd * C, D_out)           # (H*W*C, D)
    return W


def _torch_to_ours(W: np.ndarray, layer, chw=None) -> np.ndarray:
    return W if isinstance(layer, Conv2D) else W.T    # Linear: (D_out, D_in) -> (D_in, D_out)


# --------------------------------------------------------------------------- #
# Import
# --------------------------------------------------------------------------- #
def _load_converted(net: Sequential, new: dict) -> Sequential:
    """Put the converted arrays ``new`` ('layer.key' -> array, ours) into ``net``.

    Parameters of skipped layers keep their values.  ``Sequential.load_state_dict``
    checks again and casts to each layer's dtype; nothing changes before every
    array has been checked.
    """
    state = net.state_dict()
    for k, v in new.items():
        state[k] = v
    net.load_state_dict(state)
    return net


def _check_names(net: Sequential, file_layers: list[str], skip, label: str, layout: str):
    ours = [layer.name for layer, _, _ in _param_layers(net)]
    all_names = {layer.name for layer in net.layers}
    unknown_skip = sorted(set(skip) - all_names)
    if unknown_skip:
        raise WeightsError(f"{label}: skip names layers {unknown_skip} that {net.name} does not "
                           f"have; its layers with weights: {ours}")
    problems = []
    missing = [n for n in ours if n not in skip and n not in file_layers]
    if missing:
        problems.append(f"layers {missing} of {net.name} are missing from the file (it has "
                        f"{file_layers}); pass skip={missing} to keep them as initialized")
    extra = [n for n in file_layers if n not in ours and n not in skip]
    if extra:
        problems.append(f"the file has layers {extra} that {net.name} does not have "
                        f"(its layers with weights: {ours}); is this the right model? "
                        f"{layout} layout")
    return problems


def _raise(label: str, problems: list[str]):
    if len(problems) == 1:
        raise WeightsError(f"{label}: {problems[0]}")
    raise WeightsError(f"{label}: {len(problems)} problems:\n  " + "\n  ".join(problems))


def _bvlc_entries(weights: dict, label: str) -> dict:
    """{'conv1': (W, b)} from {b'conv1' or 'conv1': [W, b] or (W, b) or {'weights', 'biases'}}."""
    out = {}
    for k, v in weights.items():
        name = _key_str(k)
        if isinstance(v, dict):
            v = {_key_str(a): b for a, b in v.items()}
            if set(v) != {"weights", "biases"}:
                raise WeightsError(f"{label}: layer {name}: expected [weights, biases] or "
                                   f"{{'weights', 'biases'}}, got keys {sorted(v)}")
            v = [v["weights"], v["biases"]]
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise WeightsError(f"{label}: layer {name}: expected [weights, biases], got "
                               f"{type(v).__name__} of length {len(v) if hasattr(v, '__len__') else '?'}")
        out[name] = (to_numpy(v[0]), to_numpy(v[1]))
    return out


def _fc8_classes(entries: dict, skip) -> int:
    """The classes of the file's fc8 (1000 if it is skipped or missing)."""
    fc8 = entries.get("fc8")
    return int(fc8[1].shape[0]) if fc8 is not None and "fc8" not in skip else 1000


def _convert(net: Sequential, entries: dict, skip, label: str, problems: list[str], expected,
             to_ours, where) -> Sequential:
    """Check the file's (W, b) of each layer against ``net``, convert them and load them.

    expected(layer): (W's shape in the file's layout, its axes); to_ours(W, layer,
    chw): W in ours; where(name, 'weight' or 'bias'): how a message names the
    file's array.  Every misfit (with ``problems`` found before) is raised at
    once, before anything changes.
    """
    new = {}
    for layer, chw, keep in _param_layers(net):
        name = layer.name
        if name in skip or name not in entries:
            continue
        W, b = entries[name]
        shape, axes = expected(layer)
        bias = tuple(layer.params["b"].shape)
        if tuple(W.shape) != shape:
            problems.append(f"{where(name, 'weight')}: weights have shape {tuple(W.shape)}, "
                            f"expected {shape} for {net.name}'s {name} {axes}")
        if tuple(b.shape) != bias:
            problems.append(f"{where(name, 'bias')}: biases have shape {tuple(b.shape)}, "
                            f"expected {bias} for {net.name}'s {name} (out,)")
        if problems:
            continue
        W = to_ours(W, layer, chw)
        new[f"{name}.W"] = W / keep if keep != 1.0 else W
        new[f"{name}.b"] = b
    if problems:
        _raise(label, problems)
    return _load_converted(net, new)


def load_bvlc(source, net: Sequential | None = None, skip=(), num_classes: int | None = None,
              lrn: str = "caffe") -> Sequential:
    """Load ``bvlc_alexnet.npy`` (a path or the dict it holds) into ``net``; return ``net``.

    net: default the paper's :func:`~numpy_alexnet.models.alexnet` with inverted
        dropout (as Caffe trained it), ``num_classes`` classes (default: fc8's
        size in the file, 1000 for the released weights), and Caffe's LRN
        constants when ``lrn='caffe'`` (``'paper'`` keeps k=2, alpha=1e-4).
        Any network with uniquely named Conv2D/Linear layers works: the file's
        keys are our layer names.
    skip: layer names not read from the file (the TF ports' SKIP_LAYER).

    Conversions: conv W (KH, KW, C/G, F) -> (F, C/G, KH, KW); fc6's rows from
    (H, W, C) to (C, H, W) order; W / (1 - rate) after a paper-mode dropout.
    The input channels of the released conv1 are Caffe's BGR order, on the
    0-255 scale minus the ImageNet mean: feed images the same way.
    """
    weights, label = read_weights(source)
    entries = _bvlc_entries(weights, label)
    skip = set(skip)
    if net is None:
        net = alexnet(num_classes=num_classes or _fc8_classes(entries, skip),
                      dropout_mode="inverted")
        if lrn == "caffe":
            use_caffe_lrn(net)
        elif lrn != "paper":
            raise ValueError(f"lrn: expected 'caffe' or 'paper', got {lrn!r}")
    problems = _check_names(net, list(entries), skip, label, "bvlc")
    return _convert(net, entries, skip, label, problems, _bvlc_expected, _bvlc_to_ours,
                    lambda name, key: f"layer {name}")


def load_torchvision(source, net: Sequential | None = None, skip=(),
                     num_classes: int | None = None) -> Sequential:
    """Load a torchvision AlexNet state dict (a .pth/.npz path or a dict) into ``net``.

    net: default :func:`~numpy_alexnet.models.alexnet_torchvision` (the single-tower
    network those weights belong to; not the paper's) with ``num_classes``
    classes (default: the file's).  torchvision expects RGB images scaled to
    0-1 and normalized by mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    Conversions: Linear weight (D_out, D_in) -> W (D_in, D_out); conv weights as they are.
    """
    weights, label = read_weights(source)
    skip = set(skip)
    by_module: dict[str, dict] = {}
    for k, v in weights.items():
        key = _key_str(k)
        m = _TORCH_KEY.match(key)
        if m is None:
            raise WeightsError(f"{label}: key {key!r} is not a torchvision AlexNet key "
                               f"('features.N.weight', 'classifier.N.bias', ...)")
        by_module.setdefault(m["module"], {})[m["key"]] = to_numpy(v)
    ours_by_module = {v: k for k, v in TORCHVISION_KEYS.items()}
    unknown = sorted(set(by_module) - set(ours_by_module))
    if unknown:
        raise WeightsError(f"{label}: modules {unknown} are not in torchvision's AlexNet "
                           f"(expected {sorted(ours_by_module)})")
    entries = {}
    for module, d in by_module.items():
        name = ours_by_module[module]
        if set(d) != {"weight", "bias"}:
            raise WeightsError(f"{label}: layer {name} ({module}): needs weight and bias, "
                               f"has {sorted(d)}")
        entries[name] = (d["weight"], d["bias"])
    if net is None:
        net = alexnet_torchvision(num_classes=num_classes or _fc8_classes(entries, skip))
    missing_names = sorted(set(TORCHVISION_KEYS) - {layer.name for layer, _, _ in _param_layers(net)})
    if missing_names:
        raise WeightsError(f"{label}: the torchvision layout maps layers {list(TORCHVISION_KEYS)}; "
                           f"{net.name} lacks {missing_names} (build alexnet_torchvision())")
    problems = _check_names(net, list(entries), skip, label, "torchvision")
    return _convert(net, entries, skip, label, problems, _torch_expected, _torch_to_ours,
                    lambda name, key: f"layer {name} ({TORCHVISION_KEYS[name]}.{key})")


def load_state(source, net: Sequential, skip=()) -> Sequential:
    """Load this project's own 'layer.key' arrays (``np.savez(path, **net.state_dict())``,
    or a training checkpoint that holds them) into ``net``; return ``net``."""
    weights, label = read_weights(source)
    params = _checkpoint_params(weights)
    if params is None:
        raise WeightsError(f"{label}: no 'layer.W'/'layer.b' arrays found; understood layouts: "
                           f"{LAYOUTS_HELP}")
    skip = set(skip)
    file_layers = list(dict.fromkeys(_STATE_KEY.match(k)["layer"] for k in params))
    problems = _check_names(net, file_layers, skip, label, "numpy-alexnet")
    new = {}
    for name, layer, key in net.named_params():
        if layer.name in skip or layer.name not in file_layers:
            continue
        if name not in params:
            problems.append(f"layer {layer.name}: parameter {name} is missing")
            continue
        a = to_numpy(params[name])
        if tuple(a.shape) != tuple(layer.params[key].shape):
            problems.append(f"layer {layer.name}: {key} has shape {tuple(a.shape)}, expected "
                            f"{tuple(layer.params[key].shape)} for {net.name}'s {name}")
        new[name] = a
    if problems:
        _raise(label, problems)
    return _load_converted(net, new)


def load_weights(source, net: Sequential | None = None, model: str | None = None, skip=(),
                 num_classes: int | None = None, layout: str | None = None, **kwargs) -> Sequential:
    """Load weights in any understood layout (detected from the keys unless ``layout`` is given).

    net: the network to fill; if None, ``model`` by name (see
    ``numpy_alexnet.models.MODELS``), or for the bvlc and torchvision layouts
    the network they belong to.  Returns the network.
    """
    weights, label = read_weights(source)
    layout = layout or detect_layout(weights)
    if layout not in LAYOUTS:
        raise WeightsError(f"unknown layout {layout!r}; understood layouts: {LAYOUTS_HELP}")
    if net is None and model is not None:
        if num_classes is None:
            num_classes = _file_num_classes(weights, layout, skip)
        net = build_model(model, num_classes)
    if layout == "bvlc":
        return load_bvlc(LabelledWeights(weights, label), net, skip, num_classes, **kwargs)
    if layout == "torchvision":
        return load_torchvision(LabelledWeights(weights, label), net, skip, num_classes)
    if net is None:
        raise WeightsError(f"{label}: a numpy-alexnet state dict does not say which network it "
                           f"belongs to; pass net=... or model=... (one of {model_names()})")
    return load_state(LabelledWeights(weights, label), net, skip)


def _file_num_classes(weights: dict, layout: str, skip) -> int | None:
    """The size of the file's last layer, to build a matching network by name."""
    if layout == "torchvision":
        b = weights.get("classifier.6.bias")
        return None if b is None or "fc8" in skip else int(to_numpy(b).shape[0])
    if layout == "bvlc":
        entries = {_key_str(k): v for k, v in weights.items()}
        last = list(entries)[-1] if entries else None
        if last is None or last in skip:
            return None
        return int(to_numpy(_bvlc_entries({last: entries[last]}, "")[last][1]).shape[0])
    params = _checkpoint_params(weights) or {}
    b_keys = [k for k in params if k.endswith(".b")]
    if not b_keys or b_keys[-1].split(".")[0] in skip:
        return None
    return int(to_numpy(params[b_keys[-1]]).shape[0])


# --------------------------------------------------------------------------- #
# Export
# --------------------------------------------------------------------------- #
def to_bvlc(net: Sequential) -> dict:
    """{'conv1': [W (KH, KW, C/G, F), b], ..., 'fc6': [W (H*W*C, D), b], ...} of ``net``."""
    out = {}
    for layer, chw, keep in _param_layers(net):
        W = to_numpy(layer.params["W"])
        W = W * W.dtype.type(keep) if keep != 1.0 else W
        out[layer.name] = [np.ascontiguousarray(_ours_to_bvlc(W, layer, chw)),
                           to_numpy(layer.params["b"]).copy()]
    return out


def save_bvlc(net: Sequential, path) -> Path:
    """Write ``net`` as a bvlc_alexnet.npy-style pickled dict (``np.save``); return the path.

    Opens in the TensorFlow ports: ``np.load(path, allow_pickle=True).item()``.
    """
    path = Path(path)
    obj = np.empty((), dtype=object)
    obj[()] = to_bvlc(net)                           # a 0-d object array holding the dict
    atomic_write(path, lambda f: np.save(f, obj, allow_pickle=True))   # a file: no '.npy' added
    return path


def to_torchvision(net: Sequential) -> dict:
    """{'features.0.weight': (F, C, KH, KW), ..., 'classifier.6.weight': (D_out, D_in), ...}.

    Only a single-tower net without LRN (``alexnet_torchvision()``, or one of its
    shape) fits torchvision's AlexNet: the paper's grouped net is refused, since
    torchvision's convolutions have no groups and its network no LRN, so the
    file would not load there (or would compute something else).
    """
    grouped = [f"{l.name} (groups={l.groups})" for l in net.layers
               if isinstance(l, Conv2D) and l.groups > 1]
    lrn = [l.name for l in net.layers if isinstance(l, LocalResponseNorm)]
    if grouped or lrn:
        what = "; ".join(part for part in (
            f"grouped convolutions {', '.join(grouped)}" if grouped else "",
            f"local response normalization {', '.join(lrn)}" if lrn else "") if part)
        raise WeightsError(
            f"{net.name}: cannot export to torchvision's AlexNet, a different, single-tower "
            f"network without groups or LRN; this net has {what} (the paper's two-tower "
            "AlexNet). Export a numpy_alexnet.models.alexnet_torchvision() net instead "
            "(fine-tuned from torchvision weights with load_weights), or keep this one in "
            "the project's own layout with save_state")
    names = {layer.name for layer, _, _ in _param_layers(net)}
    if not set(TORCHVISION_KEYS) <= names:
        raise WeightsError(f"{net.name}: the torchvision layout maps layers "
                           f"{list(TORCHVISION_KEYS)}; {net.name} lacks "
                           f"{sorted(set(TORCHVISION_KEYS) - names)}")
    out = {}
    for layer, _, keep in _param_layers(net):
        module = TORCHVISION_KEYS.get(layer.name)
        if module is None:
            raise WeightsError(f"{net.name}: layer {layer.name} has no place in torchvision's AlexNet")
        W = to_numpy(layer.params["W"])
        W = W * W.dtype.type(keep) if keep != 1.0 else W
        out[f"{module}.weight"] = np.ascontiguousarray(W if isinstance(layer, Conv2D) else W.T)
        out[f"{module}.bias"] = to_numpy(layer.params["b"]).copy()
    return out


def save_torchvision(net: Sequential, path) -> Path:
    """Write ``net`` as a torchvision AlexNet state dict; return the path.

    ``.pth``/``.pt``: ``torch.save`` of tensors (needs PyTorch), loads with
    ``torchvision.models.alexnet().load_state_dict(torch.load(path))``.
    ``.npz``: the same keys as NumPy arrays, no PyTorch needed.
    """
    path = Path(path)
    state = to_torchvision(net)
    if path.suffix == ".npz":
        atomic_write(path, lambda f: np.savez(f, **state))
        return path
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{path.name}: writing a .pth needs PyTorch: pip install torch "
                          "(or save to a .npz path instead)") from err
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    atomic_write(path, lambda f: torch.save(tensors, f))
    return path


def save_state(net: Sequential, path) -> Path:
    """Write this project's own layout: ``np.savez(path, **net.state_dict())``."""
    path = Path(path)
    atomic_write(path, lambda f: np.savez(f, **net.state_dict()))
    return path


# --------------------------------------------------------------------------- #
# Caffe's LRN constants
# --------------------------------------------------------------------------- #
def use_caffe_lrn(net: Sequential) -> Sequential:
    """Give every LRN layer Caffe's bvlc_alexnet constants (k=1, alpha=1e-4/5, one window
    over all channels, not per tower); return ``net``.

    Deviation from the paper's k=2, alpha=1e-4, named: the released weights
    were trained with these (see docs/finetuning.md).
    """
    for layer in net.layers:
        if isinstance(layer, LocalResponseNorm):
            layer.n, layer.k = CAFFE_LRN["n"], CAFFE_LRN["k"]
            layer.alpha, layer.beta = CAFFE_LRN["alpha"], CAFFE_LRN["beta"]
            if hasattr(layer, "groups"):
                layer.groups = 1                     # Caffe's window runs over all 96 (256) channels
    return net
