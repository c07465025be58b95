"""What every layer shares: the ``Layer`` base class, and what a layer accepts.

A layer is a class with

* hyperparameters, set in ``__init__`` and never changed by training;
* ``params`` and ``grads``: dicts with the same keys ('W', 'b'), the arrays
  being the learnable parameters and the gradients of the loss with respect to
  them (filled by ``backward``);
* ``forward(x, train)``, which keeps in ``self.cache`` exactly what
  ``backward`` needs, and ``backward(dout)``, which returns ``dx`` and fills
  ``grads``.  Both are the layer's math and nothing else: each calls its
  kernel through ``self.ops``, the kernels of the layer's backend
  (``numpy_alexnet.backend``).

What a layer accepts is declared once, as data, on its class
(``accepts = Accepts(ndim=4, channels="in_channels", ...)``), and checked in
one place, outside the math: ``Layer`` wraps every subclass's ``forward`` and
``backward`` (``__init_subclass__``).  Before a forward runs, the input is
checked against ``accepts``; after it, the output's shape is kept; before a
backward runs, ``dout`` (dL/d(output)) must have that shape.  Bad input gets a
:class:`LayerInputError` naming the layer, what was expected and what came.
Bad hyperparameters get a ``ValueError`` from the constructor (``check_arg``),
not a strange result at the first forward.

Hyperparameters are keyword-only (``LocalResponseNorm(n=5, k=2.0, alpha=1e-4,
beta=0.75)``): libraries order them differently (torch's LRN takes size,
alpha, beta, k), so a positional call could be silently misread.  Only the
sizes that define the weights' shapes (a Conv2D's in/out channels and kernel
size, a Linear's in/out features) are positional, and the name of a layer
without hyperparameters (``ReLU("relu1")``).  ``@keyword_only`` turns a
positional hyperparameter into a TypeError that shows the keyword call.

``forward(x, train=False)``: inference is the default, so a forgotten
``train=`` never drops units; training passes ``train=True``.

Axis legend used in shape comments throughout: N batch, C channels (input),
F filters (output channels), G groups, H, W height and width, K kernel size,
P output positions (Ho * Wo).
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..backend import check_backend, get_ops, move_array, to_numpy


class LayerInputError(ValueError):
    """An input to a layer had the wrong shape, channel count or dtype."""


def is_finite_number(v) -> bool:
    """True for an int or float (NumPy's too) that is neither inf nor NaN; False for a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a convolution or pool along one axis (floor mode)."""
    return (size + 2 * pad - kernel) // stride + 1


# -- what a layer accepts ------------------------------------------------------------------
@dataclass(frozen=True)
class Accepts:
    """What a layer's ``forward`` accepts, declared on its class and checked before it runs.

    Always: an array of a floating dtype (the parameters' dtype, for a layer
    that has parameters) holding at least one example.  Then, where given:

    * ``ndim``: its number of axes;
    * ``channels``: the attribute that axis 1 must equal ('in_channels');
    * ``window``: the attributes (KH, KW, pad) of a sliding window: the input
      is at least (KH - 2 pad) x (KW - 2 pad);
    * ``size``: the attributes (H, W) that the height and width must equal;
    * ``groups``: the attribute that must divide axis 1;
    * ``labels``: forward's second argument is one integer label per row,
      each in [0, number of columns).

    ``shape`` is the input as a person reads it, ``{attribute}`` filled in
    from the layer: "(N, {in_channels}, H, W)".
    """
    ndim: int | None = None
    shape: str = ""
    channels: str | None = None
    window: tuple | None = None
    size: tuple | None = None
    groups: str | None = None
    labels: bool = False

    def check(self, layer: "Layer", x, *rest) -> None:
        """Raise a :class:`LayerInputError` naming ``layer`` unless ``x`` (and its labels) fit."""
        fail = functools.partial(_fail, layer)
        shape = self.shape.format(**vars(layer))
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            fail("input type", "an array", type(x).__name__)
        got = tuple(x.shape)
        if self.ndim is not None and x.ndim != self.ndim:
            fail("input shape", f"{self.ndim}-d {shape}".strip(), got)
        if self.channels is not None and x.shape[1] != getattr(layer, self.channels):
            fail("input channels", f"{getattr(layer, self.channels)} channels in {shape or 'axis 1'}",
                 f"{x.shape[1]} (shape {got})")
        if self.window is not None:
            kh, kw, pad = (getattr(layer, a) if a else 0 for a in self.window)
            if x.shape[-2] < kh - 2 * pad or x.shape[-1] < kw - 2 * pad:
                fail("input height/width", f"at least {kh - 2 * pad}x{kw - 2 * pad}",
                     f"{x.shape[-2]}x{x.shape[-1]} (shape {got})")
        if not np.issubdtype(np.dtype(x.dtype), np.floating):
            fail("input dtype", f"a floating dtype ({layer.dtype or 'float32'})", x.dtype)
        if layer.dtype is not None and x.dtype != layer.dtype:
            fail("input dtype", f"{layer.dtype} (the parameters' dtype)", x.dtype)
        if x.shape[0] < 1:
            fail("batch size", "at least 1 example", got)
        if self.groups is not None and x.shape[1] % getattr(layer, self.groups):
            fail("input channels", f"a multiple of groups={getattr(layer, self.groups)}", x.shape[1])
        if self.size is not None:
            H, W = (getattr(layer, a) for a in self.size)
            if got[2:] != (H, W):
                fail("input height/width", f"{H}x{W} (the weights are made for it; shape {shape})",
                     f"{x.shape[2]}x{x.shape[3]}")
        if self.labels:
            _check_labels(layer, x, *rest)


def _check_labels(layer: "Layer", logits, labels) -> None:
    """One integer label per row of ``logits`` (N, K), each in [0, K)."""
    N, K = logits.shape
    if not hasattr(labels, "shape"):
        labels = np.asarray(labels)
    if tuple(labels.shape) != (N,):
        _fail(layer, "labels shape", f"({N},) to match the logits", tuple(labels.shape))
    if not np.issubdtype(np.dtype(labels.dtype), np.integer):
        _fail(layer, "labels dtype", "integers", labels.dtype)
    lo, hi = int(to_numpy(labels.min())), int(to_numpy(labels.max()))
    if lo < 0 or hi >= K:
        _fail(layer, "label out of range", f"0 <= label < {K}", lo if lo < 0 else hi)


def _fail(layer: "Layer", what: str, expected, got):
    raise LayerInputError(
        f"{type(layer).__name__} '{layer.name}': {what}: expected {expected}, got {got}")


def check_net_input(who: str, x, input_shape: tuple) -> None:
    """A whole net's check of its input batch: an array of shape (N,) + ``input_shape``."""
    expected = f"(N, {', '.join(map(str, input_shape))})"
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise LayerInputError(f"{who}: input type: expected an array {expected}, "
                              f"got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise LayerInputError(f"{who}: input shape: expected {expected}, got {tuple(x.shape)}")


def check_dout(who: str, dout, expected: tuple | None) -> None:
    """The check before a backward pass: ``dout`` must have the shape ``expected`` of
    the last forward's output (None: there was no forward).

    ``who`` names the layer or net in the message.  Only the shape is
    compared: no copy, nothing on the device.
    """
    if expected is None:
        raise LayerInputError(f"{who}: backward before forward: call forward(x) first; backward "
                              f"uses what it caches (moving with .to() or a forward that fails "
                              f"its checks clears that)")
    if isinstance(dout, (int, float, np.number)):
        got = ()                                          # a scalar, e.g. the loss's dout=1.0
    elif hasattr(dout, "shape"):
        got = tuple(dout.shape)
    else:
        raise LayerInputError(f"{who}: dout type: expected an array of shape {expected}, "
                              f"got {type(dout).__name__}")
    if got != tuple(expected):
        raise LayerInputError(f"{who}: dout shape: expected {tuple(expected)} (the shape of the "
                              f"last forward's output), got {got}")


# -- the checked passes ----------------------------------------------------------------------
def _checked_forward(forward):
    """``forward`` preceded by the class's ``accepts`` check, and followed by keeping the
    output's shape (``backward`` checks dout against it).  The input (and the labels, for a
    loss) are forward's first (and second) argument, by position or by name."""
    names = list(inspect.signature(forward).parameters)[1:3]              # without self

    @functools.wraps(forward)
    def checked(self, *args, **kwargs):
        self.last_out_shape = None                # a forward that fails leaves nothing to go back through
        given = {**dict(zip(names, args)), **kwargs}
        if names and names[0] in given:           # (a missing input: forward's own TypeError)
            accepts = type(self).accepts
            labels = [given.get(names[1])] if accepts.labels and len(names) > 1 else []
            accepts.check(self, given[names[0]], *labels)
        out = forward(self, *args, **kwargs)
        self.last_out_shape = tuple(getattr(out, "shape", ()))
        return out
    checked.checked = True
    return checked


def _checked_backward(backward):
    """``backward`` preceded by the check that its first argument (dout, by position or by
    name) has the last forward's output shape."""
    first = next(iter(list(inspect.signature(backward).parameters.values())[1:]), None)

    @functools.wraps(backward)
    def checked(self, *args, **kwargs):
        dout = args[0] if args else kwargs.get(first.name, first.default) if first else None
        if first is not None and dout is not inspect.Parameter.empty:
            check_dout(f"{type(self).__name__} '{self.name}'", dout, self.last_out_shape)
        return backward(self, *args, **kwargs)
    checked.checked = True
    return checked


def keyword_only(init):
    """Decorate a layer's ``__init__`` whose hyperparameters follow a ``*``.

    A call with too many positional arguments raises a TypeError naming the
    layer and its keywords, e.g. for torch's order ``LocalResponseNorm(5, 1e-4,
    0.75, 2.0)``: "LocalResponseNorm takes its hyperparameters by keyword: ...".
    """
    params = list(inspect.signature(init).parameters.values())[1:]        # without self
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    keywords = [p.name for p in params if p.kind is p.KEYWORD_ONLY]

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs):
        if len(args) > len(positional):
            cls = type(self).__name__
            call = ", ".join(positional + [f"{k}=..." for k in keywords])
            raise TypeError(
                f"{cls} takes its hyperparameters by keyword: {cls}({call}); got "
                f"{len(args)} positional arguments {args!r}, where at most {len(positional)} "
                f"({', '.join(positional) or 'none'}) may be positional")
        return init(self, *args, **kwargs)
    return checked_init


class Layer:
    """Base class: no parameters, NumPy reference kernels, an empty cache."""

    accepts = Accepts()             # any floating array with a batch axis

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, check in (("forward", _checked_forward), ("backward", _checked_backward)):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "checked", False):
                setattr(cls, name, check(method))

    def __init__(self, name: str | None = None):
        self.name = name or type(self).__name__.lower()
        self.params: dict = {}
        self.grads: dict = {}
        self.cache = None
        self.last_out_shape: tuple | None = None  # the last good forward's output: dout's shape
        self.backend = "numpy"
        self.device: int | None = None

    # -- the two passes ------------------------------------------------------
    def forward(self, x, train: bool = False):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def param_backward(self, dout) -> None:
        """The backward pass of a net's first layer, whose dx nobody needs.

        Only the parameter gradients are wanted; a layer that can skip the
        work of dx (``Conv2D``) overrides this.
        """
        self.backward(dout)

    def output_shape(self, input_shape: tuple) -> tuple:
        """The shape of one example's output, given one example's input shape."""
        return tuple(input_shape)

    # -- helpers ---------------------------------------------------------------
    def set_params(self, **params) -> None:
        """The learnable parameters, and their gradients: zeros, which take no memory until
        touched (``np.zeros`` asks the OS for zeroed pages); a backward replaces them."""
        self.params = params
        self.grads = {k: np.zeros(v.shape, dtype=v.dtype) for k, v in params.items()}

    @property
    def ops(self):
        """The kernels of this layer's backend (see ``numpy_alexnet.backend``)."""
        return get_ops(self.backend)

    @property
    def dtype(self):
        """The parameters' dtype, or None for a layer without parameters."""
        for p in self.params.values():
            return p.dtype
        return None

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def to(self, backend: str, device: int | None = None) -> "Layer":
        """Move parameters (and gradients) to ``backend``'s arrays, in place.

        An unknown or unavailable backend raises before anything moves.
        """
        check_backend(backend, device, who=f"{type(self).__name__} '{self.name}'")
        params = {k: move_array(v, backend, device) for k, v in self.params.items()}
        grads = {k: move_array(v, backend, device) for k, v in self.grads.items()}
        self.params, self.grads = params, grads
        self.backend = backend
        self.device = device if backend == "cupy" else None
        self.cache, self.last_out_shape = None, None     # nothing to go back through
        return self

    def astype(self, dtype) -> "Layer":
        """Convert parameters to ``dtype`` (float64 for gradient checks)."""
        self.params = {k: v.astype(dtype) for k, v in self.params.items()}
        self.grads = {k: v.astype(dtype) for k, v in self.grads.items()}
        return self

    def describe(self) -> str:
        """A short description of the hyperparameters, for ``summary``."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}{', ' + self.describe() if self.describe() else ''})"

    # -- the constructors' and output_shape's checks ---------------------------------
    def check_arg(self, arg: str, value, ok: bool, allowed: str) -> None:
        """A constructor's check: raise a ValueError naming this layer, ``arg``,
        what is ``allowed`` and the ``value`` given, unless ``ok``."""
        if not ok:
            raise ValueError(f"{type(self).__name__} '{self.name}': {arg} must be {allowed}, "
                             f"got {value!r}")

    def check_int(self, arg: str, value, low: int) -> int:
        """``value`` as an int, after :meth:`check_arg` that it is a whole number >= ``low``."""
        try:
            ok = int(value) == value and int(value) >= low and not isinstance(value, bool)
        except (TypeError, ValueError, OverflowError):
            ok = False
        self.check_arg(arg, value, ok, f"an integer >= {low}")
        return int(value)

    def _fail(self, what: str, expected, got):
        _fail(self, what, expected, got)
