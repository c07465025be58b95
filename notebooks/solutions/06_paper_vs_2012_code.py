"""Solutions to the exercises of notebook 06_paper_vs_2012_code. Try them first."""
import numpy as np


def dropout(x, keep, rate, mode, train):
    """x (any shape), keep (bool, like x) -> the output of dropout in `mode`."""
    p_keep = 1.0 - rate
    if mode == "paper":
        return x * keep if train else x * p_keep          # all neurons at test time, scaled
    if mode == "inverted":
        return x * keep / p_keep if train else x          # scaled in training instead
    raise ValueError(f"mode: expected 'paper' or 'inverted', got {mode!r}")


def positions_ceil(H, K, stride, pad):
    """ceil((H + 2 pad - K) / stride) + 1, in integers."""
    return -(-(H + 2 * pad - K) // stride) + 1            # ceil(a / b) = -floor(-a / b)
