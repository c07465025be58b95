"""A run's folder as a shared resource: the lock, the write check, leftovers, signals.

* :class:`RunLock`: ``OUT/.lock`` holds the PID, host and start time of the
  run writing into OUT; a second run there is refused, naming the first.  A
  lock whose process is gone (same host, no such PID) is taken over.
* :func:`probe_writable`: a folder is written to (and the file removed) before
  any work, so a read-only ``--out`` is found at once, not an epoch later.
* :func:`remove_run_temps` / :func:`remove_stale_cache_temps`: the temporary
  files of an atomic write that a kill interrupted (``.latest.npz.k3j9x2ab.tmp``)
  are removed at the next start; only the project's own names are touched.
* :func:`stop_on_signals`: SIGTERM, SIGHUP and SIGINT ask the trainer to stop
  after the step in progress; it then writes its checkpoint as at any stop
  (before training starts they stop at once: there is nothing to save).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import EXIT_ERROR, EXIT_USAGE, RunError, warn

LOCK_NAME = ".lock"
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGINT")
                     if hasattr(signal, n))

# The names tempfile.mkstemp gives the atomic writes of checkpoint.atomic_write_bytes_via
# ('.' + target name + '.' + 8 random characters + '.tmp') and of the write check below.
_RUN_TEMP = re.compile(r"^\.(latest\.npz|best\.npz|metrics\.json|metrics\.csv|steps\.csv|"
                       r"curves\.png|preflight)\.[a-z0-9_]{8}\.tmp$")
# The dataset cache's (datasets._atomic_savez: target name + 8 random characters + '.tmp').
_CACHE_TEMP = re.compile(r"^[^/]+-[0-9a-f]{20}(\.stats)?\.npz[a-z0-9_]{8}\.tmp$")
# A cache temporary not written to for this long belongs to no live writer.
CACHE_TEMP_AGE_S = 600


# --------------------------------------------------------------------------- #
# Writable folders and leftovers
# --------------------------------------------------------------------------- #
def probe_writable(folder) -> str | None:
    """Make ``folder`` (and parents) and write a file in it; None if that worked, else why not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".preflight.", suffix=".tmp")
        try:
            os.write(fd, b"numpy-alexnet write check\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.remove(tmp)
    except OSError as err:
        return f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
    return None


def remove_run_temps(out) -> list[Path]:
    """Remove what killed atomic writes left in ``out`` and ``out/checkpoints``; the paths removed.

    Called with the run's lock held, so no live writer owns them.
    """
    removed = []
    for folder in (Path(out), Path(out) / "checkpoints"):
        if folder.is_dir():
            for p in folder.iterdir():
                if _RUN_TEMP.match(p.name) and p.is_file():
                    p.unlink(missing_ok=True)
                    removed.append(p)
    return removed


def remove_stale_cache_temps(folder=None, age_s: float = CACHE_TEMP_AGE_S) -> list[Path]:
    """Remove the dataset cache's temporaries untouched for ``age_s`` seconds; the paths removed.

    The cache is shared by every run on the machine, so a temporary still being
    written (its modification time moves) is left alone.
    """
    from ..data import default_cache_dir
    folder = Path(folder) if folder is not None else default_cache_dir()
    removed, now = [], time.time()
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        try:
            if _CACHE_TEMP.match(p.name) and p.is_file() and now - p.stat().st_mtime > age_s:
                p.unlink()
                removed.append(p)
        except OSError:                 # gone meanwhile, or not ours to remove: leave it
            pass
    return removed


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


class RunLock:
    """``with RunLock(out):`` the run in ``out`` is this process's until the block ends."""

    def __init__(self, out):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.me = {"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}

    def __enter__(self):
        problem = probe_writable(self.out) or probe_writable(self.out / "checkpoints")
        if problem:
            raise RunError(f"--out {self.out} is not writable ({problem}); expected a folder "
                           "this user can write the run into", EXIT_ERROR)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            self._take_over_or_refuse()
            return self
        with os.fdopen(fd, "w") as f:
            json.dump(self.me, f)
        return self

    def _take_over_or_refuse(self) -> None:
        holder = _read_lock(self.path)
        if holder is not None and not self._stale(holder):
            raise RunError(
                f"--out {self.out} is in use by another run: PID {holder['pid']} on "
                f"{holder.get('host')}, started {holder.get('started')} (lock {self.path}); "
                "wait for it to end or choose another --out (if that process is gone, "
                "delete the lock file)", EXIT_USAGE)
        what = (f"PID {holder['pid']} on {holder.get('host')} is gone" if holder
                else "its content is unreadable")
        warn(f"taking over the lock {self.path} ({what})")
        tmp = self.path.with_name(f"{LOCK_NAME}.{os.getpid()}.new")
        tmp.write_text(json.dumps(self.me))
        os.replace(tmp, self.path)                  # atomic: one of two racing takers wins
        time.sleep(0.05)
        if _read_lock(self.path) != self.me:
            raise RunError(f"--out {self.out}: another run took the lock {self.path} "
                           "at the same moment; choose another --out", EXIT_USAGE)

    def _stale(self, holder: dict) -> bool:
        if holder.get("host") != self.me["host"]:
            return False                            # another machine's PID: cannot tell
        return int(holder["pid"]) != os.getpid() and not _pid_alive(int(holder["pid"]))

    def __exit__(self, *exc):
        if _read_lock(self.path) == self.me:
            self.path.unlink(missing_ok=True)
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


@contextmanager
def stop_on_signals():
    """SIGTERM, SIGHUP, SIGINT during the block: stop after the step in progress.

    Yields a :class:`SignalGuard`; once its ``trainer`` is set, a signal asks
    that trainer to stop at the next step boundary, where it writes its
    checkpoint (as at any stop).  Before that (data loading, model building)
    or at a second signal, :class:`SignalStop` is raised at once; checkpoints
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
