"""Run the notebooks as a learner meets them, and refresh their committed outputs.

Each notebook ``notebooks/NN_name.ipynb`` is paired (jupytext, py:percent) with
``notebooks/NN_name.py``, the file a maintainer edits; the .ipynb is committed
WITH its outputs so that it reads on GitHub.  After editing a .py, refresh its
.ipynb from the repository root, in the ``[notebooks]`` environment (no pytest
needed):

    .venv/bin/python notebooks/run_notebooks.py 02_lrn_and_pooling [...]   # or: all

A notebook is run in a fresh kernel with its exercises as committed (stubs
untouched), and its .ipynb is written only where something changed: its cells,
or a printed output beyond the tolerance the tests allow (``--force`` writes it
anyway).  tests/test_notebooks.py runs the same way, twice: as committed (every
check "not attempted", the outputs as committed) and with the solutions filled
in (every check "pass").
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import re
import sys
import time
from pathlib import Path

import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent
LIMIT_S = 180          # per notebook and pass, on this project's 2-core CPU machine, unless
CELL_TIMEOUT_S = 170   # the notebook's metadata numpy_alexnet.limit_s says more
REL_TOL, ABS_TOL = 1e-2, 1e-3

# "exercise 2.1 (max-pool backward): pass", as notebooks/nbtools.py check() prints it
EXERCISE = re.compile(r"^(exercise \d+\.\d+ \([^)]*\)): (.*)$", re.M)
# 60,965,224  -0.25  3.2e-10  7  (thousands separators allowed)
NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?")


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def limit_s(nb) -> int:
    """Seconds a notebook may take per pass: its own limit, or ``LIMIT_S``."""
    return int(nb.metadata.get("numpy_alexnet", {}).get("limit_s", LIMIT_S))


def execute(nb, out_dir: Path, solutions: bool):
    """Run a copy of notebook ``nb`` in a fresh kernel; return (executed copy, seconds)."""
    nb = copy.deepcopy(nb)
    # MPLBACKEND unset: the kernel then draws figures inline, into the outputs.
    env = {"NUMPY_ALEXNET_NB_OUT": str(out_dir), "MPLBACKEND": None,
           "NUMPY_ALEXNET_SOLUTIONS": "1" if solutions else "0",
           "PYTHONHASHSEED": "0"}
    # One BLAS thread unless told otherwise: on a 2-core machine that is also running
    # other jobs, two spinning BLAS threads per process made the training cells several
    # times slower; one thread also makes every sum come out the same on every run.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = os.environ.get(var, "1")
    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():                 # the kernel inherits this process's environment
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        cell_limit = max(CELL_TIMEOUT_S, limit_s(nb) - 10)
        client = nbclient.NotebookClient(
            nb, timeout=cell_limit, kernel_name="python3", record_timing=False,
            resources={"metadata": {"path": str(NOTEBOOKS)}})
        t0 = time.perf_counter()
        client.execute()        # raises CellExecutionError, naming the cell, on any error
        seconds = time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, seconds


def printed(cell) -> tuple[str, int]:
    """A code cell's printed text (stdout and results; ``time:`` and ``optional:`` lines
    dropped) and its figure count."""
    text, figures = [], 0
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":
            text.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            if "image/png" in out.data:
                figures += 1
            elif "text/plain" in out.data:
                text.append(out.data["text/plain"] + "\n")
        elif out.output_type == "error":
            text.append(f"ERROR {out.ename}: {out.evalue}\n")
    lines = "".join(text).splitlines()
    return "\n".join(line for line in lines
                     if not line.startswith(("time:", "optional:"))), figures


def numbers_agree(a: str, b: str) -> bool:
    x, y = float(a.replace(",", "")), float(b.replace(",", ""))
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def compare_outputs(committed, fresh) -> list[str]:
    """Where a fresh run's printed output disagrees with the committed one, cell by cell:
    the text with its numbers masked exactly, each number within ``REL_TOL`` relative
    or ``ABS_TOL`` absolute (float32 training and BLAS builds differ in the last bits
    between machines), the same number of figures."""
    problems = []
    old_cells = [c for c in committed.cells if c.cell_type == "code"]
    new_cells = [c for c in fresh.cells if c.cell_type == "code"]
    if len(old_cells) != len(new_cells):
        return [f"{len(old_cells)} code cells committed, {len(new_cells)} run"]
    for i, (old, new) in enumerate(zip(old_cells, new_cells)):
        (old_text, old_figs), (new_text, new_figs) = printed(old), printed(new)
        where = f"code cell {i} ({new.source.splitlines()[0][:60] if new.source else ''!r})"
        if old_figs != new_figs:
            problems.append(f"{where}: {old_figs} figure(s) committed, {new_figs} in a fresh run")
        if NUMBER.sub("#", old_text) != NUMBER.sub("#", new_text):
            problems.append(f"{where}: the text differs\n--- committed\n{old_text}\n--- fresh run\n{new_text}")
            continue
        for a, b in zip(NUMBER.findall(old_text), NUMBER.findall(new_text)):
            if not numbers_agree(a, b):
                problems.append(f"{where}: committed {a}, fresh run {b} "
                                f"(tolerance {REL_TOL:g} relative or {ABS_TOL:g} absolute)")
    return problems


def exercises(nb) -> list[tuple[str, str]]:
    """(exercise, verdict) for every check line the notebook's outputs hold."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            found += EXERCISE.findall(printed(cell)[0])
    return found


