"""What every notebook's first cell needs: the repository on the path, a folder
for figures, the exercise checks, and the solutions (loaded only when asked).

    from nbtools import setup, check, solution, show
    import checks.layers as checks
    ROOT, OUT = setup("01_layers")

An exercise is a function the learner fills in; its stub raises
``NotImplementedError``.  The check cell after it calls ``check(name, test)``:
``test`` is a function of ``notebooks/checks/`` whose parameters are named after
the learner's functions it tries (``test_im2col(im2col)``); ``check`` finds them
in the notebook by those names, runs ``test`` and prints one line,
``exercise 1.1 (im2col): pass``, ``... wrong: <what, and a hint>``,
``... error: <exception>``, ``... not attempted`` (a stub is untouched) or, where
a function is not defined yet (a restarted kernel), which cell to run first.
A check never stops the notebook, and it uses no other name of the notebook:
its data are its own.

``f = solution(f)`` at the end of an exercise cell returns ``f`` itself, unless
``$NUMPY_ALEXNET_SOLUTIONS`` is ``1``: then it returns the function of the same
name from ``notebooks/solutions/<notebook>.py``.  The tests run every notebook
both ways.  Open the solution files only after trying.

The exercise cells carry the tag ``exercise``; ``learner_functions(notebook)``
runs those cells of a saved notebook again, so that the last notebook can train
a network on the functions written in the others.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_NOTEBOOK = {"name": None}
NOT_ATTEMPTED = "not attempted (fill in the function above, run it, then run this cell again)"


def setup(notebook: str):
    """Put the repository on sys.path; return (ROOT, OUT), OUT the folder for figures."""
    if not (ROOT / "numpy_alexnet").is_dir():
        raise FileNotFoundError(f"nbtools.py must sit in the repository's notebooks/ folder (found {HERE})")
    for path in (str(ROOT), str(HERE)):      # works even without `pip install -e .`
        if path not in sys.path:
            sys.path.insert(0, path)
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


# -- solutions ------------------------------------------------------------------------
def solutions_requested() -> bool:
    return os.environ.get("NUMPY_ALEXNET_SOLUTIONS", "") == "1"


def solution_of(notebook: str, fn):
    """The function named like ``fn`` in notebooks/solutions/<notebook>.py."""
    path = HERE / "solutions" / f"{notebook}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, fn.__name__):
        raise AttributeError(f"{path.name} has no solution named {fn.__name__!r}")
    return getattr(module, fn.__name__)


def solution(fn):
    """``fn`` itself, or with $NUMPY_ALEXNET_SOLUTIONS=1 the solution of the same name."""
    if not solutions_requested():
        return fn
    if _NOTEBOOK["name"] is None:
        raise RuntimeError("call setup(notebook) before solution()")
    return solution_of(_NOTEBOOK["name"], fn)


# -- checks ---------------------------------------------------------------------------
def check(name: str, test, namespace: dict | None = None) -> None:
    """Run ``test`` on the learner's functions and print one line saying how ``name`` stands.

    The functions are looked up by ``test``'s parameter names in ``namespace``
    (default: the notebook's own names).
    """
    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    print(f"{name}: {verdict(test, namespace)}")


def verdict(test, namespace: dict) -> str:
    """How the functions of ``namespace`` that ``test`` names fare: 'pass', 'wrong: ...', ..."""
    wanted = list(inspect.signature(test).parameters)
    missing = [p for p in wanted if p not in namespace]
    if missing:
        return (f"not run: {', '.join(missing)} not defined yet; run the exercise cell above "
                f"first, and the cells before it (Run > Run All Above Selected Cell)")
    return _verdict(test, [namespace[p] for p in wanted])


def _verdict(test, functions) -> str:
    try:
        test(*functions)
    except NotImplementedError:
        return NOT_ATTEMPTED
    except AssertionError as e:
        return f"wrong: {e}"
    except NameError as e:                  # the learner's code uses a name not defined (yet)
        return (f"error: NameError: {e} (in your code: define it, or run the cell that "
                f"defines it, then run the exercise cell again)")
    except Exception as e:                  # the learner's code crashed: say how
        return f"error: {type(e).__name__}: {e}"
    return "pass"


def show(obj) -> None:
    """Print the source of a function or class, as it is in the repository."""
    obj = inspect.unwrap(obj)                # a layer's forward is wrapped by its checks
    src = inspect.getsource(obj)
    where = Path(inspect.getsourcefile(obj)).resolve().relative_to(ROOT)
    print(f"# {where}\n{src}", end="")


# -- the learner's functions of another notebook ----------------------------------------
def learner_functions(notebook: str) -> dict:
    """The functions defined by the exercise cells of notebooks/<notebook>.ipynb, as saved.

    Those cells (tag ``exercise``) run again in a namespace of their own with
    ``np`` and ``solution`` defined, so with $NUMPY_ALEXNET_SOLUTIONS=1 they give
    that notebook's solutions.  Save the notebook (Ctrl-S) after editing it.
    """
    path = HERE / f"{notebook}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"notebooks/{notebook}.ipynb not found")
    cells = [c for c in json.loads(path.read_text())["cells"]
             if c["cell_type"] == "code" and "exercise" in c.get("metadata", {}).get("tags", [])]
    namespace = {"np": np, "solution": lambda fn: solution_of(notebook, fn) if solutions_requested() else fn}
    for cell in cells:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        exec(compile(source, f"{notebook}.ipynb (an exercise cell)", "exec"), namespace)
    return {k: v for k, v in namespace.items() if inspect.isfunction(v)}
