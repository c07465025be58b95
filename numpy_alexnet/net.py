"""``Sequential``: layers applied in order, and gradients passed back in reverse."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .backend import check_backend, get_array_module, get_ops, register, to_numpy
from .layers.base import Layer, check_net_input


def no_fusion(layers: list) -> list:
    """The reference's ``fuse``: every layer is a step of its own."""
    return list(layers)


register("numpy", fuse=no_fusion)


class KeyMismatchError(KeyError):
    """A name that is not there (a layer, a parameter), as a KeyError whose
    message prints as written: ``str(KeyError(msg))`` would wrap it in quotes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Sequential:
    """A list of uniquely named layers.

    ``forward(x, train=False)`` runs them in order; ``backward(dout)`` runs
    their ``backward`` in reverse and returns dx.  What runs are the *steps*:
    the layers themselves, except that a fast backend may run a few layers as
    one fused step with the same results (``fuse``: Numba runs each
    Conv2D -> ReLU or Tanh -> pool in one pass over the data, see
    numpy_alexnet/fast/fused.py).  The steps are made when the net is built
    and each time it moves to a backend.  Test mode is the default,
    so ``net(x)`` for inference never drops units; training passes
    ``train=True`` (a backward after a test-mode forward through Dropout
    raises, naming the fix).  The loss is not part of the net:
    the trainer calls ``SoftmaxCrossEntropy`` on the logits.
    """

    def __init__(self, layers: list[Layer], input_shape: tuple | None = None,
                 name: str = "net"):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential '{name}': layer {i}: expected a Layer (such as "
                                f"Conv2D or ReLU from numpy_alexnet.layers), got "
                                f"{type(layer).__name__} {layer!r}")
        names = [layer.name for layer in layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Sequential '{name}': layer names must be unique; repeated: {dupes}")
        self.layers = layers
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.name = name
        self.steps = self._make_steps()

    # -- the two passes ----------------------------------------------------------
    def forward(self, x, train: bool = False):
        if self.input_shape is not None:
            check_net_input(f"Sequential '{self.name}'", x, self.input_shape)
        for step in self.steps:
            x = step.forward(x, train)
        return x

    def backward(self, dout, input_grad: bool = True):
        """Gradients of every layer; returns dx of the input, or None with ``input_grad=False``.

        Training needs no dx of the images: ``input_grad=False`` lets the
        first layer skip it (for conv1, a GEMM and a col2im).
        """
        for step in reversed(self.steps[1:]):
            dout = step.backward(dout)
        if not input_grad:
            self.steps[0].param_backward(dout)
            return None
        return self.steps[0].backward(dout)

    def _make_steps(self) -> list:
        """The layers as forward and backward run them (see the class docstring)."""
        return get_ops(self.backend).fuse(self.layers)

    __call__ = forward

    # -- parameters ------------------------------------------------------------------
    def named_params(self) -> Iterator[tuple[str, Layer, str]]:
        """(qualified name 'conv1.W', layer, key) for every parameter, in layer order."""
        for layer in self.layers:
            for key in layer.params:
                yield f"{layer.name}.{key}", layer, key

    def num_params(self) -> int:
        return sum(layer.num_params() for layer in self.layers)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter, keyed 'layer.key'."""
        return {name: to_numpy(layer.params[key]) for name, layer, key in self.named_params()}

    def load_state_dict(self, state: dict) -> None:
        """Load every parameter from ``state``; checks everything before changing anything."""
        ours = {name: (layer, key) for name, layer, key in self.named_params()}
        missing = sorted(set(ours) - set(state))
        unexpected = sorted(set(state) - set(ours))
        if missing or unexpected:
            raise KeyMismatchError(f"Sequential '{self.name}': state does not match; missing "
                                   f"{missing}, unexpected {unexpected}")
        for name, (layer, key) in ours.items():
            value, shape = state[name], tuple(layer.params[key].shape)
            if not hasattr(value, "shape") or not hasattr(value, "dtype"):
                raise ValueError(f"Sequential '{self.name}': parameter {name}: expected an array "
                                 f"of shape {shape}, got {type(value).__name__}")
            if tuple(value.shape) != shape:
                raise ValueError(f"Sequential '{self.name}': parameter {name}: expected shape "
                                 f"{shape}, got {tuple(value.shape)}")
            if not np.issubdtype(np.dtype(value.dtype), np.number):
                raise ValueError(f"Sequential '{self.name}': parameter {name}: expected numbers, "
                                 f"got dtype {value.dtype}")
            bad = int((~get_array_module(value).isfinite(value)).sum())
            if bad:
                raise ValueError(f"Sequential '{self.name}': parameter {name}: expected finite "
                                 f"values, got {bad} of {value.size} inf or NaN")
        for name, (layer, key) in ours.items():
            layer.params[key] = to_numpy(state[name]).astype(layer.params[key].dtype)
        for layer in self.layers:                 # back onto each layer's backend and device
            layer.to(layer.backend, layer.device)
        self.steps = self._make_steps()           # nothing cached to go back through

    # -- placement and dtype -------------------------------------------------------
    @property
    def backend(self) -> str:
        return self.layers[0].backend if self.layers else "numpy"

    def to(self, backend: str, device: int | None = None) -> "Sequential":
        """Run on 'numpy', 'numba' or 'cupy' (on GPU ``device``); parameters move.

        An unknown or unavailable backend raises before any layer moves.
        """
        check_backend(backend, device, who=f"Sequential '{self.name}'.to")
        for layer in self.layers:
            layer.to(backend, device)
        self.steps = self._make_steps()
        return self

    def astype(self, dtype) -> "Sequential":
        for layer in self.layers:
            layer.astype(dtype)
        return self

    # -- access --------------------------------------------------------------------
    def __getitem__(self, key) -> Layer:
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyMismatchError(f"Sequential '{self.name}' has no layer {key!r}; "
                                   f"layers: {[l.name for l in self.layers]}")
        return self.layers[key]

    def __setitem__(self, name: str, layer: Layer) -> None:
        """Put ``layer`` in place of the layer called ``name`` (fine-tuning's new classifier)."""
        i = self.layers.index(self[name])
        if not isinstance(layer, Layer) or layer.name != name:
            raise ValueError(f"Sequential '{self.name}': expected a Layer named {name!r} in "
                             f"its place, got {layer!r}")
        self.layers[i] = layer
        self.steps = self._make_steps()

    def __iter__(self):
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    # -- summary -------------------------------------------------------------------
    def shapes(self, input_shape: tuple | None = None) -> list[tuple]:
        """Each layer's output shape for one example (C, H, W) or (D,)."""
        shape = tuple(input_shape or self.input_shape)
        out = []
        for layer in self.layers:
            shape = layer.output_shape(shape)
            out.append(shape)
        return out

    def summary(self, input_shape: tuple | None = None) -> str:
        """A table of each layer's output shape (H x W x C as in the paper) and parameters."""
        shape = tuple(input_shape or self.input_shape)
        rows = [("layer", "type", "hyperparameters", "output", "params")]
        rows.append(("input", "", "", _fmt_shape(shape), ""))
        for layer, out in zip(self.layers, self.shapes(shape)):
            rows.append((layer.name, type(layer).__name__, layer.describe(), _fmt_shape(out),
                         f"{layer.num_params():,}" if layer.params else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if j < 4 else c.rjust(w)
                                   for j, (c, w) in enumerate(zip(r, widths))).rstrip())
            if i == 0:
                lines.append("-" * len(lines[0]))
        lines.append("-" * len(lines[0]))
        lines.append(f"Total parameters: {self.num_params():,}")
        return "\n".join(lines)


def _fmt_shape(shape: tuple) -> str:
    """(C, H, W) -> 'HxWxC' (the paper's order); (D,) -> 'D'."""
    if len(shape) == 3:
        C, H, W = shape
        return f"{H}x{W}x{C}"
    return "x".join(str(s) for s in shape)
