"""Could Numba beat im2col + GEMM with a direct convolution?  One core, conv2's shapes.

    python benchmarks/direct_conv_numba.py

The Figure-1 net's conv2 (32 -> 32 channels, 5x5, pad 2, 15x15) for one
example, the unit the Numba backend works in (``numba_conv.CHUNK_BYTES``),
computed four ways on one core:

* ``im2col + GEMM``: the backend's own unfolding and one OpenBLAS SGEMM;
* ``GEMM alone``: the same SGEMM on columns already unfolded;
* ``direct, axpy``: no columns: every kernel tap (c, i, j) of every output
  channel adds w * (a shifted run of the padded input plane) into the output
  plane, on 'wide' rows (W + 4 columns, as ``numba_conv._col2im_wide``);
* ``direct, pixel-major``: the output laid out (pixels, channels), the inner
  loop over the 32 output channels (vectorized by LLVM), four pixels a pass.

Both direct kernels are compiled with ``fastmath=True`` (reassociation
allowed, the most LLVM can be given) and checked against the GEMM.  GFLOP/s
count the useful multiply-adds (2 * F * C * K * K * Ho * Wo), so the extra
columns of the wide rows are not credited.  The point it makes is in
docs/performance.md: LLVM's loops, without register blocking, reach a
fraction of what OpenBLAS's hand-tuned kernels do, so a Numba direct
convolution does not get the backend past the GEMM floor.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

C, F, K, H, PAD = 32, 32, 5, 15, 2
WP = H + 2 * PAD                                   # a padded row
L = H * WP                                         # wide output: H rows of WP columns


@numba.njit(fastmath=True)
def direct_axpy(xpad, W, out):
    # xpad: (C, WP*WP + slack), each padded plane flat; W: (F, C, K, K); out: (F, L), zeroed.
    for f in range(F):
        o = out[f]                                 # (L,), a view
        for c in range(C):
            for i in range(K):
                for j in range(K):
                    w = W[f, c, i, j]
                    src = xpad[c, i * WP + j:i * WP + j + L]   # (L,), a view: the shifted plane
                    for p in range(L):
                        o[p] += w * src[p]
    return out


@numba.njit(fastmath=True)
def direct_pixel_major(xpad, Wt, out):
    # Wt: (C, K, K, F); out: (L + 4, F), zeroed: pixels as rows, four per pass.
    for p in range(0, L, 4):
        a0, a1, a2, a3 = out[p], out[p + 1], out[p + 2], out[p + 3]   # (F,) views
        for c in range(C):
            for i in range(K):
                for j in range(K):
                    w = Wt[c, i, j]                # (F,)
                    base = i * WP + j + p
                    v0, v1 = xpad[c, base], xpad[c, base + 1]
                    v2, v3 = xpad[c, base + 2], xpad[c, base + 3]
                    for f in range(F):
                        a0[f] += v0 * w[f]
                        a1[f] += v1 * w[f]
                        a2[f] += v2 * w[f]
                        a3[f] += v3 * w[f]
    return out


def best_of(fn, repeats: int = 200) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    from threadpoolctl import threadpool_limits
    from numpy_alexnet.fast import numba_conv

    threadpool_limits(1, user_api="blas")
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, H), dtype=np.float32)
    W = rng.standard_normal((F, C, K, K), dtype=np.float32)
    Wm = W.reshape(F, C * K * K)                                   # (F, C*K*K)
    xpad = np.zeros((C, WP * WP + 8), dtype=np.float32)            # flat padded planes + slack
    xpad[:, :WP * WP].reshape(C, WP, WP)[:, PAD:PAD + H, PAD:PAD + H] = x[0]
    Wt = np.ascontiguousarray(W.transpose(1, 2, 3, 0))             # (C, K, K, F)

    buf = np.empty(C * K * K * H * H, dtype=np.float32)
    out = np.empty((F, H * H), dtype=np.float32)

    def im2col_gemm():
        cols = numba_conv._unfold_chunk(x, 0, 1, K, K, 1, PAD, H, H, buf)   # (C*K*K, 1, P)
        return np.matmul(Wm, cols.reshape(C * K * K, H * H), out=out)

    ref = im2col_gemm().copy()                                     # (F, P)
    cols = numba_conv._unfold_chunk(x, 0, 1, K, K, 1, PAD, H, H, buf).reshape(C * K * K, H * H).copy()
    wide = np.zeros((F, L), dtype=np.float32)
    pix = np.zeros((L + 4, F), dtype=np.float32)

    def axpy():
        wide[:] = 0
        return direct_axpy(xpad, W, wide)

    def pixel_major():
        pix[:] = 0
        return direct_pixel_major(xpad, Wt, pix)

    got_axpy = axpy().reshape(F, H, WP)[:, :, :H].reshape(F, H * H)
    got_pix = pixel_major()[:L].T.reshape(F, H, WP)[:, :, :H].reshape(F, H * H)
    scale = np.abs(ref).max()
    for name, got in (("axpy", got_axpy), ("pixel-major", got_pix)):
        err = np.abs(got - ref).max() / scale
        if err > 1e-5:
            raise SystemExit(f"direct {name} disagrees with the GEMM: max relative error {err:.1e}")

    flops = 2 * F * C * K * K * H * H
    print(f"conv2 of the Figure-1 net, one example, one core ({flops / 1e6:.1f} MFLOP useful)")
    for name, fn in (("im2col + GEMM", im2col_gemm), ("GEMM alone", lambda: np.matmul(Wm, cols, out=out)),
                     ("direct, axpy", axpy), ("direct, pixel-major", pixel_major)):
        s = best_of(fn)
        print(f"  {name:20s} {s * 1e6:7.0f} us   {flops / s / 1e9:6.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
