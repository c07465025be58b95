"""Training: the loop, schedules, checkpoints, the non-finite guard and the Figure-1 study.

    from numpy_alexnet.training import Trainer, PaperSchedule, FixedSchedule
    from numpy_alexnet.training import save_checkpoint, load_checkpoint, read_checkpoint

The command line (``numpy-alexnet train | eval | relu-vs-tanh``) is in
``training/cli.py``; the study in ``training/study.py``.
"""
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .trainer import (FixedSchedule, NonFiniteLossError, PaperSchedule, SCHEDULES, Trainer,
                      evaluate)

__all__ = ["Trainer", "PaperSchedule", "FixedSchedule", "SCHEDULES", "NonFiniteLossError",
           "evaluate", "save_checkpoint", "load_checkpoint", "read_checkpoint", "CheckpointError"]
