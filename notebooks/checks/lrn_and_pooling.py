"""Checks of notebook 2's exercises: local response normalization, and max and
average pooling over overlapping windows, each forward and backward.

The pools are tried on windows that add one difficulty at a time (height
different from width, a window wider than tall, no overlap, stride 1, an edge
that no window reaches), with ties; LRN with a large alpha, so that a window
off by one channel shows, and with the paper's constants on activations of
the size a trained conv1 gives, where the cross-channel term matters.
"""
from __future__ import annotations

import numpy as np

from numpy_alexnet.layers import AvgPool2D, LocalResponseNorm, MaxPool2D

from . import (TOL_GRAD, agree, array, fail, numerical_gradient, python_lines, spread, values,
               which)

# (what the case adds, x shape (N, C, H, W), KH, KW, stride): the first case that fails names the mistake
POOL_CASES = [
    ("the paper's 3x3 windows at stride 2", (2, 3, 9, 9), 3, 3, 2),
    ("height different from width", (2, 3, 9, 7), 3, 3, 2),
    ("a window 3 high and 2 wide", (2, 2, 9, 7), 3, 2, 2),
    ("2x2 windows at stride 2, which do not overlap", (1, 2, 8, 6), 2, 2, 2),
    ("stride 1, where a pixel lies in up to 9 windows", (1, 2, 6, 7), 3, 3, 1),
    ("rows and columns that no window reaches", (1, 2, 8, 10), 3, 3, 2),
]
CASE_HINTS = {
    "height different from width": "Ho comes from H and Wo from W: a square input hides a swap",
    "a window 3 high and 2 wide": "the window is KH rows by KW columns",
    "stride 1, where a pixel lies in up to 9 windows": "window (oy, ox) starts at pixel "
                                                      "(oy*stride, ox*stride): step each slice by stride",
    "rows and columns that no window reaches": "Ho = (H - KH) // stride + 1, rounded down: the last "
                                               "row of an 8-row input lies in no 3x3 window at stride 2",
}


def _failing_case(run):
    for case in POOL_CASES:
        try:
            run(case)
        except (NotImplementedError, NameError):
            raise
        except Exception as e:
            what = str(e) if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}"
            hint = CASE_HINTS.get(case[0]) if "hint:" not in what else None   # the closer hint first
            fail(f"{case[0]} (x {case[1]}, {case[2]}x{case[3]} at stride {case[4]}): {what}"
                 + (f"; hint: {hint}" if hint else ""))


def _no_pixel_loops(fn, small_args, large_args, what: str) -> None:
    _, small = python_lines(fn, *small_args)
    _, large = python_lines(fn, *large_args)
    if large > small + 2:
        fail(f"{what} ran {small} lines of your code on a small input and {large} on a larger "
             "one: a Python loop over windows or pixels; loop over the KH*KW window offsets "
             "only: offset (i, j) of every window at once is one strided slice, "
             "x[:, :, i:i + stride*Ho:stride, j:j + stride*Wo:stride]")


def _keeps_float32(out, what: str) -> None:
    if np.asarray(out).dtype != np.float32:
        fail(f"{what} is {np.asarray(out).dtype} for float32 input: keep the input's dtype "
             "(the network runs in float32)")


