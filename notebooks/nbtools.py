"""What every notebook's first cell needs: the repository on the path, a folder
for figures, the exercise checks, and the solutions (loaded only when asked).

    from nbtools import setup, check, solution, show
    ROOT, OUT = setup("02_lrn_and_pooling")

An exercise is a function the learner fills in; its stub raises
``NotImplementedError``.  The check cell after it calls ``check(name, test)``:
``test`` runs the learner's function and asserts what must hold, and ``check``
prints one line, ``exercise 2.1 (name): pass``, ``... wrong: <what>``,
``... error: <exception>`` or ``... not attempted`` (the stub is untouched).
A check never stops the notebook.

``f = solution(f)`` at the end of an exercise cell returns ``f`` itself, unless
``$NUMPY_ALEXNET_SOLUTIONS`` is ``1``: then it returns the function of the same
name from ``notebooks/solutions/<notebook>.py``.  The tests run every notebook
both ways.  Open the solution files only after trying.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_NOTEBOOK = {"name": None}


def setup(notebook: str):
    """Put the repository on sys.path; return (ROOT, OUT), OUT the folder for figures."""
    if not (ROOT / "numpy_alexnet").is_dir():
        raise FileNotFoundError(f"nbtools.py must sit in the repository's notebooks/ folder (found {HERE})")
    if str(ROOT) not in sys.path:           # works even without `pip install -e .`
        sys.path.insert(0, str(ROOT))
    if not (HERE / "solutions" / f"{notebook}.py").exists():
        raise FileNotFoundError(f"no solutions file notebooks/solutions/{notebook}.py")
    _NOTEBOOK["name"] = notebook
    # Figures go to an ignored folder (or $NUMPY_ALEXNET_NB_OUT), never into the repository.
    out = Path(os.environ.get("NUMPY_ALEXNET_NB_OUT", HERE / "_out"))
    out.mkdir(parents=True, exist_ok=True)
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    return ROOT, out


def cifar10_path() -> Path:
    """The shared CIFAR-10 archive (JPEG image folders), next to the repository, or
    wherever $NUMPY_ALEXNET_DATA points; a clear error where it is missing."""
    path = Path(os.environ.get("NUMPY_ALEXNET_DATA",
                               ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
    if not path.exists():
        raise FileNotFoundError(f"CIFAR-10 not found at {path}: set NUMPY_ALEXNET_DATA to the archive")
    return path


def solutions_requested() -> bool:
    return os.environ.get("NUMPY_ALEXNET_SOLUTIONS", "") == "1"


def solution(fn):
    """``fn`` itself, or with $NUMPY_ALEXNET_SOLUTIONS=1 the solution of the same name."""
    if not solutions_requested():
        return fn
    name = _NOTEBOOK["name"]
    if name is None:
        raise RuntimeError("call setup(notebook) before solution()")
    path = HERE / "solutions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, fn.__name__):
        raise AttributeError(f"{path.name} has no solution named {fn.__name__!r}")
    return getattr(module, fn.__name__)


def check(name: str, test) -> None:
    """Run ``test()`` and print one line saying how the exercise ``name`` stands."""
    try:
        test()
    except NotImplementedError:
        verdict = "not attempted (fill in the function above, run it, then run this cell again)"
    except AssertionError as e:
        verdict = f"wrong: {e}"
    except Exception as e:                  # the learner's code crashed: say how
        verdict = f"error: {type(e).__name__}: {e}"
    else:
        verdict = "pass"
    print(f"{name}: {verdict}")


def show(obj) -> None:
    """Print the source of a function or class, as it is in the repository."""
    src = inspect.getsource(obj)
    where = Path(inspect.getsourcefile(obj)).resolve().relative_to(ROOT)
    print(f"# {where}\n{src}", end="")
