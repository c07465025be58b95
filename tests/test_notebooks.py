"""The learners' notebooks: paired with their sources, run top to bottom, and
committed with outputs that a fresh run reproduces.

Each notebook ``notebooks/NN_name.ipynb`` is paired (jupytext, py:percent) with
``notebooks/NN_name.py``, the file a maintainer edits; the .ipynb is committed
WITH its outputs so that it reads on GitHub.  Checked here:

1. every .ipynb has its .py and the cells agree (skipped without jupytext);
2. the learner's pass: a fresh kernel runs the notebook as committed, stubs
   untouched, with notebooks/ as working directory, in under ``LIMIT_S``; every
   exercise check prints "not attempted"; and the printed output of every code
   cell agrees with the committed output: the text with its numbers masked
   exactly, each number within ``REL_TOL`` relative or ``ABS_TOL`` absolute
   (float32 training and BLAS builds differ in the last bits between
   machines), the same number of figures.  Lines starting ``time:`` are
   ignored, and so are lines starting ``optional:``, which depend on an
   optional package (PyTorch) that one machine has and another not.  So
   stale outputs cannot land;
3. the solutions pass: ``$NUMPY_ALEXNET_SOLUTIONS=1`` fills every exercise in
   from ``notebooks/solutions/``, and every check must print "pass".

Every notebook has at least one figure and at least two exercises.  Notebooks
whose metadata says ``numpy_alexnet.needs_data`` are skipped where the CIFAR-10
archive is missing (``$NUMPY_ALEXNET_DATA``, default
``../shared/data/cifar10-jpeg.tar.gz`` from the repository root).

After editing a notebook's .py, refresh its .ipynb and outputs with

    python tests/test_notebooks.py 02_lrn_and_pooling [...]   # or: all
"""
from __future__ import annotations

import copy
import math
import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LIMIT_S = 180          # per notebook and pass, on this project's 2-core CPU machine
CELL_TIMEOUT_S = 170   # one cell may not take the whole budget on its own
REL_TOL, ABS_TOL = 1e-2, 1e-3
MIN_EXERCISES = 2

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

# "exercise 2.1 (max-pool backward): pass", as notebooks/nbtools.py check() prints it
EXERCISE = re.compile(r"^(exercise \d+\.\d+ \([^)]*\)): (.*)$", re.M)
# 60,965,224  -0.25  3.2e-10  7  (thousands separators allowed)
NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?")


