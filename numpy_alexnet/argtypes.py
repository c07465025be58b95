"""Argument types for the command line that refuse nonsense before any work starts.

Used as ``type=`` in argparse: a bad value stops the command at once with
``error: argument --epochs: expected an integer >= 1, got '0'``, naming the
flag, what was expected and what was given, instead of training on it or
failing an epoch later.

    p.add_argument("--epochs", type=integer(1))
    p.add_argument("--lr", type=number(above=0))
    p.add_argument("--momentum", type=number(at_least=0, below=1))
    p.add_argument("--model", type=model_name)
"""
from __future__ import annotations

import argparse
import math


def integer(at_least: int):
    """An int >= ``at_least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {at_least}, got {text!r}")
        if value < at_least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {at_least}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {at_least}"
    return parse


def number(above: float | None = None, at_least: float | None = None,
           below: float | None = None, at_most: float | None = None):
    """A finite float within the given bounds (strict: ``above``/``below``; inclusive: the others)."""
    bounds = [f"> {above}" if above is not None else None,
              f">= {at_least}" if at_least is not None else None,
              f"< {below}" if below is not None else None,
              f"<= {at_most}" if at_most is not None else None]
    wanted = "a number " + " and ".join(b for b in bounds if b) if any(bounds) else "a number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        if (not math.isfinite(value)
                or (above is not None and not value > above)
                or (at_least is not None and not value >= at_least)
                or (below is not None and not value < below)
                or (at_most is not None and not value <= at_most)):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value
    parse.__name__ = wanted
    return parse


def _items(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def device_list(text: str) -> str:
    """argparse type of --devices: GPU indexes, '0' or '0,1'; checked, kept as the text."""
    items = _items(text)
    if not items or not all(i.isdigit() for i in items):
        raise argparse.ArgumentTypeError(f"expected GPU indexes such as 0 or 0,1, got {text!r}")
    return text


def device_indexes(text: str | None) -> tuple[int, ...]:
    """The GPU indexes of a --devices text that ``device_list`` accepted: '0,1' -> (0, 1)."""
    return tuple(int(i) for i in _items(text)) if text else ()


def lr_mult_list(text: str) -> str:
    """argparse type of --lr-mult: LAYER=MULTIPLIER items, 'fc8=10,conv1=0.1'; checked, kept."""
    for item in _items(text):
        name, _, value = item.partition("=")
        try:
            ok = bool(name.strip()) and float(value) >= 0
        except ValueError:
            ok = False
        if not ok:
            raise argparse.ArgumentTypeError(f"expected LAYER=MULTIPLIER items with multipliers "
                                             f">= 0 such as fc8=10, got {item!r}")
    return text


def comma_list(item, expected: str):
    """A comma list of one or more entries, each read by ``item``: '0.01,0.03' -> (0.01, 0.03).

    ``item(text)`` returns the entry or raises ValueError (or argparse's
    ArgumentTypeError); the error names the bad entry and what was expected.
    """
    def parse(text: str) -> tuple:
        entries = _items(text)
        if not entries:
            raise argparse.ArgumentTypeError(f"expected a comma list of {expected}, got {text!r}")
        out = []
        for e in entries:
            try:
                out.append(item(e))
            except (ValueError, argparse.ArgumentTypeError):
                raise argparse.ArgumentTypeError(
                    f"expected a comma list of {expected}, got {e!r} in {text!r}") from None
        return tuple(out)
    return parse


def one_of(names):
    """An entry type for :func:`comma_list`: the text itself if it is one of ``names``."""
    def name(text: str) -> str:
        if text not in names:
            raise ValueError(text)
        return text
    return name


def model_name(text: str) -> str:
    """argparse type of --model: a name of ``numpy_alexnet.models.MODELS``."""
    from .models import MODELS
    if text not in MODELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(sorted(MODELS))}; "
                                         f"got {text!r}")
    return text
