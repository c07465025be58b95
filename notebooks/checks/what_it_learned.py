"""Checks of notebook 5's exercises: the grey share of a kernel, and all pairwise
distances at once (no Python loop, no (n, m, D) array, float64)."""
from __future__ import annotations

import numpy as np

from . import array, fail, peak_bytes, python_lines


def _direct(a, b):
    """(n, m) squared distances the plain way, through an (n, m, D) array: small inputs only."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)


def test_sq_distances(sq_distances):
    r = np.random.default_rng(51)
    a, b = r.standard_normal((7, 5)).astype(np.float32), r.standard_normal((4, 5)).astype(np.float32)
    got = array(sq_distances(a, b), "the distances")
    if got.shape != (7, 4):
        fail(f"shape {got.shape}, expected (7, 4) = (len(a), len(b))")
    want = _direct(a, b)
    if np.allclose(got, np.sqrt(want)):
        fail("these are the distances; the exercise asks for their squares")
    if np.allclose(got, want + 2 * (a.astype(np.float64) @ b.T.astype(np.float64)), rtol=1e-6):
        fail("the cross term is -2 a.b: ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b")
    err = np.abs(got - want).max() / want.max()
    if not err < 1e-9:
        fail(f"relative difference {err:.1e} from the direct sum"
             + ("; that is float32 rounding: compute in float64 (np.asarray(a, dtype=np.float64))"
                if err < 1e-3 else ""))
    # The same points twice: each distance to itself is 0, and rounding may give a little less
    same = np.random.default_rng(53).standard_normal((50, 64)) * 1000
    got = array(sq_distances(same, same), "the distances")
    if got.min() < 0:
        fail(f"a distance of {got.min():.3g}: rounding can make ||a||^2 + ||b||^2 - 2 a.b dip below "
             "zero, which a distance never does: clip at 0 (np.maximum(d, 0))")
    # Float32 features a thousand times larger than their differences: float32 loses them
    base = r.standard_normal((1, 64)) * 1000
    close = (base + r.standard_normal((6, 64)) * 0.1).astype(np.float32)
    got = array(sq_distances(close, close[3:]), "the distances")
    want = _direct(close, close[3:])
    err = np.abs(got - want).max() / want.max()
    if not err < 1e-4:
        fail(f"features ~1000 that differ by ~0.1: relative error {err:.1e}; ||a||^2 and 2 a.b are "
             "~6e7 and their difference ~1, below float32's resolution: compute in float64 "
             "(np.asarray(a, dtype=np.float64))")
    # No Python loop over rows, no (n, m, D) array
    _, small = python_lines(sq_distances, r.standard_normal((5, 8)), r.standard_normal((4, 8)))
    _, large = python_lines(sq_distances, r.standard_normal((60, 8)), r.standard_normal((50, 8)))
    if large > small + 2:
        fail(f"your code ran {small} lines for 5 x 4 points and {large} for 60 x 50: a Python loop "
             "over rows; write it with matrix products and broadcasting only")
    n, m, D = 200, 200, 100
    _, peak = peak_bytes(sq_distances, r.standard_normal((n, D)), r.standard_normal((m, D)))
    if peak > 8 * n * m * D / 4:
        fail(f"{peak / 1e6:.0f} MB held at once for {n} x {m} points of {D} numbers: an (n, m, D) "
             f"array ({8 * n * m * D / 1e6:.0f} MB here, 41 GB for the notebook's 3,000 x 3,000 x 576); "
             "the matrix product a @ b.T holds only (n, m)")


def test_grey_share(grey_share):
    r = np.random.default_rng(52)
    flat_grey = np.repeat(r.standard_normal((2, 1, 5, 5)), 3, axis=1)           # R = G = B
    opponent = r.standard_normal((2, 3, 5, 5))
    opponent -= opponent.mean(axis=1, keepdims=True)                            # R + G + B = 0
    got = array(grey_share(np.concatenate([flat_grey, opponent])), "the shares")
    if got.shape != (4,):
        fail(f"shape {got.shape}, expected one number per kernel: (4,)")
    if np.allclose(got, [1 / 3, 1 / 3, 0, 0]):
        fail("a grey kernel gives 1/3: the grey part is repeated in all 3 channels, so its energy "
             "is 3 x sum(grey^2)")
    if np.allclose(got, [0, 0, 1, 1]):
        fail("a grey kernel gives 0 and a colour-opponent one 1: that is the colour part's share; "
             "the exercise asks for the grey part's")
    if not np.allclose(got, [1, 1, 0, 0]):
        fail(f"got {np.round(got, 3).tolist()} for two grey kernels and two colour-opponent ones, "
             "expected [1, 1, 0, 0]: the grey part is the mean over the 3 colour channels (axis 1)")
    rand = array(grey_share(r.standard_normal((2000, 3, 5, 5))), "the shares")
    if abs(rand.mean() - 1 / 3) > 0.01:
        fail(f"random kernels average {rand.mean():.3f}, expected about 1/3: energy is the sum of "
             "squares, in the grey part and in the whole kernel alike")
    W = r.standard_normal((6, 3, 4, 4))
    grey = W.mean(axis=1, keepdims=True)
    want = 3 * (grey ** 2).sum(axis=(1, 2, 3)) / (W ** 2).sum(axis=(1, 2, 3))
    if not np.allclose(array(grey_share(W), "the shares"), want):
        fail("4x4 kernels: the shares differ from 3 sum(grey^2) / sum(W^2), grey the channel mean")
