"""The swappable array backend.

Two questions are answered here, and nowhere else:

1. *Which array module?*  It follows the data: ``get_array_module(x)`` is
   ``cupy`` for a CuPy array and ``numpy`` for everything else.  Elementwise
   math in the layers (ReLU, dropout, the softmax) is written once against that
   module, ``xp``.
2. *Which kernels?*  The few operations that are not plain array math
   (the convolution's im2col/col2im and how it batches its GEMMs, pooling,
   local response normalization) come as a set of
   functions, the *ops* of a backend:

   ======== =================================================== ==========
   backend  kernels                                             arrays
   ======== =================================================== ==========
   numpy    the readable reference, in the layer modules        NumPy
   numba    compiled CPU kernels (``numpy_alexnet.fast``)       NumPy
   cupy     CUDA kernels through CuPy (``numpy_alexnet.fast``)  CuPy
   ======== =================================================== ==========

A backend may add *optional* ops, which the NumPy reference does without (its
callers then run the reference's own lines): ``fuse`` (runs of layers that
``Sequential`` runs as one step), ``momentum_update`` (``MomentumSGD.step``'s
lines in one pass) and ``linear_forward``/``linear_backward`` (``Linear``'s
products shared by the threads).  The Numba backend has all three.

Importing this module (or the package) never imports CuPy or Numba: the fast
backends are loaded the first time they are asked for, and a missing package
is reported then, with the command that installs it.
"""
from __future__ import annotations

import contextlib
import importlib
from types import SimpleNamespace

import numpy as np

BACKENDS = ("numpy", "numba", "cupy")

# The names every backend's ops must provide (same signatures as the reference).
OP_NAMES = (
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool_forward", "maxpool_backward",
    "avgpool_forward", "avgpool_backward",
    "lrn_forward", "lrn_backward",
    "relu_forward", "relu_backward", "tanh_forward", "tanh_backward",
    "local_forward", "local_backward",      # LocallyConnected2D: see _with_local_ops
)

_OPS_CACHE: dict[str, SimpleNamespace] = {}


class BackendUnavailable(RuntimeError):
    """A fast backend was asked for but its package or device is missing."""


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


def get_ops(name: str) -> SimpleNamespace:
    """The kernel functions of backend ``name`` ('numpy', 'numba' or 'cupy')."""
    if name in _OPS_CACHE:
        return _OPS_CACHE[name]
    if name == "numpy":
        from .layers import activation, conv, normalization, pooling
        ops = SimpleNamespace(
            im2col=conv.im2col, col2im=conv.col2im,
            conv2d_forward=conv.conv2d_forward, conv2d_backward=conv.conv2d_backward,
            maxpool_forward=pooling.maxpool_forward, maxpool_backward=pooling.maxpool_backward,
            avgpool_forward=pooling.avgpool_forward, avgpool_backward=pooling.avgpool_backward,
            lrn_forward=normalization.lrn_forward, lrn_backward=normalization.lrn_backward,
            relu_forward=activation.relu_forward, relu_backward=activation.relu_backward,
            tanh_forward=activation.tanh_forward, tanh_backward=activation.tanh_backward,
        )
    elif name == "numba":
        if not numba_available():
            raise BackendUnavailable(
                "the 'numba' backend needs Numba: pip install 'numpy-alexnet[numba]'")
        ops = importlib.import_module(".fast.numba_ops", __package__).OPS
    elif name == "cupy":
        import_cupy()
        ops = importlib.import_module(".fast.cupy_ops", __package__).OPS
    else:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    ops = _with_local_ops(name, ops)
    missing = [op for op in OP_NAMES if not hasattr(ops, op)]
    if missing:  # pragma: no cover - a programming error in a backend
        raise RuntimeError(f"backend {name!r} lacks ops {missing}")
    _OPS_CACHE[name] = ops
    return ops


# -- the locally connected layer's kernels, one module per backend ----------------------
# ``LocallyConnected2D`` (layers/local.py) keeps its kernels apart from the
# others: the reference in its layer module, the fast paths in
# fast/numba_local.py and fast/cupy_local.py.  They join each backend's ops here.
_LOCAL_MODULES = {"numpy": ".layers.local", "numba": ".fast.numba_local",
                  "cupy": ".fast.cupy_local"}


def _with_local_ops(name: str, ops: SimpleNamespace) -> SimpleNamespace:
    """``ops`` plus ``local_forward`` and ``local_backward`` of backend ``name``."""
    local = importlib.import_module(_LOCAL_MODULES[name], __package__)
    return SimpleNamespace(**vars(ops), local_forward=local.local_forward,
                           local_backward=local.local_backward)


def check_backend(name, device=None, who: str = "backend") -> None:
    """Raise unless this machine can run backend ``name`` (on GPU ``device``).

    A ValueError, naming ``who``, for a name not in ``BACKENDS`` or a device
    that is not a GPU number; :class:`BackendUnavailable` where the package or
    the device is missing.  ``.to()`` calls this before it moves anything, so
    a failed move leaves the layers where they were.
    """
    if not isinstance(name, str) or name not in BACKENDS:
        hint = (f" (backend names are lower case: {name.lower()!r})"
                if isinstance(name, str) and name.lower() in BACKENDS else "")
        raise ValueError(f"{who}: backend: expected one of {BACKENDS}, got {name!r}{hint}")
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
    """``x`` as an array of ``backend`` (on ``device`` for 'cupy')."""
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


def numba_cache_note() -> str:
    """Whether the Numba kernels are already compiled on disk, as a line for a run's start.

    ``cache=True`` keeps them in ``__pycache__`` next to ``fast/numba_ops.py``,
    or under ``$NUMBA_CACHE_DIR`` where that is set or the folder is read-only.
    """
    import os
    from pathlib import Path
    here = Path(__file__).parent / "fast" / "__pycache__"
    places = [here] + ([Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get("NUMBA_CACHE_DIR")
                       else [Path.home() / ".cache" / "numba"])
    if any(next(p.rglob("numba_ops.*.nbi"), None) for p in places if p.is_dir()):
        return "Numba kernels: compiled before, read from the disk cache"
    return ("Numba kernels: the first run compiles them, up to ~15 s (about 13 s on a 2-core "
            "machine), before the first batch; they are cached on disk after that")