def data_path() -> Path:
    return Path(os.environ.get("NUMPY_ALEXNET_DATA",
                               ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


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
        client = nbclient.NotebookClient(
            nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=False,
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
    """Where a fresh run's printed output disagrees with the committed one, cell by cell."""
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
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            found += EXERCISE.findall(printed(cell)[0])
    return found


def figure_count(nb) -> int:
    return sum(printed(c)[1] for c in nb.cells if c.cell_type == "code")


def skip_without_data(nb, path):
    if nb.metadata.get("numpy_alexnet", {}).get("needs_data") and not data_path().exists():
        pytest.skip(f"{path.name} needs the CIFAR-10 archive, not found at {data_path()} "
                    "(set NUMPY_ALEXNET_DATA)")


def test_there_are_notebooks():
    names = [p.stem for p in notebook_paths()]
    assert len(names) >= 6, names
    for stem in names:
        assert (NOTEBOOKS / f"{stem}.py").exists(), f"notebooks/{stem}.ipynb has no paired source {stem}.py"
        assert (NOTEBOOKS / "solutions" / f"{stem}.py").exists(), f"notebooks/solutions/{stem}.py is missing"


def test_notebooks_match_their_sources():
    """Each .ipynb holds exactly the cells of its paired py:percent source."""
    jupytext = pytest.importorskip("jupytext")
    for path in notebook_paths():
        src = jupytext.read(path.with_suffix(".py"))
        nb = nbformat.read(path, as_version=4)
        assert [(c.cell_type, c.source) for c in src.cells] == [(c.cell_type, c.source) for c in nb.cells], \
            f"{path.name} differs from {path.stem}.py: run  python tests/test_notebooks.py {path.stem}"
        assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", \
            f"{path.name}: not paired (metadata jupytext.formats)"


def test_committed_with_outputs():
    """Outputs read on GitHub: every notebook committed executed, with figures and exercises."""
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{path.name}: committed unexecuted"
        assert figure_count(nb) >= 1, f"{path.name}: no figure in the committed outputs"
        found = exercises(nb)
        assert len(found) >= MIN_EXERCISES, f"{path.name}: {len(found)} exercise checks, expected >= 2"
        assert all(v.startswith("not attempted") for _, v in found), \
            f"{path.name}: committed from a run that was not the learner's: {found}"


def test_the_comparison_can_fail():
    a = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    a.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="error 0.250 after 3 epochs\n")]
    b = copy.deepcopy(a)
    assert compare_outputs(a, b) == []
    b.cells[0].outputs[0].text = "error 0.2505 after 3 epochs\ntime: 4 s\noptional: torch 1e-17\n"
    assert compare_outputs(a, b) == []           # within tolerance; time: and optional: ignored
    b.cells[0].outputs[0].text = "error 0.300 after 3 epochs\n"
    assert "committed 0.250, fresh run 0.300" in compare_outputs(a, b)[0]
    b.cells[0].outputs[0].text = "error 0.250 after 4 epochs\n"
    assert compare_outputs(a, b)
    b.cells[0].outputs[0].text = "loss 0.250 after 3 epochs\n"
    assert "the text differs" in compare_outputs(a, b)[0]
    assert EXERCISE.findall("exercise 2.1 (max-pool backward): pass\n") == [
        ("exercise 2.1 (max-pool backward)", "pass")]


def test_check_cells_say_how_an_exercise_stands(capsys, monkeypatch, tmp_path):
    """nbtools.check: pass, wrong (with the assertion's message), error, not attempted; never raises."""
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    monkeypatch.setenv("NUMPY_ALEXNET_NB_OUT", str(tmp_path))
    import nbtools

    def stub():
        raise NotImplementedError

    def wrong():
        raise AssertionError("relative error 0.5")      # as a check's assert says it

    for test in (lambda: None, wrong, lambda: [][1], stub):
        nbtools.check("exercise 9.9 (x)", test)
    lines = capsys.readouterr().out.splitlines()
    assert [EXERCISE.match(line).group(2).split(":")[0] for line in lines] == \
        ["pass", "wrong", "error", "not attempted (fill in the function above, run it, then run this cell again)"]
    assert "relative error 0.5" in lines[1] and "IndexError" in lines[2]

    def linear_backward():
        pass
    monkeypatch.delenv("NUMPY_ALEXNET_SOLUTIONS", raising=False)
    nbtools.setup("01_layers")
    assert nbtools.solution(linear_backward) is linear_backward           # a learner's own stays
    monkeypatch.setenv("NUMPY_ALEXNET_SOLUTIONS", "1")
    assert nbtools.solution(linear_backward) is not linear_backward      # the solution's
    def not_an_exercise():
        pass
    with pytest.raises(AttributeError, match="no solution named 'not_an_exercise'"):
        nbtools.solution(not_an_exercise)


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_learner_pass_reproduces_committed_outputs(path, tmp_path):
    committed = nbformat.read(path, as_version=4)
    skip_without_data(committed, path)
    fresh, seconds = execute(committed, tmp_path, solutions=False)
    print(f"{path.name}: {seconds:.1f} s")
    assert seconds < LIMIT_S, f"{path.name} took {seconds:.0f} s (limit {LIMIT_S} s)"
    found = exercises(fresh)
    assert len(found) >= MIN_EXERCISES, found
    assert all(v.startswith("not attempted") for _, v in found), found
    assert figure_count(fresh) >= 1
    problems = compare_outputs(committed, fresh)
    assert not problems, (f"{path.name}: the committed outputs are stale "
                          f"(refresh: python tests/test_notebooks.py {path.stem}):\n" + "\n".join(problems))


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_solutions_pass(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    skip_without_data(nb, path)
    fresh, seconds = execute(nb, tmp_path, solutions=True)
    print(f"{path.name} with solutions: {seconds:.1f} s")
    assert seconds < LIMIT_S, f"{path.name} took {seconds:.0f} s (limit {LIMIT_S} s)"
    found = exercises(fresh)
    assert len(found) == len(exercises(nb)) >= MIN_EXERCISES, found
    failed = [f"{name}: {verdict}" for name, verdict in found if verdict != "pass"]
    assert not failed, "the solutions do not pass their checks:\n" + "\n".join(failed)


def update(stem: str) -> None:
    """Write notebooks/<stem>.ipynb from <stem>.py, executed as a learner meets it."""
    import tempfile
    import jupytext
    src = NOTEBOOKS / f"{stem}.py"
    nb = jupytext.read(src)
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    nb.metadata["jupytext"].pop("text_representation", None)
    for i, cell in enumerate(nb.cells):      # stable ids: no diff noise between refreshes
        cell["id"] = f"cell-{i:02d}"
    with tempfile.TemporaryDirectory() as out:
        nb, seconds = execute(nb, Path(out), solutions=False)
    nbformat.write(nb, NOTEBOOKS / f"{stem}.ipynb")
    print(f"wrote notebooks/{stem}.ipynb ({seconds:.1f} s)")


if __name__ == "__main__":
    stems = sys.argv[1:]
    if not stems:
        sys.exit("usage: python tests/test_notebooks.py NN_name [...] | all")
    if stems == ["all"]:
        stems = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    for stem in stems:
        update(stem)
