"""The Numba backend's one pool of threads, for work that runs a share per thread.

The convolutions (``numba_conv``) and the fully connected layers' products
(``numba_ops``) run their GEMMs in NumPy (BLAS), a share of the work per
thread: each of ``numba.get_num_threads()`` Python threads takes a
contiguous, equal share (``shares``) and runs the serial compiled kernels on
it (they release the GIL) and a one-thread BLAS GEMM.

One pool of threads, never two: OpenBLAS's own threads spin for a while after
every GEMM, and when they and these threads take turns on the same cores,
each waits for the other.  So the first parallel call sets BLAS to one thread
*for the process* (threadpoolctl) and leaves it there (capping it only around
each convolution and restoring it after costs more than it saves; see
docs/performance.md).  Without threadpoolctl everything runs on one thread.
"""
from __future__ import annotations

import numba

_POOL = None      # the ThreadPoolExecutor, made at the first parallel call
_BLAS = None      # threadpoolctl's BLAS controllers


def shares(N: int, nb: int, T: int) -> list:
    """For each of T threads, its chunks (n0, m): thread t takes items
    t*N//T .. (t+1)*N//T - 1, so the shares differ by one item at most, in
    chunks of nb (the last of a share may be shorter)."""
    out = []
    for t in range(T):
        lo, hi = t * N // T, (t + 1) * N // T
        out.append([(n0, min(nb, hi - n0)) for n0 in range(lo, hi, nb)])
    return out


def over_chunks(work, N: int, nb: int) -> list:
    """[work(chunks of thread t) for each thread t], the threads at once, with the
    chunks as ``shares`` cuts them."""
    global _POOL, _BLAS
    T = min(numba.get_num_threads(), -(-N // nb))                        # ceil(N / nb) chunks at most
    if T > 1 and _POOL is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:          # without it BLAS threads cannot be capped: stay serial
            T = 1
        else:
            from concurrent.futures import ThreadPoolExecutor
            _BLAS = ThreadpoolController().select(user_api="blas").lib_controllers
            _POOL = ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS,
                                       thread_name_prefix="numpy_alexnet_conv")
    if T == 1 or _POOL is None:
        return [work(shares(N, nb, 1)[0])]
    for blas in _BLAS:
        if blas.get_num_threads() != 1:
            blas.set_num_threads(1)      # and left so (see the module docstring)
    futures = [_POOL.submit(work, chunks) for chunks in shares(N, nb, T)]   # each GEMM on its own core
    return [f.result() for f in futures]


def split(n: int, work) -> None:
    """``work(lo, hi)`` on one contiguous share of range(n) per thread, the threads at once."""
    nb = -(-n // max(1, numba.get_num_threads()))                        # ceil(n / T)
    over_chunks(lambda chunks: [work(n0, n0 + m) for n0, m in chunks], n, nb)
