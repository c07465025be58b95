"""Write docs/cli.md, the command-line reference, from the real argparse parser.

    python docs/make_cli_md.py

Every command, its usage line, and a table of its arguments (flags, choices,
defaults, help) come from ``numpy_alexnet.cli.build_parser()``, so the
reference cannot name a flag that does not exist; ``tests/test_docs.py``
checks that it lists every one.  Only the introduction and the examples are
written by hand, below.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from numpy_alexnet.cli import build_parser  # noqa: E402

INTRO = """\
# Command-line reference

`numpy-alexnet` (or `python -m numpy_alexnet`, the same program) is installed
with the package. Every command prints what it is doing to stderr and
returns 0 when it succeeds; `numpy-alexnet COMMAND --help` prints the same
information as this page, which is generated from the parser itself by
`docs/make_cli_md.py` (run it again after changing a flag; a test fails
while this page differs from what it renders). What the flags of `train`
and `eval` are for, checkpoints and resuming: [training.md](training.md).

Exit codes of `train`, `eval`, `relu-vs-tanh` and `ablate`: 0 done; 1 a
problem with the data (an archive too large to decode into memory among them),
a checkpoint, the backend or the disk (the message names it); 2 bad arguments
(an unknown model, a class count that does not fit, an initialization that
needs another input scale, crops that do not fit), a run already in `--out`,
or another run holding `--out`'s lock; 3 the guard stopped training on a
non-finite or diverging loss (go on with `--resume --new-lr RATE`); 128 + N
stopped by signal N after the step in progress, with a checkpoint (SIGHUP 129,
SIGINT 130, SIGTERM 143; the last line is the command that goes on, or that
starts again where nothing was saved yet).

## Examples

```bash
numpy-alexnet summary alexnet                      # the paper's network: 60,965,224 parameters
numpy-alexnet summary cifar_fig1_tanh --num-classes 10
"""

EXAMPLES = {
    "data": """\
numpy-alexnet data info ../shared/data/cifar10-jpeg.tar.gz           # counts, mean pixel, RGB PCA
numpy-alexnet data download     # the official CIFAR-10 into the cache; then --data cifar10
""",
    "train": """\
numpy-alexnet train --model cifar_fig1_relu --data ../shared/data/cifar10-jpeg.tar.gz \\
    --epochs 10 --lr 0.001 --weight-decay 0 --schedule fixed --out runs/fig1
numpy-alexnet train --model cifar_fig1_relu --data ../shared/data/cifar10-jpeg.tar.gz \\
    --epochs 10 --lr 0.001 --weight-decay 0 --schedule fixed --out runs/fig1 --resume
# after a non-finite stop (exit 3): the same command, go on with a tenth of the rate
numpy-alexnet train --model cifar_fig1_relu --data ../shared/data/cifar10-jpeg.tar.gz \\
    --epochs 10 --lr 0.001 --weight-decay 0 --schedule fixed --out runs/fig1 --resume --new-lr 0.0001
""",
    "eval": """\
numpy-alexnet eval runs/fig1/checkpoints/best.npz --split test
""",
    "relu-vs-tanh": """\
numpy-alexnet relu-vs-tanh --quick --data ../shared/data/cifar10-jpeg.tar.gz   # minutes on a CPU
""",
    "ablate": """\
numpy-alexnet ablate --quick --data ../shared/data/cifar10-jpeg.tar.gz --backend numba   # minutes
""",
}


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _walk(parser, path=()):
    yield path, parser
    sub = _subparsers(parser)
    if sub is not None:
        for name, child in sub.choices.items():
            yield from _walk(child, path + (name,))


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _argument_row(action) -> str | None:
    if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
        return None
    if action.option_strings:
        name = ", ".join(f"`{o}`" for o in action.option_strings)
        takes = action.nargs != 0
        if takes:
            meta = action.metavar or (None if action.choices else action.dest.upper())
            if action.choices:
                meta = "{" + ",".join(map(str, action.choices)) + "}"
            name += f" {meta}" if action.nargs is None else f" [{meta}]"
    else:
        name = f"`{action.metavar or action.dest}`"
    default = action.default
    if default is None or default is False or default is argparse.SUPPRESS or action.nargs == 0:
        default = ""
    else:
        default = f"`{default}`"
    help_text = (action.help or "") % {"default": action.default, "prog": ""} if action.help else ""
    return f"| {_cell(name)} | {_cell(default)} | {_cell(help_text)} |"


def render() -> str:
    parser = build_parser()
    commands = [path for path, _ in _walk(parser) if path]
    lines = [INTRO.rstrip("\n")]
    tops = {p[0] for p in commands}
    for top in ("data", "train", "eval", "relu-vs-tanh", "ablate"):
        if top in tops:
            lines.append(EXAMPLES[top].rstrip("\n"))
    lines += ["```", ""]
    lines += ["## Commands", ""]
    for path in commands:
        anchor = "numpy-alexnet-" + "-".join(path)
        lines.append(f"- [`numpy-alexnet {' '.join(path)}`](#{anchor})")
    lines.append("")
    for path, p in _walk(parser):
        title = "numpy-alexnet" + (" " + " ".join(path) if path else "")
        lines += [f"## `{title}`" if path else "## `numpy-alexnet` (the program)", ""]
        desc = p.description or ""
        if desc:
            lines += [desc.replace("%%", "%"), ""]
        usage = " ".join(p.format_usage().replace("usage: ", "").split())
        lines += ["```text", usage, "```", ""]
        rows = [r for r in (_argument_row(a) for a in p._actions) if r]
        if rows:
            lines += ["| argument | default | meaning |", "|---|---|---|"] + rows + [""]
        sub = _subparsers(p)
        if sub is not None:
            lines += ["| command | what it does |", "|---|---|"]
            helps = {a.dest: a.help for a in sub._choices_actions}
            for name in sub.choices:
                lines.append(f"| `{title} {name}` | {_cell((helps.get(name) or '').replace('%%', '%'))} |")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    out = ROOT / "docs" / "cli.md"
    out.write_text(render())
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
