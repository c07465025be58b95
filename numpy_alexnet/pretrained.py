"""Pretrained weights in and out, and the fine-tuning recipe of the TensorFlow ports.

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

Reading a ``.pth`` needs PyTorch (``pip install torch``), imported only then.
``.npy`` pickles are read with a restricted unpickler that builds dicts,
lists and NumPy arrays and nothing else.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .layers import Conv2D, Dropout, Flatten, Linear, LocalResponseNorm
from .net import KeyMismatchError, Sequential

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


class WeightsError(ValueError):
    """A weight file that does not fit the network; the message names the file, layer and shapes."""


# --------------------------------------------------------------------------- #
# Reading files
# --------------------------------------------------------------------------- #
class _WeightsUnpickler(pickle.Unpickler):
    """Unpickle dicts, lists and tuples of NumPy arrays, and nothing else.

    A pickle can run any code it names; a weight file needs only these.
    """
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")


def _read_npy(path: Path):
    """A .npy file: a plain array, or the pickled object (a dict) inside a 0-d object array."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        readers = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            return np.load(path, allow_pickle=False)          # a plain array (or a clear error)
        shape, _, dtype = readers[version](f)
        if dtype.hasobject:
            try:
                # Python 2 pickles (the released file) need latin1 for the array bytes.
                obj = _WeightsUnpickler(f, encoding="latin1").load()
            except pickle.UnpicklingError as err:
                raise WeightsError(
                    f"{path}: {err}; only dicts of arrays are read.  If you trust the "
                    "file, np.load(path, allow_pickle=True).item() and pass the dict") from err
            return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    return np.load(path, allow_pickle=False)


def _read_torch(path: Path) -> dict:
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{path}: reading a .pth needs PyTorch: pip install torch "
                          "(or save the state dict as .npz: np.savez(path, **{k: v.numpy() ...}))"
                          ) from err
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return obj


def _is_torch_zip(path: Path) -> bool:
    """torch.save's zip format holds '<archive>/data.pkl'; an .npz holds only '.npy' members."""
    with zipfile.ZipFile(path) as z:
        return any(name.endswith("data.pkl") for name in z.namelist())


def read_weights(source) -> tuple[dict, str]:
    """(a dict of weights as the file holds them, a label for messages) from a path or dict.

    ``.npy``: a pickled dict (the bvlc layout); ``.npz``: a dict of arrays;
    ``.pth``/``.pt`` (or any file ``torch.save`` wrote): a PyTorch state dict.
    """
    if isinstance(source, _Labelled):
        return source, source.label
    if isinstance(source, dict):
        return source, "weights dict"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weight file")
    with open(path, "rb") as f:
        head = f.read(6)
    try:
        if head == b"\x93NUMPY":
            obj = _read_npy(path)
        elif head[:2] == b"PK":                                   # a zip: .npz or torch.save
            if _is_torch_zip(path):
                obj = _read_torch(path)
            else:
                with np.load(path, allow_pickle=False) as z:
                    obj = {k: z[k] for k in z.files}
        elif head[:1] == b"\x80" or path.suffix in (".pth", ".pt"):   # legacy torch pickle
            obj = _read_torch(path)
        else:
            raise WeightsError(f"{path}: not a .npy, .npz or PyTorch file; "
                               f"understood layouts: {_layouts_help()}")
    except (WeightsError, ImportError):
        raise
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile,
            pickle.UnpicklingError) as err:                       # truncated, corrupt
        raise WeightsError(f"{path}: not a readable weights file (truncated or corrupt: "
                           f"{type(err).__name__})") from err
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds a {type(obj).__name__} "
                           f"{getattr(obj, 'shape', '')}, not a dict of weights; "
                           f"understood layouts: {_layouts_help()}")
    return obj, str(path)


