"""The package's shape: code written once, short functions, modules of a readable size.

Read from the source with ``ast`` (nothing is imported).  Outside the kernel
families of ``layers/`` and ``fast/`` (where each backend defines the same op
names on purpose), no function or class is defined at the top level of two
modules: what two places need lives once, and both import it.  The one name
that is an interface, not a copy, is ``register``: each command family's
sub-parsers, which ``numpy_alexnet/cli.py`` collects.

The lab (``experiments/``) and the networks, recipes and weight formats are
held to 600 lines a module, 60 lines a function, and imports that run one way.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from test_training_structure import find_cycle, long_functions

PACKAGE = Path(__file__).resolve().parent.parent / "numpy_alexnet"
KERNEL_FAMILIES = ("layers", "fast")
# name -> the modules that define it as one interface of several implementations
INTERFACES = {"register": {"data/cli.py", "training/cli.py"}}
MAX_MODULE_LINES = 600
SIZED = ("experiments/*.py", "models.py", "recipes.py", "pretrained.py", "finetune.py",
         "weightfiles.py")


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


def _sized_modules() -> list[Path]:
    return sorted({p for pattern in SIZED for p in PACKAGE.glob(pattern)})


def test_the_lab_and_the_networks_are_modules_of_a_readable_size():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines())
             for p in _sized_modules()}
    assert len(sizes) >= 10 and "experiments/runner.py" in sizes
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_labs_functions_are_short_and_its_imports_run_one_way():
    lab = {p.stem: ast.parse(p.read_text())
           for p in sorted((PACKAGE / "experiments").glob("*.py"))}
    assert long_functions(lab) == []
    graph = {name: set() for name in lab if name != "__init__"}
    for name in graph:
        for node in ast.walk(lab[name]):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module in graph:
                graph[name].add(node.module)
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert not (node.module or "").endswith("cli"), f"{name} imports a command line"
    assert find_cycle(graph) is None, f"import cycle: {find_cycle(graph)}"
