"""The one error type of the training commands, their exit codes, and warnings.

Library code in ``training/`` raises :class:`RunError` for what a person can
fix (a missing file, data that do not fit a checkpoint, a folder that cannot be
written); the command line prints its message and exits with its code.
"""
from __future__ import annotations

import sys

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NONFINITE = 0, 1, 2, 3


class RunError(Exception):
    """A problem a person can fix, with the command's exit code (1 data/checkpoint, 2 usage)."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def warn(msg: str) -> None:
    print(f"numpy-alexnet: warning: {msg}", file=sys.stderr, flush=True)