def _layouts_help() -> str:
    return ("'bvlc' (a .npy dict {'conv1': [W (KH, KW, C/G, F), b], ...}), "
            "'torchvision' (a state dict {'features.0.weight': (F, C, KH, KW), ...}), "
            "'numpy-alexnet' ({'conv1.W': ..., 'conv1.b': ...}, Sequential.state_dict())")


def _key_str(k) -> str:
    return k.decode("latin1") if isinstance(k, bytes) else str(k)


def _host(a) -> np.ndarray:
    """A NumPy array from a NumPy array or a torch tensor (without importing torch)."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


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
                       f"understood layouts: {_layouts_help()}")


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


def _torch_to_ours(W: np.ndarray, layer) -> np.ndarray:
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
        out[name] = (_host(v[0]), _host(v[1]))
    return out


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
        from .models import alexnet
        if num_classes is None:
            fc8 = entries.get("fc8")
            num_classes = fc8[1].shape[0] if fc8 is not None and "fc8" not in skip else 1000
        net = alexnet(num_classes=num_classes, dropout_mode="inverted")
        if lrn == "caffe":
            use_caffe_lrn(net)
        elif lrn != "paper":
            raise ValueError(f"lrn: expected 'caffe' or 'paper', got {lrn!r}")
    problems = _check_names(net, list(entries), skip, label, "bvlc")
    new = {}
    for layer, chw, keep in _param_layers(net):
        name = layer.name
        if name in skip or name not in entries:
            continue
        W, b = entries[name]
        expected, axes = _bvlc_expected(layer)
        if tuple(W.shape) != expected:
            problems.append(f"layer {name}: weights have shape {tuple(W.shape)}, expected "
                            f"{expected} for {net.name}'s {name} {axes}")
        if tuple(b.shape) != tuple(layer.params["b"].shape):
            problems.append(f"layer {name}: biases have shape {tuple(b.shape)}, expected "
                            f"{tuple(layer.params['b'].shape)} for {net.name}'s {name} (out,)")
        if problems:
            continue
        W = _bvlc_to_ours(W, layer, chw)
        new[f"{name}.W"] = W / keep if keep != 1.0 else W
        new[f"{name}.b"] = b
    if problems:
        _raise(label, problems)
    return _load_converted(net, new)


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
        by_module.setdefault(m["module"], {})[m["key"]] = _host(v)
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
        from .models import alexnet_torchvision
        if num_classes is None:
            fc8 = entries.get("fc8")
            num_classes = fc8[1].shape[0] if fc8 is not None and "fc8" not in skip else 1000
        net = alexnet_torchvision(num_classes=num_classes)
    missing_names = sorted(set(TORCHVISION_KEYS) - {layer.name for layer, _, _ in _param_layers(net)})
    if missing_names:
        raise WeightsError(f"{label}: the torchvision layout maps layers {list(TORCHVISION_KEYS)}; "
                           f"{net.name} lacks {missing_names} (build alexnet_torchvision())")
    problems = _check_names(net, list(entries), skip, label, "torchvision")
    new = {}
    for layer, _, keep in _param_layers(net):
        name = layer.name
        if name in skip or name not in entries:
            continue
        W, b = entries[name]
        expected, axes = _torch_expected(layer)
        module = TORCHVISION_KEYS[name]
        if tuple(W.shape) != expected:
            problems.append(f"layer {name} ({module}.weight): weights have shape "
                            f"{tuple(W.shape)}, expected {expected} for {net.name}'s {name} {axes}")
        if tuple(b.shape) != tuple(layer.params["b"].shape):
            problems.append(f"layer {name} ({module}.bias): biases have shape {tuple(b.shape)}, "
                            f"expected {tuple(layer.params['b'].shape)} for {net.name}'s {name} (out,)")
        if problems:
            continue
        W = _torch_to_ours(W, layer)
        new[f"{name}.W"] = W / keep if keep != 1.0 else W
        new[f"{name}.b"] = b
    if problems:
        _raise(label, problems)
    return _load_converted(net, new)


def load_state(source, net: Sequential, skip=()) -> Sequential:
    """Load this project's own 'layer.key' arrays (``np.savez(path, **net.state_dict())``,
    or a training checkpoint that holds them) into ``net``; return ``net``."""
    weights, label = read_weights(source)
    params = _checkpoint_params(weights)
    if params is None:
        raise WeightsError(f"{label}: no 'layer.W'/'layer.b' arrays found; understood layouts: "
                           f"{_layouts_help()}")
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
        a = _host(params[name])
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
        raise WeightsError(f"unknown layout {layout!r}; understood layouts: {_layouts_help()}")
    if net is None and model is not None:
        from .models import get_model
        if num_classes is None:
            num_classes = _file_num_classes(weights, layout, skip)
        net = get_model(model, **({} if num_classes is None else {"num_classes": num_classes}))
    if layout == "bvlc":
        return load_bvlc(_Labelled(weights, label), net, skip, num_classes, **kwargs)
    if layout == "torchvision":
        return load_torchvision(_Labelled(weights, label), net, skip, num_classes)
    if net is None:
        raise WeightsError(f"{label}: a numpy-alexnet state dict does not say which network it "
                           f"belongs to; pass net=... or model=... (one of the model names)")
    return load_state(_Labelled(weights, label), net, skip)


class _Labelled(dict):
    """A weights dict that remembers the name of the file it came from (for messages)."""

    def __init__(self, weights: dict, label: str):
        super().__init__(weights)
        self.label = label


def _file_num_classes(weights: dict, layout: str, skip) -> int | None:
    """The size of the file's last layer, to build a matching network by name."""
    if layout == "torchvision":
        b = weights.get("classifier.6.bias")
        return None if b is None or "fc8" in skip else int(_host(b).shape[0])
    if layout == "bvlc":
        entries = {_key_str(k): v for k, v in weights.items()}
        last = list(entries)[-1] if entries else None
        if last is None or last in skip:
            return None
        return int(_host(_bvlc_entries({last: entries[last]}, "")[last][1]).shape[0])
    params = _checkpoint_params(weights) or {}
    b_keys = [k for k in params if k.endswith(".b")]
    if not b_keys or b_keys[-1].split(".")[0] in skip:
        return None
    return int(_host(params[b_keys[-1]]).shape[0])


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
    with open(path, "wb") as f:                      # a file object: np.save adds no '.npy'
        np.save(f, obj, allow_pickle=True)
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
        with open(path, "wb") as f:
            np.savez(f, **state)
        return path
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{path.name}: writing a .pth needs PyTorch: pip install torch "
                          "(or save to a .npz path instead)") from err
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    return path


