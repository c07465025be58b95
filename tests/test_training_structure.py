"""The shape of ``numpy_alexnet/training``: a thin CLI, short functions.

Read from the source with ``ast`` (nothing is imported), so the checks are the
same on every machine.  Limits: ``training/cli.py`` under 400 lines, no
function or method over 60 lines, and only the package's front door
(``numpy_alexnet/cli.py``) imports the training CLI.  The whole package's
import graph is checked in test_package_structure.py.
"""
from __future__ import annotations

import ast
from pathlib import Path

from test_package_structure import package_graph

TRAINING = Path(__file__).resolve().parent.parent / "numpy_alexnet" / "training"
MAX_FUNCTION_LINES = 60
MAX_CLI_LINES = 400


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), filename=str(p)) for p in sorted(TRAINING.glob("*.py"))}


def long_functions(modules: dict[str, ast.Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{name}.py:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_library_module_imports_the_cli():
    graph = package_graph()
    importers = sorted(m for m, deps in graph.items() if "numpy_alexnet.training.cli" in deps)
    assert importers == ["numpy_alexnet.cli"], importers


def test_functions_are_short_and_the_cli_is_thin():
    modules = _modules()
    assert long_functions(modules) == []
    assert long_functions({"m": ast.parse("def f():\n" + "    pass\n" * 61)}) == ["m.py:1 f (62 lines)"]
    n = len((TRAINING / "cli.py").read_text().splitlines())
    assert n < MAX_CLI_LINES, f"training/cli.py has {n} lines"
