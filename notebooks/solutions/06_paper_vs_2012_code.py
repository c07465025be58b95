"""Solutions to the exercises of notebook 06_paper_vs_2012_code. Try them first."""


def dropout(x, keep, rate, mode, train):
    """x (any shape), keep (bool, like x) -> the output of dropout in `mode`."""
    p_keep = 1.0 - rate                                   # rate is the probability of dropping
    if mode == "paper":
        return x * keep if train else x * p_keep          # all neurons at test time, scaled
    if mode == "inverted":
        return x * keep / p_keep if train else x          # scaled in training instead
    raise ValueError(f"mode: expected 'paper' or 'inverted', got {mode!r}")


def dropout_backward(dout, keep, rate, mode):
    """dL/dx of a training forward: the same mask, the same scale."""
    return dout * keep / (1.0 - rate) if mode == "inverted" else dout * keep


def positions_ceil(H, K, stride, pad):
    """ceil((H + 2 pad - K) / stride) + 1, in integers."""
    return -(-(H + 2 * pad - K) // stride) + 1            # ceil(a / b) = -floor(-a / b)
