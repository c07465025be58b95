"""The ``numpy-alexnet`` command (also ``python -m numpy_alexnet``).

Each command family registers itself with :func:`argparse` sub-parsers; a
command's handler takes the parsed arguments and returns an exit code.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .argtypes import integer
from .models import build_model, model_names, network


def _summary(args) -> int:
    try:
        network(args.model)
    except ValueError as err:
        print(f"numpy-alexnet summary: {err}", file=sys.stderr)
        return 2
    print(build_model(args.model, args.num_classes).summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numpy-alexnet",
        description="AlexNet (Krizhevsky, Sutskever and Hinton, NIPS 2012) in readable NumPy.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("summary", help="print a model's layers, output shapes and parameters")
    p.add_argument("model", help=f"one of {model_names()}")
    p.add_argument("--num-classes", type=integer(1), default=None, help="size of the last layer")
    p.set_defaults(func=_summary)

    for add_commands in _command_families():
        add_commands(sub)
    return parser


def _command_families():
    """The command families that live next to the code they drive."""
    from .data.cli import add_commands as data
    from .training.cli import add_commands as training
    return [data, training]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv                    # the command as given, for "resume with ..." lines
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