# -- 2.3 max-pool forward ---------------------------------------------------------------------
def test_maxpool_forward(maxpool_forward):
    rng = np.random.default_rng(21)

    def run(case):
        _, shape, kh, kw, stride = case
        x = rng.standard_normal(shape) - 1.0            # windows of negative values too
        want = MaxPool2D(kernel_size=(kh, kw), stride=stride).forward(x)
        got, _ = values(maxpool_forward(x, kh, kw, stride), ("out", "state"), "maxpool_forward")
        got = array(got, "out")
        ceil = tuple(-(-(d - k) // stride) + 1 for d, k in zip(shape[2:], (kh, kw)))
        if got.shape != want.shape and got.shape[2:] == ceil:
            fail(f"out has shape {got.shape}, expected {want.shape}; hint: Ho = (H - KH) // stride + 1, "
                 "rounded down (windows that would hang over the edge are not made)")
        if got.shape != want.shape:
            fail(f"out has shape {got.shape}, expected {want.shape}")
        agree(got, want, "out against the library's MaxPool2D", hint=which(got, {
            "start the running maximum from the first offset's values (or -inf), not from 0: a "
            "window of negative values has a negative maximum": np.maximum(want, 0)}) or "")

    _failing_case(run)
    out, _ = maxpool_forward(rng.standard_normal((2, 3, 9, 7)).astype(np.float32), 3, 3, 2)
    _keeps_float32(out, "out")
    _no_pixel_loops(maxpool_forward, (rng.standard_normal((1, 2, 5, 7)), 3, 3, 2),
                    (rng.standard_normal((3, 2, 13, 11)), 3, 3, 2), "maxpool_forward")


# -- 2.4 max-pool backward --------------------------------------------------------------------
def test_maxpool_backward(maxpool_forward, maxpool_backward):
    rng = np.random.default_rng(22)

    def run_on(x, kh, kw, stride):
        layer = MaxPool2D(kernel_size=(kh, kw), stride=stride)
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape)
        want = layer.backward(dout)
        _, state = values(maxpool_forward(x, kh, kw, stride), ("out", "state"), "maxpool_forward")
        got = array(maxpool_backward(dout, state, x.shape, kh, kw, stride), "dx")
        if got.shape != want.shape:
            fail(f"dx has shape {got.shape}, expected x's shape {want.shape}")
        agree(got, want, "dx against the library's MaxPool2D.backward")

    _probes(maxpool_forward, maxpool_backward)
    _failing_case(lambda case: run_on(rng.permutation(np.prod(case[1])).reshape(case[1]) / 10.0,
                                      *case[2:]))          # distinct values: no ties
    try:
        run_on(rng.integers(0, 3, size=(2, 2, 9, 7)).astype(np.float64), 3, 3, 2)   # many ties
    except AssertionError as e:
        fail(f"an input with ties (values 0, 1, 2): {e}")
    # Against central differences, on values without near-ties
    x = spread((2, 2, 7, 9), seed=22)
    layer = MaxPool2D(kernel_size=3, stride=2)
    dout = rng.standard_normal(layer.forward(x).shape)
    _, state = maxpool_forward(x, 3, 3, 2)
    agree(maxpool_backward(dout, state, x.shape, 3, 3, 2),
          numerical_gradient(lambda: float(np.sum(layer.forward(x) * dout)), x),
          "dx against central differences", tol=TOL_GRAD)
    x32 = x.astype(np.float32)
    _, s32 = maxpool_forward(x32, 3, 3, 2)
    _keeps_float32(maxpool_backward(dout.astype(np.float32), s32, x.shape, 3, 3, 2), "dx")

    def backward_of(v):                                 # the backward of a forward on v, dout = 1
        out, state = maxpool_forward(v, 3, 3, 2)
        return maxpool_backward(np.ones(np.shape(out)), state, v.shape, 3, 3, 2)
    _no_pixel_loops(backward_of, (rng.standard_normal((1, 2, 5, 7)),),
                    (rng.standard_normal((3, 2, 13, 11)),), "maxpool_backward (with maxpool_forward)")


def _probes(maxpool_forward, maxpool_backward):
    """Two inputs made to show the usual mistakes, each with its hint."""
    # The largest value of a 5x5 input at the centre, in all four 3x3 windows at stride 2
    x = np.arange(25.0).reshape(1, 1, 5, 5) / 100
    x[0, 0, 2, 2] = 1.0
    dout = np.array([[[[1.0, 2.0], [3.0, 5.0]]]])
    _, state = values(maxpool_forward(x, 3, 3, 2), ("out", "state"), "maxpool_forward")
    centre = array(maxpool_backward(dout, state, x.shape, 3, 3, 2), "dx")[0, 0, 2, 2]
    if centre in (1.0, 2.0, 3.0, 5.0):
        fail(f"the maximum of all four overlapping windows gets {centre:g}, one window's dout; "
             "expected 1 + 2 + 3 + 5 = 11: windows overlap, so add (+=) their gradients, do not assign (=)")
    if centre == 4.0:
        fail("the maximum of all four windows gets 4, one per window; expected 1 + 2 + 3 + 5 = 11: "
             "multiply by dout: each window sends its own dout[n, c, oy, ox], not 1")
    # One 3x3 window of equal values: a tie
    _, state = values(maxpool_forward(np.ones((1, 1, 3, 3)), 3, 3, 1), ("out", "state"), "maxpool_forward")
    dx = array(maxpool_backward(np.full((1, 1, 1, 1), 7.0), state, (1, 1, 3, 3), 3, 3, 1), "dx")[0, 0]
    if np.count_nonzero(dx) > 1:
        fail(f"a window of nine equal values sends its dout (7) to {np.count_nonzero(dx)} of them; a tie "
             "sends it to one only, the first in row-major order (np.argmax's choice): dx[0, 0] = 7")
    if dx[0, 0] != 7.0:
        fail(f"a window of nine equal values gives dx = {dx.tolist()}: a tie goes to the first maximum "
             "in row-major order (top-most, then left-most), dx[0, 0] = 7, not the last")


# -- 2.5 average pooling ----------------------------------------------------------------------
def test_avgpool(avgpool_forward, avgpool_backward):
    rng = np.random.default_rng(23)

    def run(case):
        _, shape, kh, kw, stride = case
        x = rng.standard_normal(shape)
        layer = AvgPool2D(kernel_size=(kh, kw), stride=stride)
        want = layer.forward(x)
        out, state = values(avgpool_forward(x, kh, kw, stride), ("out", "state"), "avgpool_forward")
        out = array(out, "out")
        if out.shape != want.shape:
            fail(f"out has shape {out.shape}, expected {want.shape}")
        agree(out, want, "out against the library's AvgPool2D", hint=which(out, {
            "divide each window's sum by its KH*KW inputs": want * kh * kw}) or "")
        dout = rng.standard_normal(want.shape)
        want_dx = layer.backward(dout)
        dx = array(avgpool_backward(dout, state, shape, kh, kw, stride), "dx")
        if dx.shape != want_dx.shape:
            fail(f"dx has shape {dx.shape}, expected x's shape {want_dx.shape}")
        assigned = np.zeros(shape)
        Ho, Wo = want.shape[2:]
        for i in range(kh):
            for j in range(kw):
                assigned[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] = dout / (kh * kw)
        agree(dx, want_dx, "dx against the library's AvgPool2D.backward", hint=which(dx, {
            "each of a window's KH*KW inputs gets dout / (KH*KW): the forward divided by KH*KW":
                want_dx * kh * kw,
            "windows overlap: add (+=) each window's share, do not assign (=)": assigned,
            "multiply by dout: each window shares out its own dout[n, c, oy, ox]":
                layer.backward(np.ones_like(dout))}) or "")

    _failing_case(run)
    x = rng.standard_normal((2, 2, 7, 9))
    layer = AvgPool2D(kernel_size=3, stride=2)
    dout = rng.standard_normal(layer.forward(x).shape)
    agree(avgpool_backward(dout, None, x.shape, 3, 3, 2),
          numerical_gradient(lambda: float(np.sum(layer.forward(x) * dout)), x),
          "dx against central differences", tol=TOL_GRAD)
    out32, s32 = avgpool_forward(x.astype(np.float32), 3, 3, 2)
    _keeps_float32(out32, "out")
    _keeps_float32(avgpool_backward(dout.astype(np.float32), s32, x.shape, 3, 3, 2), "dx")
    _no_pixel_loops(avgpool_forward, (rng.standard_normal((1, 2, 5, 7)), 3, 3, 2),
                    (rng.standard_normal((3, 2, 13, 11)), 3, 3, 2), "avgpool_forward")


# -- 2.1 and 2.2 local response normalization --------------------------------------------------------------
# (C, n, k, alpha, beta, activation scale): a large alpha so that a window off by one channel shows;
# the paper's constants on activations ~80, where alpha * sum is near k; a window wider than C.
LRN_CASES = [(7, 5, 2.0, 0.5, 0.75, 1.0), (8, 3, 1.0, 0.3, 0.75, 1.0), (9, 5, 2.0, 1e-4, 0.75, 80.0),
             (3, 5, 2.0, 0.5, 0.75, 1.0)]


def _lrn_cases(rng):
    """(what, a, the library's layer, n, k, alpha, beta) for each of LRN_CASES."""
    for C, n, k, alpha, beta, size in LRN_CASES:
        a = rng.standard_normal((2, C, 3, 4)) * size
        yield (f"C={C}, n={n}, k={k:g}, alpha={alpha:g}, beta={beta:g}", a,
               LocalResponseNorm(n=n, k=k, alpha=alpha, beta=beta), n, k, alpha, beta)


def window_sum(v, lo: int, hi: int, wrap: bool = False):
    """sum over j from i - lo to i + hi of v[:, j], cut at the channel ends or wrapped around."""
    C = v.shape[1]
    out = np.zeros_like(v)
    for i in range(C):
        js = [j % C for j in range(i - lo, i + hi + 1)] if wrap else range(max(0, i - lo), min(C - 1, i + hi) + 1)
        out[:, i] = sum(v[:, j] for j in js)
    return out


def _lrn_wrong(a, n, k, alpha, beta):
    """{hint: (out, scale)} for the forward mistakes a learner makes."""
    h = n // 2
    made = {
        "the paper's alpha multiplies the sum; dividing it by n first is Caffe's and PyTorch's "
        "convention (and the 2012 code's, notebook 6): the same number in another convention is "
        "another layer": k + alpha / n * window_sum(a * a, h, h),
        "the window is cut at channels 0 and C-1, not wrapped around: channel 0 has no neighbour "
        "below it": k + alpha * window_sum(a * a, h, h, wrap=True),
        "the window holds n channels, from i - n//2 to i + n//2 (n//2 = 2 for n = 5)":
            k + alpha * window_sum(a * a, h - 1, h - 1),
        "the window is centred on channel i: from i - n//2 to i + n//2, not from i to i + n - 1":
            k + alpha * window_sum(a * a, 0, n - 1),
        "the sum runs over the neighbouring channels of the window, not channel i alone":
            k + alpha * a * a,
        "the sum is of squares, a_j^2": k + alpha * window_sum(a, h, h),
    }
    wrong = {hint: (a * s ** -beta, s) for hint, s in made.items()}
    s = k + alpha * window_sum(a * a, h, h)
    wrong["divide by scale^beta: b = a * scale^(-beta)"] = (a * s ** beta, s)
    return wrong


def test_lrn_forward(lrn_forward):
    rng = np.random.default_rng(24)
    for where, a, layer, n, k, alpha, beta in _lrn_cases(rng):
        want = layer.forward(a)
        want_scale = k + alpha * window_sum(a * a, n // 2, n // 2)
        out, scale = values(lrn_forward(a, n, k, alpha, beta), ("out", "scale"), "lrn_forward")
        out, scale = array(out, "out"), array(scale, "scale")
        if np.isnan(out).any():
            fail(f"{where}: out holds NaN: a negative scale raised to -beta; the sum is of "
                 "squares, a_j^2, never negative")
        with np.errstate(invalid="ignore"):
            wrong = _lrn_wrong(a, n, k, alpha, beta)
        hint = which(out, {h: o for h, (o, _) in wrong.items()})
        agree(out, want, f"{where}: out against the library's LocalResponseNorm", hint=hint or "")
        agree(scale, want_scale, f"{where}: scale (k + alpha * the window's sum of squares, which "
                                 "the backward needs)")
    out, scale = lrn_forward(rng.standard_normal((2, 7, 3, 4)).astype(np.float32), 5, 2.0, 1e-4, 0.75)
    _keeps_float32(out, "out")


def test_lrn_backward(lrn_backward):
    rng = np.random.default_rng(25)
    for where, a, layer, n, k, alpha, beta in _lrn_cases(rng):
        b = layer.forward(a)
        dout = rng.standard_normal(a.shape)
        want = layer.backward(dout)
        h = n // 2
        s = k + alpha * window_sum(a * a, h, h)                     # the scale the forward keeps
        got = array(lrn_backward(dout, a, b, s, n, k, alpha, beta), "dx")
        if got.shape != a.shape:
            fail(f"{where}: dx has shape {got.shape}, expected {a.shape}")
        direct, g = dout * s ** -beta, dout * b / s
        cross = lambda coef, summed: direct - coef * a * summed
        hint = which(got, {
            "the sign: raising a_j raises s_i, which lowers every b_i of its window, so the "
            "cross-channel term is subtracted": direct + 2 * alpha * beta * a * window_sum(g, h, h),
            "alpha multiplies the sum in the forward, so d s_i / d a_j = 2 alpha a_j; dividing "
            "alpha by n is another convention (Caffe, PyTorch, the 2012 code)":
                cross(2 * alpha / n * beta, window_sum(g, h, h)),
            "the window is cut at channels 0 and C-1, not wrapped: the sum over i in w(j) uses the "
            "same cut window as the forward": cross(2 * alpha * beta, window_sum(g, h, h, wrap=True)),
            "a_j appears in the scale of every channel i whose window holds j, not only in its "
            "own: sum dout_i b_i / s_i over i in w(j)": cross(2 * alpha * beta, g),
            "the window holds n channels, from j - n//2 to j + n//2": cross(2 * alpha * beta, window_sum(g, h - 1, h - 1)),
            "d(a_j^2)/d a_j = 2 a_j: a factor 2 is missing": cross(alpha * beta, window_sum(g, h, h)),
            "the direct term: b_j = a_j s_j^-beta also changes with a_j itself, dout_j s_j^-beta":
                direct - dout * s ** -beta - 2 * alpha * beta * a * window_sum(g, h, h),
            "the inner sum is of dout_i b_i / s_i (the outputs), not dout_i a_i / s_i":
                cross(2 * alpha * beta, window_sum(dout * a / s, h, h)),
            "the cross-channel term carries a factor a_j (from d(a_j^2) = 2 a_j da_j)":
                direct - 2 * alpha * beta * window_sum(g, h, h)})
        agree(got, want, f"{where}: dx against the library's LocalResponseNorm.backward", hint=hint or "")
        f = lambda: float(np.sum(layer.forward(a) * dout))
        agree(got, numerical_gradient(f, a), f"{where}: dx against central differences", tol=TOL_GRAD)
    a32 = rng.standard_normal((2, 7, 3, 4)).astype(np.float32)
    s32 = np.float32(2.0) + np.float32(1e-4) * window_sum(a32 * a32, 2, 2)
    _keeps_float32(lrn_backward(a32, a32, a32 * s32 ** -0.75, s32, 5, 2.0, 1e-4, 0.75), "dx")
