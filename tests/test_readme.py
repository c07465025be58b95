"""The README's figures and model list come from the repository, not from memory.

1. Every link into a committed result, written as the number it shows with
   the JSON path of its value as the fragment,
   ``[6.26](docs/results/relu_vs_tanh.json#regimes.cuda-convnet.summary.ratio_mean)``
   (keys and list indexes joined by dots), shows that value rounded to the
   decimals shown.
2. Every number in the "measured here" column of the results table is such a
   link.
3. The model table lists exactly the models of ``numpy_alexnet.models.MODELS``.
4. The first screen (40 lines) holds both commands that CI and newcomers run,
   says what the first shows, and shows its figure.

Each check also runs on a doctored README that it must reject, so that it is
known to be able to fail.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from numpy_alexnet.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

RESULT_LINK = re.compile(r"\[([^\]]*)\]\((docs/results/[\w./-]+\.json)#([^)\s]+)\)")
NUMBER = re.compile(r"[+-]?\d[\d,]*(?:\.\d+)?")


# --------------------------------------------------------------------------- #
# Reading the README
# --------------------------------------------------------------------------- #
def section(text: str, heading: str) -> str:
    """The lines under '## heading' up to the next heading of that level."""
    m = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"README.md has no section '## {heading}'"
    return m.group(1)


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, body rows) of the first markdown table in ``text``."""
    lines = [ln.strip() for ln in text.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([cell.strip() for cell in ln.strip("|").split("|")])
    return rows[0], rows[2:]                                     # rows[1] is |---|


def json_value(path: Path, dotted: str):
    value = json.loads(path.read_text())
    for key in dotted.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


# --------------------------------------------------------------------------- #
# The checks: each returns a list of problems
# --------------------------------------------------------------------------- #
def check_result_links(text: str) -> list[str]:
    """Each linked number is its result file's value, rounded as shown."""
    problems = []
    for shown, file, dotted in RESULT_LINK.findall(text):
        where = f"[{shown}]({file}#{dotted})"
        if not (ROOT / file).exists():
            problems.append(f"{where}: no such file")
            continue
        try:
            value = json_value(ROOT / file, dotted)
        except (KeyError, IndexError, ValueError, TypeError):
            problems.append(f"{where}: {file} has no value at {dotted}")
            continue
        if not NUMBER.fullmatch(shown.strip()):
            problems.append(f"{where}: the link text should be the number alone")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where}: the value there is {value!r}, not a number")
            continue
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        number = float(shown.strip().replace(",", ""))
        if abs(value - number) > 0.5 * 10 ** -decimals * (1 + 1e-9):
            problems.append(f"{where}: shows {shown}, the file has {value!r} "
                            f"({value:.{decimals}f} to {decimals} decimals)")
    return problems


def check_results_table(text: str) -> list[str]:
    """Every number in the 'measured here' column links to its result."""
    header, rows = table(section(text, "Results"))
    col = header.index("measured here")
    problems = [] if rows else ["the results table has no rows"]
    for row in rows:
        cell = row[col]
        bare = NUMBER.findall(RESULT_LINK.sub("", cell))
        if bare or not RESULT_LINK.search(cell):
            problems.append(f"results row '{row[0]}': every number measured here must be a link "
                            f"to its result file (unlinked: {bare or cell})")
    return problems


def check_model_table(text: str) -> list[str]:
    """The model table names each model of the registry once, and nothing else."""
    _, rows = table(section(text, "Models"))
    listed = [name for row in rows for name in re.findall(r"`([^`]+)`", row[0])]
    problems = []
    missing = sorted(set(MODELS) - set(listed))
    unknown = sorted(set(listed) - set(MODELS))
    twice = sorted({n for n in listed if listed.count(n) > 1})
    if missing:
        problems.append(f"README's model table lacks {missing} (numpy_alexnet.models.MODELS)")
    if unknown:
        problems.append(f"README's model table names {unknown}, which are not in MODELS")
    if twice:
        problems.append(f"README's model table names {twice} twice")
    return problems


def check_first_screen(text: str) -> list[str]:
    """Both commands, what the first shows and its figure, in the first 40 lines."""
    head = "\n".join(text.splitlines()[:40])
    wanted = {
        "the quick study command": r"^python3 -m venv \.venv .*numpy-alexnet relu-vs-tanh --quick",
        "the test command": r"^python3 -m venv \.venv .*pytest",
        "what the first command shows": r"Figure 1",
        "its figure": r"!\[[^\]]+\]\(docs/results/relu_vs_tanh_quick\.png\)",
    }
    return [f"README.md's first 40 lines lack {what}" for what, pattern in wanted.items()
            if not re.search(pattern, head, re.M)]


# --------------------------------------------------------------------------- #
# Tests
# --------------------------------------------------------------------------- #
def test_linked_numbers_are_the_result_files_values():
    links = RESULT_LINK.findall(README)
    assert len(links) >= 10, f"README.md links only {len(links)} numbers to result files"
    problems = check_result_links(README)
    assert not problems, "\n".join(problems)


def test_every_measured_number_in_the_results_table_is_linked():
    problems = check_results_table(README)
    assert not problems, "\n".join(problems)


def test_model_table_is_the_registry():
    problems = check_model_table(README)
    assert not problems, "\n".join(problems)


def test_first_screen_holds_both_commands_and_the_figure():
    problems = check_first_screen(README)
    assert not problems, "\n".join(problems)


def _first_link(text: str) -> re.Match:
    return next(m for m in RESULT_LINK.finditer(section(text, "Results")))


def test_the_checks_catch_a_doctored_readme():
    """A changed number, an unlinked number, a bad path, a missing or invented
    model, and a first screen without its commands are all reported."""
    m = _first_link(README)
    shown = m.group(1)
    nudged = f"{float(shown) + 0.01:.2f}"                      # 6.26 -> 6.27
    wrong_number = README.replace(m.group(0), m.group(0).replace(f"[{shown}]", f"[{nudged}]"), 1)
    assert any(nudged in p for p in check_result_links(wrong_number))

    bad_path = README.replace(m.group(0), m.group(0).replace(f"#{m.group(3)}", "#no.such.key"), 1)
    assert any("no value at no.such.key" in p for p in check_result_links(bad_path))

    unlinked = README.replace(m.group(0), shown, 1)
    assert check_results_table(unlinked)

    name = sorted(MODELS)[0]
    without = README.replace(f"`{name}`", "`a_model_that_is_not_there`", 1)
    problems = "\n".join(check_model_table(without))
    assert name in problems and "a_model_that_is_not_there" in problems

    pushed_down = "\n" * 40 + README
    assert len(check_first_screen(pushed_down)) == 4
