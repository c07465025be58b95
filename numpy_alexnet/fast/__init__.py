"""The fast paths: kernels that do what the NumPy reference does, faster.

* Numba, on the CPU: ``numba_conv`` (im2col, col2im and the convolution a
  chunk of the batch at a time), ``numba_pool`` (pooling), ``numba_ops``
  (LRN, the neurons, the fully connected layers' products, the momentum
  update), ``numba_local`` (the locally connected layer), ``fused`` (Conv2D ->
  neuron -> pool as one step), and ``numba_threads``, their one pool of threads.
* CuPy, on a GPU: ``cupy_ops`` and ``cupy_local``.

Each module registers the kernels it has with ``backend.register``, under
its backend's name; every other op of that backend is the reference's.  A
kernel takes and returns what the reference kernel of the same name does (the
state a forward hands its backward is its own, and only ever goes back to the
same backend).

Nothing here is imported with the package: this module only tells
``numpy_alexnet.backend`` how to load each backend (``declare``), which
happens the first time it is asked for, so ``import numpy_alexnet`` needs
neither Numba nor CuPy.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import backend


def _load_numba() -> None:
    if not backend.numba_available():
        raise backend.BackendUnavailable(
            "the 'numba' backend needs Numba: pip install 'numpy-alexnet[numba]'")
    from . import fused, numba_conv, numba_local, numba_ops, numba_pool  # noqa: F401  (they register)


def _load_cupy() -> None:
    backend.import_cupy()                         # BackendUnavailable, saying how to get it
    from . import cupy_local, cupy_ops  # noqa: F401  (they register)


backend.declare("numba", _load_numba)
backend.declare("cupy", _load_cupy)


def numba_cache_note() -> str:
    """Whether the Numba kernels are already compiled on disk, as a line for a run's start.

    ``cache=True`` keeps them in ``__pycache__`` next to this package's modules,
    or under ``$NUMBA_CACHE_DIR`` where that is set or the folder is read-only.
    """
    here = Path(__file__).parent / "__pycache__"
    places = [here] + ([Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get("NUMBA_CACHE_DIR")
                       else [Path.home() / ".cache" / "numba"])
    if any(next(p.rglob("numba_conv.*.nbi"), None) for p in places if p.is_dir()):
        return "Numba kernels: compiled before, read from the disk cache"
    return ("Numba kernels: the first run compiles them before the first batch (seconds to "
            "tens of seconds); they are cached on disk after that")