def save_state(net: Sequential, path) -> Path:
    """Write this project's own layout: ``np.savez(path, **net.state_dict())``."""
    path = Path(path)
    with open(path, "wb") as f:
        np.savez(f, **net.state_dict())
    return path


# --------------------------------------------------------------------------- #
# Fine-tuning
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


def classifier_name(net: Sequential) -> str:
    """The name of the last Linear layer (fc8 in AlexNet, fc10 in the Figure-1 net)."""
    for layer in reversed(net.layers):
        if isinstance(layer, Linear):
            return layer.name
    raise WeightsError(f"{net.name} has no Linear layer to act as its classifier")


def _init_args(net: Sequential, name: str) -> tuple[float, float]:
    """(weight_std, bias) that the model's spec gives layer ``name`` (section 5: 0.01, 0 or 1).

    Networks built from a spec in ``numpy_alexnet.models`` are looked up by
    their name; any other network gets N(0, 0.01) and bias 0.
    """
    from . import models
    specs = {"alexnet": models.alexnet_spec, "alexnet_torchvision": models.alexnet_torchvision_spec,
             "cifar_fig1_relu": lambda: models.cifar_fig1_spec("relu"),
             "cifar_fig1_tanh": lambda: models.cifar_fig1_spec("tanh")}
    spec = specs.get(net.name)
    if spec is not None:
        for lname, _, args in spec():
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
