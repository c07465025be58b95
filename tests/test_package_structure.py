"""The shape of the package, read from the source with ``ast`` (nothing is imported).

* Imports run one way: the modules of ``numpy_alexnet`` and their imports of
  one another (at the top or inside functions) form no cycle.
* The backend seam runs one way: ``backend.py`` imports nothing from
  ``layers/`` or ``fast/``; no layer, ``net.py`` or ``optim.py`` asks
  ``getattr``/``hasattr`` of its ops (every op exists in the reference).
* Code written once: outside the kernel families of ``layers/`` and ``fast/``
  (where each backend defines the same op names on purpose), no function or
  class is defined at the top level of two modules.  The one name that is an
  interface, not a copy, is ``add_commands``: each command family's
  sub-parsers, which ``numpy_alexnet/cli.py`` collects.
* Modules of a readable size: none over 600 lines; the functions of the
  lab (``experiments/``) and of ``training/`` at most 60 lines; the training
  command line a thin front door (under 400 lines), imported only by the
  package's ``numpy_alexnet/cli.py``.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "numpy_alexnet"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
MAX_CLI_LINES = 400
KERNEL_FAMILIES = ("layers", "fast")
# name -> the modules that define it as one interface of several implementations
INTERFACES = {"add_commands": {"data/cli.py", "training/cli.py"}}


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


def top_level_names(root: Path) -> dict[str, set[str]]:
    """{name: the modules (paths under ``root``) that define it at their top level}."""
    found = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in KERNEL_FAMILIES:
            continue
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[node.name].add(rel.as_posix())
    return found


def defined_twice(root: Path) -> dict[str, set[str]]:
    return {name: where for name, where in top_level_names(root).items()
            if len(where) > 1 and where != INTERFACES.get(name)}


def test_no_function_or_class_is_defined_in_two_modules():
    assert defined_twice(PACKAGE) == {}
    for name, where in INTERFACES.items():           # the allowance names what exists
        assert top_level_names(PACKAGE)[name] == where, name


def test_the_check_finds_a_name_defined_twice(tmp_path):
    (tmp_path / "a.py").write_text("def _host(x):\n    return x\n\nclass NoBar:\n    pass\n")
    (tmp_path / "b.py").write_text("import os\n\n\ndef _host(y):\n    return y\n")
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "c.py").write_text("class NoBar:\n    pass\n")   # a kernel family
    assert defined_twice(tmp_path) == {"_host": {"a.py", "b.py"}}


def test_modules_are_of_a_readable_size():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines())
             for p in sorted(PACKAGE.rglob("*.py"))}
    assert "experiments/runner.py" in sizes and "fast/fused.py" in sizes
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def long_functions(modules: dict[str, ast.Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{name}.py:{node.lineno} {node.name} ({n} lines)")
    return out


def _parsed(folder: str) -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted((PACKAGE / folder).glob("*.py"))}


def test_the_lab_and_training_have_short_functions():
    lab, training = _parsed("experiments"), _parsed("training")
    assert len(lab) >= 4 and long_functions(lab) == [] and long_functions(training) == []
    assert long_functions({"m": ast.parse("def f():\n" + "    pass\n" * 61)}) == ["m.py:1 f (62 lines)"]


def test_the_training_cli_is_a_thin_front_door():
    n = len((PACKAGE / "training" / "cli.py").read_text().splitlines())
    assert n < MAX_CLI_LINES, f"training/cli.py has {n} lines"
    graph = package_graph()
    importers = sorted(m for m, deps in graph.items() if "numpy_alexnet.training.cli" in deps)
    assert importers == ["numpy_alexnet.cli"], importers
