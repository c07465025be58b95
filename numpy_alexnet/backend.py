"""The swappable array backend: which array module, and which kernels.

1. *Which array module?*  It follows the data: ``get_array_module(x)`` is
   ``cupy`` for a CuPy array and ``numpy`` for everything else, so the
   elementwise math of a layer (dropout, the softmax) is written once,
   against ``xp``.
2. *Which kernels?*  The operations of the layers (the convolution, pooling,
   local response normalization, the neurons, the fully connected products,
   the momentum update) are looked up by name in a registry:

   ========= ============================================= ==========
   backend   kernels                                       arrays
   ========= ============================================= ==========
   numpy     the readable reference, in the layer modules  NumPy
   numba     compiled CPU kernels (``numpy_alexnet.fast``) NumPy
   cupy      CUDA kernels through CuPy (``.fast``)         CuPy
   ========= ============================================= ==========

   Each layer module registers its reference kernels under 'numpy'
   (``register("numpy", conv2d_forward=..., ...)``); each fast module
   registers only the kernels it makes faster.  ``get_ops(name)`` is the
   reference with the backend's own kernels laid over it, so every op a
   layer calls exists on every backend.  A learner can register a backend
   of their own the same way (``register("mine", conv2d_forward=...)``,
   then ``net.to("mine")``): it runs on NumPy arrays, with the reference
   wherever it registers nothing.

This module imports no layer and no kernel.  The fast backends are
*declared* by ``numpy_alexnet.fast`` (``declare``: how to load them), and
loaded the first time they are asked for, so importing the package never
imports CuPy or Numba; a missing package is reported then, with the command
that installs it.
"""
from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np

BACKENDS = ("numpy", "numba", "cupy")

_KERNELS: dict[str, dict] = {}          # backend -> {op name: function}, as registered
_LOADERS: dict[str, object] = {}        # backend -> the function that imports its kernels
_OPS_CACHE: dict[str, SimpleNamespace] = {}


class BackendUnavailable(RuntimeError):
    """A fast backend was asked for but its package or device is missing."""


# -- the registry ------------------------------------------------------------------------
def register(backend: str, **ops) -> None:
    """Add kernels to ``backend``: the reference under 'numpy', a fast path's own elsewhere."""
    if not isinstance(backend, str) or not backend:
        raise ValueError(f"register: backend: expected a name such as 'numba', got {backend!r}")
    bad = sorted(name for name, fn in ops.items() if not callable(fn))
    if bad:
        raise TypeError(f"register({backend!r}): expected functions, got non-callables for {bad}")
    if backend != "numpy":
        unknown = sorted(set(ops) - set(_KERNELS.get("numpy", {})))
        if unknown:
            raise ValueError(f"register({backend!r}): {unknown} are not ops of the reference; "
                             f"ops: {sorted(_KERNELS.get('numpy', {}))}")
    _KERNELS.setdefault(backend, {}).update(ops)
    _OPS_CACHE.clear()                  # every backend's namespace includes the reference


def declare(backend: str, load) -> None:
    """How to load ``backend``'s kernels: ``load()`` imports the modules that register
    them, raising :class:`BackendUnavailable` where a package or device is missing."""
    _LOADERS[backend] = load


def backends() -> tuple:
    """The backends a net can be moved to: the built-in three, then any registered since."""
    return BACKENDS + tuple(b for b in _KERNELS if b not in BACKENDS)


def overrides(name: str) -> dict:
    """The kernels ``name`` registered itself (loading it first): what it does its own way."""
    get_ops(name)
    return dict(_KERNELS.get(name, {})) if name != "numpy" else {}


def reference_op(op: str):
    """The NumPy reference of ``op``: what a fast kernel falls back on for arrays it does not take."""
    return _KERNELS["numpy"][op]


def get_ops(name: str) -> SimpleNamespace:
    """The kernels of backend ``name``: the reference, with ``name``'s own laid over it."""
    if name in _OPS_CACHE:
        return _OPS_CACHE[name]
    if name not in backends():
        raise ValueError(f"unknown backend {name!r}; expected one of {backends()}")
    if name in _LOADERS:
        _LOADERS[name]()                # imports the fast modules, which register their kernels
    ops = SimpleNamespace(**{**_KERNELS.get("numpy", {}), **_KERNELS.get(name, {})})
    _OPS_CACHE[name] = ops
    return ops


