"""AlexNet as the paper ran it: two towers, each on a device of its own (section 3.2).

Each tower holds half the kernels of every layer.  The towers exchange
activations at four places only, and each exchange is one visible copy made by
:func:`cross_to`, named after the layer it feeds:

======================  ==================================================
crossing                what crosses
======================  ==================================================
``into_conv3``          pool2 (N, 128, 13, 13) of each tower to the other
``into_fc6``            the flattened pool5 (N, 4608) of each tower
``into_fc7``            fc6's output after dropout (N, 2048)
``into_fc8``            fc7's output after dropout (N, 2048)
``logits``              tower 1's half of fc8 to tower 0, where the loss is
======================  ==================================================

Backward, the gradient of each crossing goes back the same way, as one copy
named ``<crossing>.grad``.  Everything else stays on its tower's device.

On one device the two towers are exactly the single-device model with
``groups=2`` in conv2, conv4 and conv5 (docs/paper.md, "Two GPUs"): tower ``t``
holds filters ``[t*F/2, (t+1)*F/2)`` of every layer of
``models.alexnet(seed)``, so :func:`two_tower_alexnet` starts from the same
weights, and ``devices=(0, 0)`` gives the same numbers as
``alexnet(...).to('cupy', 0)``, up to the rounding of GEMMs split in two.

Devices: ``devices=(0, 1)`` places the towers on GPUs 0 and 1 (backend
'cupy'); ``devices=(None, None)`` keeps both on the host with the 'numpy' or
'numba' backend, which runs the same code (the crossings are then host
copies), so the tower logic is tested on any machine.

Dropout: one host generator per dropout layer, seeded as in the single
model, draws the whole (N, 4096) mask, and each tower takes its half.
"""
from __future__ import annotations

import contextlib
import copy

import numpy as np

from .backend import (check_backend, get_array_module, import_cupy, is_cupy_array, move_array,
                      to_numpy)
from .layers import Dropout
from .layers.base import check_dout, check_net_input
from .models import alexnet, build
from .net import KeyMismatchError, Sequential

CROSSINGS = ("into_conv3", "into_fc6", "into_fc7", "into_fc8", "logits")


def cross_to(x, device: int | None):
    """The one copy an activation makes when it crosses to the tower on ``device``.

    ``device=None`` is the host (a NumPy copy).  For a GPU the copy is made
    under the target device: CuPy's ``copy`` copies peer to peer from another
    device, or within the device when ``x`` is already there.
    """
    if device is None:
        return np.array(to_numpy(x), copy=True)
    cupy = import_cupy()
    with cupy.cuda.Device(device):
        return x.copy()


def _on(device: int | None):
    """Make ``device`` current for the allocations inside (a no-op on the host)."""
    if device is None:
        return contextlib.nullcontext()
    return import_cupy().cuda.Device(device)


