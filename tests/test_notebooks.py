"""Execute every notebook in notebooks/ top to bottom, as a learner would.

Each notebook runs in a fresh Python kernel with notebooks/ as its working
directory; any cell that raises (every notebook ends its sections with
``assert`` checks) fails the test, and each notebook must finish within
``LIMIT_S`` on a CPU.  Figures go to a temporary folder
(``$NUMPY_ALEXNET_NB_OUT``), never into the repository.

Notebooks whose metadata says ``numpy_alexnet.needs_data`` are skipped where
the CIFAR-10 archive is missing (``$NUMPY_ALEXNET_DATA``, default
``../shared/data/cifar10-jpeg.tar.gz`` from the repository root).

Also checked: the committed notebooks are exactly what
``notebooks/make_notebooks.py`` writes (no stale copies, no outputs).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LIMIT_S = 180          # per notebook, on this project's 2-core CPU machine
CELL_TIMEOUT_S = 170   # one cell may not take the whole budget on its own

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def data_path() -> Path:
    return Path(os.environ.get("NUMPY_ALEXNET_DATA",
                               ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    names = [p.name for p in notebook_paths()]
    assert len(names) >= 3, names


def test_committed_notebooks_match_their_source():
    """make_notebooks.py --check: the .ipynb files are regenerated, output-free copies."""
    proc = subprocess.run([sys.executable, str(NOTEBOOKS / "make_notebooks.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, \
                    f"{path.name}: committed with outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    if nb.metadata.get("numpy_alexnet", {}).get("needs_data") and not data_path().exists():
        pytest.skip(f"{path.name} needs the CIFAR-10 archive, not found at {data_path()} "
                    "(set NUMPY_ALEXNET_DATA)")
    # The kernel inherits this process's environment.
    monkeypatch.setenv("NUMPY_ALEXNET_NB_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One BLAS thread unless told otherwise: on a 2-core machine that is also running
    # other jobs, two spinning BLAS threads per process made the training cells several
    # times slower; with one, the batch iterator's prefetch thread has the other core.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}})
    t0 = time.perf_counter()
    client.execute()            # raises CellExecutionError, naming the cell, on any error
    seconds = time.perf_counter() - t0
    print(f"{path.name}: {seconds:.1f} s")
    assert seconds < LIMIT_S, f"{path.name} took {seconds:.0f} s (limit {LIMIT_S} s)"
