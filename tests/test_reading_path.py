"""docs/reading.md, the functions of one training step in reading order: each exists,
and together they are short and mostly math.

Every line of each listed function counts (its signature and docstring too,
blank lines not).  A line is *plumbing* when it belongs to the signature, a
``raise`` or ``assert`` (and the ``if`` that guards one), a backend lookup
(``get_array_module``, ``getattr``, ``hasattr``, ``isinstance``), a check
(``check...``), or the cache's bookkeeping (a line that sets or reads
``self.cache``); every other line is array math or its comments.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READING = ROOT / "docs" / "reading.md"
ENTRY = re.compile(r"^- `(numpy_alexnet/[\w/]+\.py):([\w.]+)`")
MAX_LINES, MIN_MATH_SHARE = 400, 0.70


def entries(text: str) -> list[tuple[str, str]]:
    return [m.groups() for line in text.splitlines() if (m := ENTRY.match(line))]


def find(tree: ast.Module, name: str):
    """The function ``name`` ('f' or 'Class.method') defined at the top of ``tree``, or None."""
    node, *rest = name.split(".")
    found = next((n for n in tree.body if getattr(n, "name", None) == node), None)
    for part in rest:
        found = next((n for n in getattr(found, "body", []) if getattr(n, "name", None) == part),
                     None)
    return found if isinstance(found, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def plumbing(fn: ast.FunctionDef, lines: list[str]) -> set[int]:
    """The line numbers of ``fn`` that are not array math or its comments (module docstring)."""
    out = set(range(fn.lineno, fn.body[0].lineno))                       # the signature
    for node in ast.walk(fn):
        if isinstance(node, (ast.Raise, ast.Assert)):
            out |= set(range(node.lineno, node.end_lineno + 1))
        elif isinstance(node, ast.If) and any(isinstance(s, ast.Raise) for s in node.body):
            out |= set(range(node.test.lineno, node.test.end_lineno + 1))
    for i in range(fn.lineno, fn.end_lineno + 1):
        code = lines[i - 1].split("#")[0]
        if re.search(r"get_array_module|getattr\(|hasattr\(|isinstance\(|\bcheck\w*\(|self\.cache",
                     code):
            out.add(i)
    return out


def measure(path: Path, name: str) -> tuple[int, int]:
    """(lines, plumbing lines) of function ``name`` in ``path``, blank lines left out."""
    text = path.read_text()
    lines = text.splitlines()
    fn = find(ast.parse(text), name)
    counted = [i for i in range(fn.lineno, fn.end_lineno + 1) if lines[i - 1].strip()]
    return len(counted), len(plumbing(fn, lines) & set(counted))


def test_every_function_it_names_exists():
    listed = entries(READING.read_text())
    assert len(listed) >= 40
    missing = [f"{p}:{n}" for p, n in listed
               if not (ROOT / p).is_file() or find(ast.parse((ROOT / p).read_text()), n) is None]
    assert missing == []


def test_the_step_is_short_and_mostly_math():
    total = plumb = 0
    for path, name in entries(READING.read_text()):
        n, p = measure(ROOT / path, name)
        total, plumb = total + n, plumb + p
    share = (total - plumb) / total
    print(f"  docs/reading.md: {total} lines in its functions, {total - plumb} of them array "
          f"math or its comments ({share:.0%}), {plumb} plumbing")
    assert total <= MAX_LINES and share >= MIN_MATH_SHARE, (total, share)


def test_the_measure_sees_plumbing():
    src = ("def f(self, x):\n"
           "    '''doc'''\n"
           "    xp = get_array_module(x)\n"
           "    if x.ndim != 4:\n"
           "        raise ValueError('no')\n"
           "    self.cache = x\n"
           "    return x * 2\n")
    fn = ast.parse(src).body[0]
    assert plumbing(fn, src.splitlines()) == {1, 3, 4, 5, 6}
    assert find(ast.parse("class A:\n    def b(self):\n        pass\n"), "A.b") is not None
    assert find(ast.parse("class A:\n    def b(self):\n        pass\n"), "A.c") is None
