"""The ``numpy-alexnet`` command (also ``python -m numpy_alexnet``).

Each command family registers itself with :func:`argparse` sub-parsers; a
command's handler takes the parsed arguments and returns an exit code.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .argtypes import integer


def _summary(args) -> int:
    from .models import MODELS, get_model
    if args.model not in MODELS:
        print(f"numpy-alexnet summary: unknown model {args.model!r}; expected one of "
              f"{', '.join(sorted(MODELS))}", file=sys.stderr)
        return 2
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    print(get_model(args.model, **kwargs).summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numpy-alexnet",
        description="AlexNet (Krizhevsky, Sutskever and Hinton, NIPS 2012) in readable NumPy.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("summary", help="print a model's layers, output shapes and parameters")
    p.add_argument("model", help="alexnet, alexnet_torchvision, cifar_fig1, cifar_fig1_relu, cifar_fig1_tanh")
    p.add_argument("--num-classes", type=integer(1), default=None, help="size of the last layer")
    p.set_defaults(func=_summary)

    for register in _registrars():
        register(sub)
    return parser


def _registrars():
    """The command families that live next to the code they drive."""
    from .data.cli import register as data
    from .training.ablate import register as ablate
    from .training.cli import register as training
    return [data, training, ablate]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