def tower_spec(num_classes: int = 1000) -> dict[str, list]:
    """One tower, as data: the layers between crossings, each with half the kernels.

    Read next to ``models.alexnet_spec``: the input channels of conv3 and of
    fc6, fc7, fc8 are both towers' outputs (they come through a crossing).
    """
    if num_classes % 2:
        raise ValueError(f"two towers split fc8's outputs in half: num_classes must be even, "
                         f"got {num_classes}")
    lrn = dict(n=5, k=2.0, alpha=1e-4, beta=0.75)
    pool = dict(kernel_size=3, stride=2)
    return {
        "below_conv3": [
            ("conv1", "conv",    dict(in_channels=3, out_channels=48, kernel_size=11, stride=4)),
            ("relu1", "relu",    {}),
            ("norm1", "lrn",     lrn),
            ("pool1", "maxpool", pool),
            ("conv2", "conv",    dict(in_channels=48, out_channels=128, kernel_size=5, padding=2)),
            ("relu2", "relu",    {}),
            ("norm2", "lrn",     lrn),
            ("pool2", "maxpool", pool),
        ],
        "conv3_to_pool5": [                                   # after the crossing into_conv3
            ("conv3", "conv",    dict(in_channels=256, out_channels=192, kernel_size=3, padding=1)),
            ("relu3", "relu",    {}),
            ("conv4", "conv",    dict(in_channels=192, out_channels=192, kernel_size=3, padding=1)),
            ("relu4", "relu",    {}),
            ("conv5", "conv",    dict(in_channels=192, out_channels=128, kernel_size=3, padding=1)),
            ("relu5", "relu",    {}),
            ("pool5", "maxpool", pool),
            ("flatten", "flatten", {}),
        ],
        "fc6": [("fc6", "linear", dict(in_features=9216, out_features=2048)),
                ("relu6", "relu", {})],
        "fc7": [("fc7", "linear", dict(in_features=4096, out_features=2048)),
                ("relu7", "relu", {})],
        "fc8": [("fc8", "linear", dict(in_features=4096, out_features=num_classes // 2))],
    }


STAGES = ("below_conv3", "conv3_to_pool5", "fc6", "fc7", "fc8")
# The crossing that feeds each stage after the first, and the dropout before it.
_CROSSING_INTO = {"conv3_to_pool5": "into_conv3", "fc6": "into_fc6", "fc7": "into_fc7",
                  "fc8": "into_fc8"}
_DROPOUT_BEFORE = {"fc7": "drop6", "fc8": "drop7"}


class SplitDropout:
    """The single model's dropout layer, applied to the two towers' halves.

    The whole (N, 2*D) mask is drawn on the host by the single model's own
    generator, so a seed drops the same neurons in both models.
    """

    def __init__(self, layer: Dropout):
        self.layer = copy.deepcopy(layer)              # its own generator, in the same state
        self.cache = None

    def forward(self, halves: list, train: bool):
        layer = self.layer
        if not train:
            self.cache = None
            return [layer.forward(h, train=False) for h in halves]
        widths = [h.shape[1] for h in halves]
        N, dtype = halves[0].shape[0], halves[0].dtype
        keep = 1.0 - layer.rate
        mask = (layer.rng.random((N, sum(widths))) < keep).astype(dtype)     # (N, 2*D), host
        if layer.mode == "inverted":
            mask /= dtype.type(keep)
        parts = np.split(mask, [widths[0]], axis=1)                          # 2 x (N, D)
        self.cache = [move_array(m, "cupy" if is_cupy_array(h) else "numpy", _device_of(h))
                      for h, m in zip(halves, parts)]                        # each on its tower
        return [h * m for h, m in zip(halves, self.cache)]

    def backward(self, douts: list):
        if self.cache is None:
            raise RuntimeError(f"Dropout '{self.layer.name}': backward after a test-time "
                               "forward; to train, call forward(x, train=True)")
        return [d * m for d, m in zip(douts, self.cache)]


def _device_of(x) -> int | None:
    dev = getattr(x, "device", None)
    return getattr(dev, "id", None)


class TwoTowerAlexNet:
    """The paper's AlexNet as two towers on ``devices``; see the module docstring.

    ``forward(x, train=False)`` returns the logits (N, num_classes) on ``devices[0]``
    (or the host), in test mode unless ``train=True`` (so inference never drops
    units by accident); ``backward(dlogits)`` fills every layer's ``grads`` and
    returns dx on ``devices[0]``.  ``named_params`` and iteration over layers
    make it usable by :class:`~numpy_alexnet.optim.MomentumSGD`.
    """

    def __init__(self, single: Sequential, devices=(None, None), backend: str | None = None):
        devices = tuple(devices)
        if len(devices) != 2:
            raise ValueError(f"TwoTowerAlexNet: devices must name two devices, got {devices}")
        on_gpu = [d is not None for d in devices]
        if any(on_gpu) and not all(on_gpu):
            raise ValueError(f"TwoTowerAlexNet: both towers on GPUs or both on the host, "
                             f"got devices={devices}")
        self.backend = "cupy" if all(on_gpu) else (backend or "numpy")
        if self.backend == "cupy" and not all(on_gpu):
            raise ValueError("TwoTowerAlexNet: the 'cupy' backend needs devices=(i, j)")
        if all(on_gpu) and backend not in (None, "cupy"):
            raise ValueError(f"TwoTowerAlexNet: devices={devices} are GPUs, which need the "
                             f"'cupy' backend; got backend={backend!r}")
        for device in devices:
            check_backend(self.backend, device, who="TwoTowerAlexNet")
        _check_is_alexnet(single)
        self.devices = devices
        num_classes = single["fc8"].out_features
        spec = tower_spec(num_classes)
        dtype = single["conv1"].params["W"].dtype
        shapes = dict(zip((layer.name for layer in single), single.shapes()))
        stage_inputs = {"below_conv3": single.input_shape, "conv3_to_pool5": shapes["pool2"],
                        "fc6": shapes["flatten"], "fc7": shapes["fc6"], "fc8": shapes["fc7"]}
        self.towers = []                       # towers[t][stage] is a Sequential
        for t, device in enumerate(devices):
            stages = {}
            for stage in STAGES:
                net = build(spec[stage], stage_inputs[stage], dtype=dtype, name=f"tower{t}.{stage}")
                for layer in net:
                    if layer.params:
                        _copy_half(single[layer.name], layer, t)
                stages[stage] = net.to(self.backend, device)
            self.towers.append(stages)
        self.dropouts = {name: SplitDropout(single[name]) for name in ("drop6", "drop7")}
        self.input_shape = single.input_shape
        self.crossing_log: list[tuple[str, int, int]] = []
        self._logits_shape: tuple | None = None     # the last forward's output, for backward

    # -- the crossings -----------------------------------------------------------------
    def _cross(self, name: str, x, source: int, target: int):
        """Tower ``source``'s array to tower ``target``: one named copy, logged."""
        self.crossing_log.append((name, source, target))
        return cross_to(x, self.devices[target])

    def _exchange(self, name: str, halves: list) -> list:
        """Each tower's input: (own part, the other's part) joined in tower order on the channel axis."""
        joined = []
        for t in (0, 1):
            with _on(self.devices[t]):
                parts = [halves[s] if s == t else self._cross(name, halves[s], s, t)
                         for s in (0, 1)]
                joined.append(get_array_module(parts[0]).concatenate(parts, axis=1))
        self._widths[name] = [h.shape[1] for h in halves]
        return joined

    def _exchange_back(self, name: str, grads: list) -> list:
        """The gradient for tower s's part: the sum over both towers' inputs, in tower order."""
        w0 = self._widths[name][0]
        pieces = [[g[:, :w0], g[:, w0:]] for g in grads]         # pieces[t][s]: tower t's input, part s
        out = []
        for s in (0, 1):
            with _on(self.devices[s]):
                terms = [pieces[t][s] if t == s else self._cross(name + ".grad", pieces[t][s], t, s)
                         for t in (0, 1)]
                out.append(terms[0] + terms[1])
        return out

    # -- the two passes ------------------------------------------------------------------
    def _run(self, t: int, stage: str, x, train: bool):
        with _on(self.devices[t]):
            return self.towers[t][stage].forward(x, train)

    def _run_back(self, t: int, stage: str, dout, input_grad: bool = True):
        with _on(self.devices[t]):
            return self.towers[t][stage].backward(dout, input_grad)

    def forward(self, x, train: bool = False):
        check_net_input("TwoTowerAlexNet", x, self.input_shape)
        self._logits_shape = None
        self.crossing_log = []
        self._widths: dict[str, list] = {}
        h = [move_array(x, self.backend, d) for d in self.devices]     # the batch, on each tower
        for stage in STAGES:
            if stage in _DROPOUT_BEFORE:
                h = self.dropouts[_DROPOUT_BEFORE[stage]].forward(h, train)
            if stage in _CROSSING_INTO:
                h = self._exchange(_CROSSING_INTO[stage], h)
            h = [self._run(t, stage, h[t], train) for t in (0, 1)]
        with _on(self.devices[0]):
            other = self._cross("logits", h[1], 1, 0)
            logits = get_array_module(h[0]).concatenate([h[0], other], axis=1)   # (N, classes)
        self._logits_shape = tuple(logits.shape)
        return logits

    def backward(self, dlogits, input_grad: bool = True):
        """Gradients of both towers; dx of the input, or None with ``input_grad=False``."""
        check_dout("TwoTowerAlexNet", dlogits, self._logits_shape)     # (N, classes)
        w = self._logits_shape[1] // 2                                 # tower 0's classes
        d = [dlogits[:, :w], self._cross("logits.grad", dlogits[:, w:], 0, 1)]
        for stage in reversed(STAGES):
            need_dx = input_grad or stage != STAGES[0]
            d = [self._run_back(t, stage, d[t], need_dx) for t in (0, 1)]
            if not need_dx:
                return None
            if stage in _CROSSING_INTO:
                d = self._exchange_back(_CROSSING_INTO[stage], d)
            if stage in _DROPOUT_BEFORE:
                d = self.dropouts[_DROPOUT_BEFORE[stage]].backward(d)
        with _on(self.devices[0]):
            return d[0] + self._cross("input.grad", d[1], 1, 0)            # (N, 3, H, W)

    __call__ = forward

    # -- parameters ----------------------------------------------------------------------
    def __iter__(self):
        for tower in self.towers:
            for stage in STAGES:
                yield from tower[stage]

    def named_params(self):
        """('tower0.conv1.W', layer, 'W') for every parameter of both towers."""
        for t, tower in enumerate(self.towers):
            for stage in STAGES:
                for name, layer, key in tower[stage].named_params():
                    yield f"tower{t}.{name}", layer, key

    def num_params(self) -> int:
        return sum(layer.num_params() for layer in self)

    def _layer(self, t: int, name: str):
        for stage in STAGES:
            for layer in self.towers[t][stage]:
                if layer.name == name:
                    return layer
        raise KeyMismatchError(f"TwoTowerAlexNet: tower {t} has no layer {name!r}")

    def merged(self, what: str = "params") -> dict[str, np.ndarray]:
        """Host arrays of ``params`` (or ``grads``) in the single model's layout, 'conv1.W'."""
        out = {}
        for stage in STAGES:
            for layer in self.towers[0][stage]:
                for key in layer.params:
                    halves = [to_numpy(getattr(self._layer(t, layer.name), what)[key])
                              for t in (0, 1)]
                    axis = 1 if (key == "W" and halves[0].ndim == 2) else 0
                    out[f"{layer.name}.{key}"] = np.concatenate(halves, axis=axis)
        return out


def _check_is_alexnet(single) -> None:
    """``single`` must be the paper's AlexNet (``models.alexnet``): the towers split its layers."""
    what = "TwoTowerAlexNet: expected the paper's AlexNet from models.alexnet(...)"
    if not isinstance(single, Sequential):
        raise TypeError(f"{what}, got {type(single).__name__}")
    needed = [row[0] for stage in STAGES for row in tower_spec(2)[stage]] + ["drop6", "drop7"]
    names = {layer.name for layer in single}
    missing = [n for n in needed if n not in names]
    if missing or single.input_shape != (3, 227, 227):
        raise ValueError(f"{what} (input (3, 227, 227), layers {needed}); got "
                         f"Sequential '{single.name}' with input {single.input_shape}"
                         + (f", lacking layers {missing}" if missing else ""))


def _copy_half(src, dst, t: int) -> None:
    """Tower ``t``'s half of layer ``src``'s outputs into ``dst`` (host arrays, copied).

    Conv2D W (F, C/G, KH, KW): filters [t*F/2, (t+1)*F/2).  Linear W (D_in, D_out):
    columns [t*D_out/2, ...).  Biases: the same half of the outputs.
    """
    for key, value in src.params.items():
        value = to_numpy(value)
        axis = 1 if (key == "W" and value.ndim == 2) else 0        # Linear W is (D_in, D_out)
        half = value.shape[axis] // 2
        index = [slice(None)] * value.ndim
        index[axis] = slice(t * half, (t + 1) * half)
        part = np.ascontiguousarray(value[tuple(index)])
        if part.shape != tuple(dst.params[key].shape):
            raise ValueError(f"TwoTowerAlexNet: tower {t} layer {dst.name}.{key}: expected half "
                             f"of the paper's AlexNet, {dst.params[key].shape}, got {part.shape}")
        dst.params[key] = part.astype(dst.params[key].dtype)


def two_tower_alexnet(num_classes: int = 1000, seed: int = 0, dtype=np.float32,
                      dropout_mode: str = "paper", devices=(None, None),
                      backend: str | None = None) -> TwoTowerAlexNet:
    """The two-tower AlexNet with the weights of ``models.alexnet(num_classes, seed, dtype)``.

    ``devices=(0, 1)``: two GPUs; ``(0, 0)``: both towers on GPU 0; ``(None, None)``:
    the host, with ``backend`` 'numpy' (default) or 'numba'.
    """
    if backend is not None:                                # before building 61M weights
        check_backend(backend, who="two_tower_alexnet")
    single = alexnet(num_classes=num_classes, seed=seed, dtype=dtype, dropout_mode=dropout_mode)
    return TwoTowerAlexNet(single, devices=devices, backend=backend)
