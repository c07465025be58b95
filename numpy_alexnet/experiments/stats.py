"""The statistics the studies report: mean, standard deviation, a paired t-interval.

Runs are paired by seed: seed i of one arm starts from the same weights and
sees the same batches as seed i of the other, so the study compares the two
per seed and puts an interval on the mean of those differences.
"""
from __future__ import annotations

import math

import numpy as np

# Two-sided 95% quantiles of Student's t, t(0.975; df) for df = 1..30.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """t(0.975; df): the table for df <= 30, Cornish-Fisher's expansion beyond (error < 1e-3)."""
    if df < 1:
        raise ValueError(f"a t-interval needs at least 1 degree of freedom (2 seeds), got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_sd(values: list) -> dict:
    """Mean and sample standard deviation (n - 1) of the values that are not None."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return {"n": int(v.size), "mean": float(v.mean()) if v.size else None,
            "sd": float(v.std(ddof=1)) if v.size > 1 else None}


def paired_difference(without: list, with_: list) -> dict:
    """The gain ``without[i] - with_[i]`` per seed i, its mean and 95% t-interval.

    Seeds where either arm has no value (a run diverged or has not finished)
    are left out; ``seeds`` says which were used.  The interval is
    mean +- t(0.975; n - 1) * sd / sqrt(n) over the n per-seed gains (a
    paired t-interval); it needs n >= 2.
    """
    seeds = [i for i, (a, b) in enumerate(zip(without, with_)) if a is not None and b is not None]
    d = [without[i] - with_[i] for i in seeds]
    spread = mean_sd(d)
    out = {"seeds": seeds, "gains": [float(x) for x in d], "n": len(seeds),
           "mean": spread["mean"], "sd": spread["sd"], "ci95": None}
    if len(seeds) >= 2:
        half = t_quantile_975(len(seeds) - 1) * spread["sd"] / math.sqrt(len(seeds))
        out["ci95"] = [out["mean"] - half, out["mean"] + half]
    return out
