"""What every layer shares: the ``Layer`` base class and input checks.

A layer is a class with

* hyperparameters, set in ``__init__`` and never changed by training;
* ``params`` and ``grads``: dicts with the same keys ('W', 'b'), the arrays
  being the learnable parameters and the gradients of the loss with respect to
  them (filled by ``backward``);
* ``forward(x, train)`` which keeps in ``self.cache`` exactly what
  ``backward`` needs, and ``backward(dout)`` which returns ``dx`` and fills
  ``grads``.

Bad input gets a :class:`LayerInputError` naming the layer, what was expected
and what came: ``forward`` starts with ``self.check_input(x, ...)`` and
``backward`` with ``self.check_dout(dout)``.  ``dout`` is dL/d(output), so it
must have the shape of the last forward's output; ``check_input`` remembers
the input's shape for that (``last_x_shape``) and ``output_shape`` turns it
into the output's.  Bad hyperparameters get a ``ValueError`` from the
constructor (``check_arg``), not a strange result at the first forward.

Hyperparameters are keyword-only (``LocalResponseNorm(n=5, k=2.0, alpha=1e-4,
beta=0.75)``): libraries order them differently (torch's LRN takes size,
alpha, beta, k), so a positional call could be silently misread.  Only the
sizes that define the weights' shapes (a Conv2D's in/out channels and kernel
size, a Linear's in/out features) are positional, and the name of a layer
without hyperparameters (``ReLU("relu1")``).  ``@keyword_only`` turns a
positional hyperparameter into a TypeError that shows the keyword call; a
subclass calls ``super().__init__(name=name)``.

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

import numpy as np

from ..backend import check_backend, get_ops, move_array


class LayerInputError(ValueError):
    """An input to a layer had the wrong shape, channel count or dtype."""


def is_finite_number(v) -> bool:
    """True for an int or float (NumPy's too) that is neither inf nor NaN; False for a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def check_net_input(who: str, x, input_shape: tuple) -> None:
    """A whole net's check of its input batch: an array of shape (N,) + ``input_shape``."""
    expected = f"(N, {', '.join(map(str, input_shape))})"
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise LayerInputError(f"{who}: input type: expected an array {expected}, "
                              f"got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise LayerInputError(f"{who}: input shape: expected {expected}, got {tuple(x.shape)}")


def check_dout(who: str, dout, expected: tuple | None) -> None:
    """The check at the top of a backward pass: ``dout`` must have the shape
    ``expected`` of the last forward's output (None: there was no forward).

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

    def __init__(self, name: str | None = None):
        self.name = name or type(self).__name__.lower()
        self.params: dict = {}
        self.grads: dict = {}
        self.cache = None
        self.last_x_shape: tuple | None = None   # the last good forward's input shape (check_input)
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
        self.cache, self.last_x_shape = None, None       # nothing to go back through
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

    # -- checks ------------------------------------------------------------------
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
        self.last_x_shape = None            # a forward that fails leaves nothing for backward
        raise LayerInputError(
            f"{type(self).__name__} '{self.name}': {what}: expected {expected}, got {got}")

    def check_input(self, x, ndim: int | None = None, channels: int | None = None,
                    min_hw: tuple | None = None, expected: str | None = None):
        """Raise a :class:`LayerInputError` naming this layer if ``x`` does not fit.

        ``expected`` is the shape as a person reads it, e.g. '(N, 3, H, W)'.
        """
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            self._fail("input type", "an array", type(x).__name__)
        if ndim is not None and x.ndim != ndim:
            self._fail("input shape", f"{ndim}-d {expected or ''}".strip(), tuple(x.shape))
        if channels is not None and x.shape[1] != channels:
            self._fail("input channels", f"{channels} channels in {expected or 'axis 1'}",
                       f"{x.shape[1]} (shape {tuple(x.shape)})")
        if min_hw is not None and (x.shape[-2] < min_hw[0] or x.shape[-1] < min_hw[1]):
            self._fail("input height/width", f"at least {min_hw[0]}x{min_hw[1]}",
                       f"{x.shape[-2]}x{x.shape[-1]} (shape {tuple(x.shape)})")
        if not np.issubdtype(np.dtype(x.dtype), np.floating):
            self._fail("input dtype", f"a floating dtype ({self.dtype or 'float32'})", x.dtype)
        if self.dtype is not None and x.dtype != self.dtype:
            self._fail("input dtype", f"{self.dtype} (the parameters' dtype)", x.dtype)
        if x.shape[0] < 1:
            self._fail("batch size", "at least 1 example", tuple(x.shape))
        self.last_x_shape = tuple(x.shape)        # for check_dout

    def check_dout(self, dout, expected: tuple | None = None) -> None:
        """Raise a :class:`LayerInputError` naming this layer unless ``dout`` has
        the shape of the last forward's output, or if there was no forward.

        ``expected`` defaults to (N,) + ``output_shape`` of the last input.
        """
        if self.last_x_shape is None:
            expected = None                               # no forward: check_dout says so
        elif expected is None:
            N, *example = self.last_x_shape
            expected = (N, *self.output_shape(tuple(example)))
        check_dout(f"{type(self).__name__} '{self.name}'", dout, expected)


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a convolution or pool along one axis (floor mode)."""
    return (size + 2 * pad - kernel) // stride + 1
