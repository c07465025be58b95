"""The learners' notebooks: paired with their sources, run top to bottom, and
committed with outputs that a fresh run reproduces; their exercise checks
tried against wrong answers.

Each notebook ``notebooks/NN_name.ipynb`` is paired (jupytext, py:percent) with
``notebooks/NN_name.py``, the file a maintainer edits; the .ipynb is committed
WITH its outputs so that it reads on GitHub.  Checked here:

1. every .ipynb has its .py and the cells agree (skipped without jupytext);
2. the learner's pass: a fresh kernel runs the notebook as committed, stubs
   untouched, with notebooks/ as working directory, within its time limit
   (``notebooks/run_notebooks.py``: 180 s unless the notebook's metadata says
   more); every exercise check prints "not attempted"; and the printed output
   of every code cell agrees with the committed output (``compare_outputs``:
   numbers within a tolerance, ``time:`` and ``optional:`` lines ignored), so
   stale outputs cannot land;
3. the solutions pass: ``$NUMPY_ALEXNET_SOLUTIONS=1`` fills every exercise in
   from ``notebooks/solutions/``, and every check must print "pass";
4. every answer of ``notebooks/checks/mistakes.py`` gets the verdict it should
   from its check: the wrong ones a hint naming their mistake, the right ones
   written differently from the solutions "pass".

Every notebook has at least one figure and at least two exercises.  Notebooks
whose metadata says ``numpy_alexnet.needs_data`` are skipped where the CIFAR-10
archive is missing (``$NUMPY_ALEXNET_DATA``, default
``../shared/data/cifar10-jpeg.tar.gz`` from the repository root).

After editing a notebook's .py, refresh its .ipynb and outputs with

    python notebooks/run_notebooks.py 02_lrn_and_pooling [...]   # or: all
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MIN_EXERCISES = 2

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
sys.path.insert(0, str(NOTEBOOKS))
from run_notebooks import (EXERCISE, compare_outputs, execute, exercises,  # noqa: E402
                           figure_count, limit_s, notebook_paths)


def data_path() -> Path:
    return Path(os.environ.get("NUMPY_ALEXNET_DATA",
                               ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))


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
            f"{path.name} differs from {path.stem}.py: run  python notebooks/run_notebooks.py {path.stem}"
        assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", \
            f"{path.name}: not paired (metadata jupytext.formats)"


def test_syncing_leaves_the_sources_as_they_are():
    """jupytext writes each .py back byte for byte (no version stamp, metadata in its order),
    so a sync or a save in Jupyter rewrites nothing that did not change."""
    jupytext = pytest.importorskip("jupytext")
    for path in notebook_paths():
        for source in (path.with_suffix(".py"), path):
            text = jupytext.writes(jupytext.read(source), fmt="py:percent")
            assert text == path.with_suffix(".py").read_text(), \
                f"jupytext would rewrite {path.stem}.py from {source.name}"


@pytest.mark.slow
def test_refreshing_leaves_an_up_to_date_notebook_alone():
    """run_notebooks.py runs the notebook, finds its outputs as committed, and writes nothing."""
    from run_notebooks import update
    path = NOTEBOOKS / "06_paper_vs_2012_code.ipynb"
    before = path.read_bytes()
    assert update("06_paper_vs_2012_code").startswith("notebooks/06_paper_vs_2012_code.ipynb: up to date")
    assert path.read_bytes() == before


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
    """nbtools.check: pass, wrong (with the assertion's message), error, not attempted, and
    which cell to run where the learner's function is not defined; never raises."""
    monkeypatch.setenv("NUMPY_ALEXNET_NB_OUT", str(tmp_path))
    import nbtools

    def test(f):                       # a check: its parameter names the learner's function
        f()

    def stub():
        raise NotImplementedError

    def wrong():
        raise AssertionError("relative error 0.5")      # as a check's assert says it

    for f in (lambda: None, wrong, lambda: [][1], stub, lambda: undefined_name):  # noqa: F821
        nbtools.check("exercise 9.9 (x)", test, {"f": f})
    nbtools.check("exercise 9.9 (x)", test, {})
    lines = capsys.readouterr().out.splitlines()
    verdicts = [EXERCISE.match(line).group(2) for line in lines]
    assert [v.split(":")[0] for v in verdicts] == ["pass", "wrong", "error", "not attempted (fill in the "
                                                   "function above, run it, then run this cell again)",
                                                   "error", "not run"]
    assert "relative error 0.5" in verdicts[1] and "IndexError" in verdicts[2]
    assert "undefined_name" in verdicts[4] and "define it, or run the cell that defines it" in verdicts[4]
    assert "f not defined yet; run the exercise cell above first" in verdicts[5]

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


def test_learner_functions_come_from_the_saved_notebook(monkeypatch):
    """The last notebook trains on the functions of the others' exercise cells, as saved:
    the stubs as committed, the solutions with $NUMPY_ALEXNET_SOLUTIONS=1."""
    import nbtools
    monkeypatch.delenv("NUMPY_ALEXNET_SOLUTIONS", raising=False)
    stubs = nbtools.learner_functions("01_layers")
    assert {"im2col", "col2im", "conv2d_forward", "conv2d_backward", "softmax_cross_entropy"} <= set(stubs)
    with pytest.raises(NotImplementedError):
        stubs["im2col"](None, 3, 3, 1, 0)
    monkeypatch.setenv("NUMPY_ALEXNET_SOLUTIONS", "1")
    filled = nbtools.learner_functions("01_layers")
    assert filled["im2col"](np.ones((1, 1, 3, 3)), 3, 3, 1, 0).shape == (9, 1)


def test_every_exercise_cell_is_tagged():
    """An exercise cell (one that calls solution()) carries the tag learner_functions reads."""
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and "= solution(" in cell.source:
                assert "exercise" in cell.metadata.get("tags", []), \
                    f"{path.name}: an exercise cell without the tag 'exercise':\n{cell.source[:200]}"


@pytest.mark.parametrize("entry", __import__("checks.mistakes", fromlist=["MISTAKES"]).MISTAKES,
                         ids=lambda e: f"{e[0]} {e[2]}")
def test_each_check_names_the_mistake(entry):
    """A wrong answer gets its hint from the check; a right one written another way passes."""
    from checks.mistakes import run
    verdict = run(entry)
    expected = entry[4]
    if expected == "pass":
        assert verdict == "pass", verdict
    else:
        assert verdict.startswith(("wrong", "error", "not run")) and expected in verdict, verdict


def test_the_mistakes_cover_every_exercise():
    """At least three wrong answers for every exercise of every notebook."""
    from checks.mistakes import MISTAKES
    wrong = {}
    for exercise, _, _, _, expected in MISTAKES:
        wrong[exercise] = wrong.get(exercise, 0) + (expected != "pass")
    numbers = set()
    for path in notebook_paths():
        for name, _ in exercises(nbformat.read(path, as_version=4)):
            numbers.add(name.split()[1])
    assert numbers and all(wrong.get(n, 0) >= 3 for n in numbers), \
        {n: wrong.get(n, 0) for n in sorted(numbers)}


def test_refreshing_needs_no_pytest(tmp_path):
    """run_notebooks.py, which refreshes the committed outputs, runs in the [notebooks]
    environment, which has no pytest."""
    code = ("import sys; sys.modules['pytest'] = None; sys.argv = ['run_notebooks.py', '--help']\n"
            "import runpy; runpy.run_path('notebooks/run_notebooks.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "refresh" in done.stdout.lower()


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_learner_pass_reproduces_committed_outputs(path, tmp_path):
    committed = nbformat.read(path, as_version=4)
    skip_without_data(committed, path)
    fresh, seconds = execute(committed, tmp_path, solutions=False)
    print(f"{path.name}: {seconds:.1f} s")
    assert seconds < limit_s(committed), f"{path.name} took {seconds:.0f} s (limit {limit_s(committed)} s)"
    found = exercises(fresh)
    assert len(found) >= MIN_EXERCISES, found
    assert all(v.startswith("not attempted") for _, v in found), found
    assert figure_count(fresh) >= 1
    problems = compare_outputs(committed, fresh)
    assert not problems, (f"{path.name}: the committed outputs are stale "
                          f"(refresh: python notebooks/run_notebooks.py {path.stem}):\n" + "\n".join(problems))


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_solutions_pass(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    skip_without_data(nb, path)
    fresh, seconds = execute(nb, tmp_path, solutions=True)
    print(f"{path.name} with solutions: {seconds:.1f} s")
    assert seconds < limit_s(nb), f"{path.name} took {seconds:.0f} s (limit {limit_s(nb)} s)"
    found = exercises(fresh)
    assert len(found) == len(exercises(nb)) >= MIN_EXERCISES, found
    failed = [f"{name}: {verdict}" for name, verdict in found if verdict != "pass"]
    assert not failed, "the solutions do not pass their checks:\n" + "\n".join(failed)
