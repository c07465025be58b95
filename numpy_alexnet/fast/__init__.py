"""Compiled fast paths for the ops of ``numpy_alexnet.backend``.

* ``numba_ops``: CPU kernels compiled by Numba (``get_ops('numba')``).
* ``cupy_ops``: CUDA kernels through CuPy (``get_ops('cupy')``).

Neither module is imported by the package itself: ``backend.get_ops`` loads
one the first time its backend is asked for, so ``import numpy_alexnet``
needs neither Numba nor CuPy.  Each module exposes ``OPS``, a namespace with
every name in ``backend.OP_NAMES``, with the signatures and return
conventions of the NumPy reference kernels.  The max-pool *state* returned by
a forward is backend-specific and only ever handed back to the same
backend's backward.
"""
