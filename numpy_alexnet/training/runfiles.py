"""A run's folder as a shared resource: the lock, the write check, leftovers, signals.

* :class:`RunLock`: one run at a time writes into OUT.  The lock is an
  exclusive ``flock`` on the OUT folder, held for the run's life: the kernel
  grants it to one process however many ask at the same instant, and drops
  it when the process dies, however it dies.  ``OUT/.lock``, written whole
  once the flock is held, names the holder (PID, host, start time) for the
  message that refuses a second run.  A ``.lock`` that names a process that
  is provably gone (same host, no such PID) is taken over; one that names a
  live process, or one on another host, is respected even without its
  flock.  Without ``flock`` (Windows, some network file systems) the PID in
  ``.lock`` is the only guard.
* :func:`probe_writable`: a folder is written to (and the file removed) before
  any work, so a read-only ``--out`` is found at once, not an epoch later.
* :func:`remove_run_temps` / :func:`remove_stale_cache_temps`: the temporary
  files of atomic writes that a kill interrupted (``.latest.npz.k3j9x2ab.tmp``)
  are removed at the next start, however recent: a temporary is a dead
  writer's when its lock can be taken (``files.remove_leftovers``); only the
  project's own names are touched.
* :func:`stop_on_signals`: SIGTERM, SIGHUP and SIGINT ask the trainer to stop
  after the step in progress; it then writes its checkpoint as at any stop
  (before training starts they stop at once: there is nothing to save).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..data.cache import default_cache_dir, is_cache_file
from ..files import atomic_write_text, remove_leftovers, temporary
from .errors import EXIT_ERROR, EXIT_USAGE, RunError, warn

try:
    import fcntl
except ImportError:                     # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGINT")
                     if hasattr(signal, n))

# What a run writes into OUT and OUT/checkpoints (their temporaries are the run's own).
_RUN_TARGETS = {"latest.npz", "best.npz", "metrics.json", "metrics.csv", "steps.csv",
                "curves.png", "config.json", "preflight", LOCK_NAME}
# How long a refused run waits for the holder to write its details into .lock.
_DETAILS_WAIT_S = 2.0


# --------------------------------------------------------------------------- #
# Writable folders and leftovers
# --------------------------------------------------------------------------- #
def probe_writable(folder) -> str | None:
    """Make ``folder`` (and parents) and write a file in it; None if that worked, else why not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = temporary(folder, "preflight")
        try:
            os.write(fd, b"numpy-alexnet write check\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
    except OSError as err:
        return f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
    return None


def remove_run_temps(out) -> list[Path]:
    """Remove what killed atomic writes left in ``out`` and ``out/checkpoints``; the paths removed."""
    return [p for folder in (Path(out), Path(out) / "checkpoints")
            for p in remove_leftovers(folder, lambda target: target in _RUN_TARGETS)]


def remove_stale_cache_temps(folder=None) -> list[Path]:
    """Remove what killed writes left in the dataset cache (default: its usual folder).

    The cache is shared by every run on the machine: a temporary still being
    written (its writer holds its lock) is left alone.
    """
    return remove_leftovers(folder if folder is not None else default_cache_dir(), is_cache_file)


# --------------------------------------------------------------------------- #
# The lock on OUT
# --------------------------------------------------------------------------- #
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:             # someone else's process: alive
        return True
    return True


def _read_lock(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
        return holder if isinstance(holder, dict) and "pid" in holder else None
    except (OSError, ValueError):
        return None


def _flock_folder(folder: Path) -> tuple[int | None, bool | None]:
    """(fd, True): ``folder``'s flock is ours; (None, False): another process holds it;
    (None, None): no flock here (no fcntl, or a file system without it)."""
    if fcntl is None:
        return None, None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None, None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd, True
    except BlockingIOError:
        os.close(fd)
        return None, False
    except OSError:
        os.close(fd)
        return None, None


class RunLock:
    """``with RunLock(out):`` the run in ``out`` is this process's until the block ends."""

    def __init__(self, out):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.me = {"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        self._fd = None

    def __enter__(self):
        problem = probe_writable(self.out) or probe_writable(self.out / "checkpoints")
        if problem:
            raise RunError(f"--out {self.out} is not writable ({problem}); expected a folder "
                           "this user can write the run into", EXIT_ERROR)
        self._fd, ours = _flock_folder(self.out)
        try:
            if ours is False:
                self._refuse(self._holder_details(), held=True)
            holder = _read_lock(self.path)
            if holder is not None and self._alive(holder):
                self._refuse(holder, held=False)
            if self.path.exists():
                what = (f"PID {holder['pid']} on {holder.get('host')} is gone" if holder
                        else "its content is unreadable")
                warn(f"taking over the lock {self.path} ({what})")
            try:
                atomic_write_text(self.path, json.dumps(self.me))
            except OSError as err:
                raise RunError(f"--out {self.out}: the lock {self.path} cannot be written "
                               f"({err.strerror or err}); expected a folder this user can "
                               "write the run into", EXIT_ERROR) from err
        except BaseException:
            self._close()
            raise
        return self

    def _holder_details(self) -> dict | None:
        """The holder's details: it writes them just after taking the flock."""
        deadline = time.monotonic() + _DETAILS_WAIT_S
        while (holder := _read_lock(self.path)) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return holder

    def _alive(self, holder: dict) -> bool:
        """Whether the process a lock file names may still run (not provably gone)."""
        if holder.get("host") != self.me["host"]:
            return True                             # another machine's PID: cannot tell
        return int(holder["pid"]) != os.getpid() and _pid_alive(int(holder["pid"]))

    def _refuse(self, holder: dict | None, held: bool) -> None:
        who = (f"PID {holder['pid']} on {holder.get('host')}, started {holder.get('started')}"
               if holder else "its details not written yet")
        gone = "" if held else " (if that process is gone, delete the lock file)"
        raise RunError(f"--out {self.out} is in use by another run: {who} (lock {self.path}); "
                       f"wait for it to end or choose another --out{gone}", EXIT_USAGE)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)                      # gives the flock back
            self._fd = None

    def __exit__(self, *exc):
        try:
            if _read_lock(self.path) == self.me:
                self.path.unlink()
        except OSError as err:                      # e.g. OUT turned read-only
            warn(f"could not remove the lock {self.path} ({err.strerror or err}); the next "
                 f"run in {self.out} takes it over")
        finally:
            self._close()
        return False


# --------------------------------------------------------------------------- #
# Signals
# --------------------------------------------------------------------------- #
class SignalStop(BaseException):
    """A stop signal that could not wait for a step boundary (before training, or a second one)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """What :func:`stop_on_signals` yields: the first signal received, and the trainer to stop."""

    def __init__(self):
        self.signum: int | None = None
        self.trainer = None             # set once training is about to start

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def __call__(self, signum, frame):
        if self.signum is not None or self.trainer is None:
            self.signum = self.signum or signum
            raise SignalStop(signum)    # nothing to finish yet, or asked twice: stop now
        self.signum = signum
        self.trainer.request_stop(f"signal {self.name}")

    def watch(self, trainer) -> None:
        """From here on a signal asks ``trainer`` to stop at a step boundary.

        A signal received before, whose SignalStop library code swallowed (an
        exception raised in a handler can be cleared by C code it lands in, as
        io's buffered readers clear one from ``tell()``), stops the run here.
        """
        if self.signum is not None:
            raise SignalStop(self.signum)
        self.trainer = trainer


@contextmanager
def stop_on_signals():
    """SIGTERM, SIGHUP, SIGINT during the block: stop after the step in progress.

    Yields a :class:`SignalGuard`; once it watches a trainer (``watch``), a
    signal asks that trainer to stop at the next step boundary, where it
    writes its checkpoint (as at any stop).  Before that (data loading, model
    building) or at a second signal, :class:`SignalStop` is raised at once
    (and, should library code swallow it, again at ``watch``); checkpoints
    already written stay whole (writes are atomic).  Outside the main thread
    signals cannot be caught: the block runs with the default handlers.
    """
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    old = {s: signal.signal(s, guard) for s in STOP_SIGNALS}
    try:
        yield guard
    finally:
        for s, h in old.items():
            signal.signal(s, h)