def figure_count(nb) -> int:
    return sum(printed(c)[1] for c in nb.cells if c.cell_type == "code")


def cells_of(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def from_source(stem: str):
    """notebooks/<stem>.py as a notebook: paired, with stable cell ids (no diff noise)."""
    import jupytext
    nb = jupytext.read(NOTEBOOKS / f"{stem}.py")
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    nb.metadata["jupytext"].pop("text_representation", None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def update(stem: str, force: bool = False) -> str:
    """Run notebooks/<stem>.py as a learner meets it; write <stem>.ipynb if anything changed.
    Returns what was done, as a line."""
    import tempfile
    path = NOTEBOOKS / f"{stem}.ipynb"
    nb = from_source(stem)
    with tempfile.TemporaryDirectory() as out:
        fresh, seconds = execute(nb, Path(out), solutions=False)
    if path.exists() and not force:
        try:
            committed = nbformat.read(path, as_version=4)
        except Exception as err:            # not a notebook any more (a merge's markers): rewrite it
            nbformat.write(fresh, path)
            return f"wrote notebooks/{stem}.ipynb over an unreadable one ({type(err).__name__}) ({seconds:.1f} s)"
        same_cells = cells_of(committed) == cells_of(fresh) and committed.metadata == fresh.metadata
        if same_cells and not compare_outputs(committed, fresh):
            return f"notebooks/{stem}.ipynb: up to date, left as it is ({seconds:.1f} s)"
    nbformat.write(fresh, path)
    return f"wrote notebooks/{stem}.ipynb ({seconds:.1f} s)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stems", nargs="+", metavar="NN_name",
                        help="notebooks to run, such as 02_lrn_and_pooling, or: all")
    parser.add_argument("--force", action="store_true",
                        help="write the .ipynb even where nothing changed")
    args = parser.parse_args(argv)
    stems = args.stems
    if stems == ["all"]:
        stems = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    unknown = [s for s in stems if not (NOTEBOOKS / f"{s}.py").exists()]
    if unknown:
        sys.exit(f"no notebook source notebooks/{unknown[0]}.py; notebooks: "
                 + ", ".join(sorted(p.stem for p in NOTEBOOKS.glob('[0-9][0-9]_*.py'))))
    for stem in stems:
        print(update(stem, force=args.force), flush=True)


if __name__ == "__main__":
    main()
