"""The shape of ``numpy_alexnet/training``: a thin CLI, short functions, no import circle.

Read from the source with ``ast`` (nothing is imported), so the checks are the
same on every machine.  Limits: ``training/cli.py`` under 400 lines, no
function or method over 60 lines, and the modules' imports of one another
(at the top or inside functions) form no cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parent.parent / "numpy_alexnet" / "training"
MAX_FUNCTION_LINES = 60
MAX_CLI_LINES = 400


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), filename=str(p)) for p in sorted(TRAINING.glob("*.py"))}


def import_graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """{module: the training modules it imports}, from ``from .x import`` and ``from . import x``."""
    graph = {name: set() for name in modules}
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                graph[name] |= {t.split(".")[0] for t in targets if t.split(".")[0] in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "numpy_alexnet.training."):
                graph[name].add(node.module.split(".")[2])
    for deps in graph.values():
        deps.discard("__init__")
    graph.pop("__init__", None)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}                       # 1: on the path, 2: done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep] if dep in path else [node, dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def long_functions(modules: dict[str, ast.Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{name}.py:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_import_cycle_between_training_modules():
    graph = import_graph(_modules())
    assert "recipe" in graph and "cli" in graph
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"
    assert "cli" not in set().union(*graph.values()), "a library module imports the CLI"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = {"x": ast.parse("def f():\n    from .y import z\n"), "y": ast.parse("from . import x\n")}
    assert find_cycle(import_graph(tree)) == ["x", "y", "x"]


def test_functions_are_short_and_the_cli_is_thin():
    modules = _modules()
    assert long_functions(modules) == []
    assert long_functions({"m": ast.parse("def f():\n" + "    pass\n" * 61)}) == ["m.py:1 f (62 lines)"]
    n = len((TRAINING / "cli.py").read_text().splitlines())
    assert n < MAX_CLI_LINES, f"training/cli.py has {n} lines"
