"""The checks of the notebooks' exercises, one module per notebook, and what they share.

A check is a function ``test_<exercise>(f, ...)`` whose parameters are named
after the learner's functions it tries (``nbtools.check`` finds them in the
notebook by those names).  It runs them on data of its own, on several shapes
(height different from width, stride above 1, padding, groups, ties, values
where float rounding shows), compares with the library and with central
differences in float64, and raises ``AssertionError`` with what is wrong.
Where the wrong answer is one a learner is known to write (alpha divided by n,
assigning where overlapping windows must add, ...), the message names that
mistake; ``checks/mistakes.py`` holds those wrong answers, and the tests run
each against its check.
"""
from __future__ import annotations

import sys
import sysconfig
import tracemalloc
from pathlib import Path

import numpy as np

from numpy_alexnet.gradcheck import numerical_gradient, rel_error

__all__ = ["fail", "rel_error", "numerical_gradient", "array", "values", "agree", "which",
           "python_lines", "peak_bytes", "spread", "TOL_GRAD", "TOL_SAME"]

TOL_GRAD = 1e-7         # against central differences in float64 (what the test suite demands)
TOL_SAME = 1e-10        # against the library in float64: the same sums, maybe in another order

_LIBRARY = Path(__file__).resolve().parents[2] / "numpy_alexnet"
_CHECKS = Path(__file__).resolve().parent
_PYTHON = tuple({str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("stdlib", "purelib", "platlib")})


def fail(message: str):
    raise AssertionError(message)


def array(value, what: str) -> np.ndarray:
    """``value`` as a float64 array, or a clear failure where it is not one."""
    if value is None:
        fail(f"{what} is None: return the array (a function without `return` gives None)")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"{what}: expected an array, got {type(value).__name__}")


def values(result, names: tuple, what: str) -> tuple:
    """A function's several return values: a tuple or a list of ``len(names)`` items."""
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = f"{type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list)) \
            else type(result).__name__
        fail(f"{what}: return {len(names)} values ({', '.join(names)}), got {got}")
    return tuple(result)


def agree(got, want, what: str, tol: float = TOL_SAME, hint: str = "") -> None:
    """Fail unless ``got`` has ``want``'s shape and lies within ``tol`` of it (relative error)."""
    got = array(got, what)
    hint = f"; hint: {hint}" if hint else ""
    if got.shape != np.shape(want):
        fail(f"{what} has shape {got.shape}, expected {np.shape(want)}{hint}")
    err = rel_error(got, want)
    if not err < tol:                       # also catches NaN
        fail(f"{what}: relative error {err:.1e} (expect < {tol:.0e}){hint}")


def which(got, mistakes: dict, tol: float = 1e-9) -> str | None:
    """The key of the first entry of ``mistakes`` ({hint: the wrong answer}) that ``got`` equals."""
    got = np.asarray(got, dtype=np.float64)
    for hint, wrong in mistakes.items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape == got.shape and rel_error(got, wrong) < tol:
            return hint
    return None


def _learners(filename: str) -> bool:
    """Code the learner wrote: a notebook cell, a solutions file or a wrong answer of
    mistakes.py, not Python's, NumPy's, the library's or a check's."""
    if filename.startswith("<frozen"):
        return False
    path = str(Path(filename).resolve()) if not filename.startswith("<") else filename
    checks = path.startswith(str(_CHECKS)) and not path.endswith("mistakes.py")
    return not (path.startswith(_PYTHON) or path.startswith(str(_LIBRARY)) or checks)


def python_lines(fn, *args):
    """(fn(*args), how many lines of the learner's own code ran): a loop over pixels or
    rows makes the count grow with the data, a loop over kernel offsets does not."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def on_call(frame, event, arg):
        return local if _learners(frame.f_code.co_filename) else None

    old = sys.gettrace()
    sys.settrace(on_call)
    try:
        result = fn(*args)
    finally:
        sys.settrace(old)
    return result, count


def peak_bytes(fn, *args):
    """(fn(*args), the most memory NumPy held at once during the call, beyond what was
    held before)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn(*args)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result, peak


def spread(shape, seed: int = 0, gap: float = 1e-3) -> np.ndarray:
    """Distinct float64 values, none near 0 and no two within ``gap`` of each other
    (relative): no ReLU input on its kink, no max-pool tie that a step h could flip."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n / 2 + 0.5) * gap
    v = v + np.sign(v) * gap / 2
    return np.random.default_rng(seed).permutation(v).reshape(shape) * (3.0 / (n * gap))
