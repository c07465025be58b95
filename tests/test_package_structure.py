"""The shape of the package, read from the source with ``ast`` (nothing is imported).

* Imports run one way: the modules of ``numpy_alexnet`` and their imports of
  one another (at the top or inside functions) form no cycle.
* The backend seam runs one way: ``backend.py`` imports nothing from
  ``layers/`` or ``fast/``; no layer, ``net.py`` or ``optim.py`` asks
  ``getattr``/``hasattr`` of its ops (every op exists in the reference).
* No module of ``layers/`` or ``fast/`` is over 600 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "numpy_alexnet"
MAX_KERNEL_MODULE_LINES = 600


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """numpy_alexnet/layers/conv.py -> 'numpy_alexnet.layers.conv'; a package's __init__ is the package."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(package: Path = PACKAGE) -> dict[str, ast.Module]:
    return {module_name(p, package): ast.parse(p.read_text(), filename=str(p))
            for p in sorted(package.rglob("*.py"))}


def import_graph(modules: dict[str, ast.Module], packages: set[str]) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, from every import statement in it.

    ``from .x import y`` imports ``x``'s submodule ``y`` where that is a module,
    else ``x`` itself; ``packages`` names the modules that are packages (their
    relative imports start from themselves).
    """
    top = next(iter(modules)).split(".")[0]
    graph = {name: set() for name in modules}
    for name, tree in modules.items():
        here = name.split(".") if name in packages else name.split(".")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    graph[name].add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names}
        graph[name] = {m for m in graph[name] if m in modules and m != name and m.startswith(top)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}                       # 1: on the path, 2: done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
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


def package_graph() -> dict[str, set[str]]:
    modules = sources()
    packages = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    return import_graph(modules, packages)


def test_no_import_cycle_in_the_package():
    graph = package_graph()
    assert "numpy_alexnet.layers.conv" in graph and "numpy_alexnet.fast.fused" in graph
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_finder_finds_cycles_inside_functions_too():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    trees = {"p": ast.parse(""), "p.x": ast.parse("def f():\n    from .y import z\n"),
             "p.y": ast.parse("from . import x\n")}
    assert find_cycle(import_graph(trees, {"p"})) == ["p.x", "p.y", "p.x"]


def test_the_backend_knows_no_layer_and_no_kernel():
    deps = package_graph()["numpy_alexnet.backend"]
    assert not {d for d in deps if d.startswith(("numpy_alexnet.layers", "numpy_alexnet.fast"))}, deps


def test_no_caller_probes_the_ops():
    """``getattr(ops, ...)``/``hasattr(self.ops, ...)``: an op that might be missing.  Every op
    exists in the reference, so a layer, the net and the optimizer call it by name."""
    files = sorted((PACKAGE / "layers").glob("*.py")) + [PACKAGE / "net.py", PACKAGE / "optim.py"]
    probes = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and node.args
                    and "ops" in ast.unparse(node.args[0])):
                probes.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert probes == []
    tree = ast.parse("fast = getattr(self.ops, 'linear_forward', None)")
    assert any(isinstance(n, ast.Call) and "ops" in ast.unparse(n.args[0]) for n in ast.walk(tree))


def test_kernel_modules_are_short():
    long = {p.name: n for p in sorted((PACKAGE / "layers").glob("*.py")) + sorted(
        (PACKAGE / "fast").glob("*.py")) if (n := len(p.read_text().splitlines())) >
            MAX_KERNEL_MODULE_LINES}
    assert long == {}