# -- arrays ---------------------------------------------------------------------------------
def is_cupy_array(x) -> bool:
    """True for a CuPy array, decided without importing CuPy."""
    return type(x).__module__.split(".")[0] == "cupy"


def get_array_module(x):
    """``cupy`` for a CuPy array, ``numpy`` otherwise (as ``cupy.get_array_module``)."""
    if is_cupy_array(x):
        import cupy
        return cupy
    return np


def to_numpy(x) -> np.ndarray:
    """A host (NumPy) copy of ``x``; NumPy arrays are returned as they are."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def import_cupy():
    """Import CuPy, or raise :class:`BackendUnavailable` saying how to get it."""
    try:
        import cupy
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise BackendUnavailable(
            "the 'cupy' backend needs CuPy: pip install 'numpy-alexnet[gpu]' "
            f"(or the cupy wheel matching your CUDA); import failed with: {err}") from err
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # pragma: no cover - depends on the machine
        raise BackendUnavailable(f"the 'cupy' backend found no usable CUDA device: {err}") from err
    if n < 1:  # pragma: no cover
        raise BackendUnavailable("the 'cupy' backend found no CUDA device")
    return cupy


def cupy_available() -> bool:
    """True where CuPy imports and sees at least one CUDA device."""
    try:
        import_cupy()
    except BackendUnavailable:
        return False
    return True


def numba_available() -> bool:
    """True where Numba imports."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def check_backend(name, device=None, who: str = "backend") -> None:
    """Raise unless this machine can run backend ``name`` (on GPU ``device``).

    A ValueError, naming ``who``, for a name not in ``backends()`` or a device
    that is not a GPU number; :class:`BackendUnavailable` where the package or
    the device is missing.  ``.to()`` calls this before it moves anything, so
    a failed move leaves the layers where they were.
    """
    known = backends()
    if not isinstance(name, str) or name not in known:
        hint = (f" (backend names are lower case: {name.lower()!r})"
                if isinstance(name, str) and name.lower() in known else "")
        raise ValueError(f"{who}: backend: expected one of {known}, got {name!r}{hint}")
    if device is not None and (isinstance(device, bool) or not isinstance(device, (int, np.integer))
                               or device < 0):
        raise ValueError(f"{who}: device: expected None or a GPU number >= 0, got {device!r}")
    get_ops(name)                 # imports the backend's package: BackendUnavailable if missing
    if name == "cupy" and device is not None:
        count = import_cupy().cuda.runtime.getDeviceCount()
        if device >= count:
            raise ValueError(f"{who}: device: expected a GPU number below {count} "
                             f"(the GPUs CuPy sees), got {device}")


def move_array(x, backend: str, device: int | None = None):
    """``x`` as an array of ``backend`` (on ``device`` for 'cupy'; a host array otherwise)."""
    if backend == "cupy":
        cupy = import_cupy()
        with cupy.cuda.Device(0 if device is None else device):
            return cupy.asarray(x)
    return to_numpy(x)


def on_device_of(x):
    """A context that makes ``x``'s device current (a no-op for host arrays).

    Allocations such as ``xp.zeros_like`` land on the *current* CuPy device,
    so code that allocates next to an existing array wraps itself in this.
    """
    if is_cupy_array(x):
        return x.device
    return contextlib.nullcontext()


# -- 'auto': the backend a command runs on when none is named ---------------------------
def resolve_backend(name: str) -> tuple[str, str]:
    """(the backend to run on, why): ``auto`` is Numba where it imports, else NumPy.

    CuPy is never chosen by ``auto``: a GPU is used only when asked for
    (``--backend cupy``).  A named backend is returned as it is.
    """
    if name != "auto":
        return name, "asked for with --backend"
    try:
        import numba  # noqa: F401
    except ImportError as err:
        return "numpy", (f"--backend auto: Numba does not import ({err}); NumPy, the readable "
                         "reference, is slower: pip install 'numpy-alexnet[numba]'")
    return "numba", "--backend auto: Numba imports, so its compiled CPU kernels"
