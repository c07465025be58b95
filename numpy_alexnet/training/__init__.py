"""Training: the loop, schedules, checkpoints and the non-finite guard.

    from numpy_alexnet.training import Trainer, PaperSchedule, FixedSchedule
    from numpy_alexnet.training import save_checkpoint, load_checkpoint, read_checkpoint

A run is put together in ``training/recipe.py`` (data, model by name,
optimizer and trainer) for every command; ``training/runfiles.py`` guards the
run's folder (lock, write check, leftovers, signals); ``training/commands.py``
is what ``train`` and ``eval`` do, behind the argparse front door
``training/cli.py``.  The studies that train many runs are ``numpy_alexnet/experiments``.
"""
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .trainer import (FixedSchedule, NonFiniteLossError, PaperSchedule, SCHEDULES, Trainer,
                      evaluate)

__all__ = ["Trainer", "PaperSchedule", "FixedSchedule", "SCHEDULES", "NonFiniteLossError",
           "evaluate", "save_checkpoint", "load_checkpoint", "read_checkpoint", "CheckpointError"]
