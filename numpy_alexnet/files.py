"""Files written whole or not at all, and the leftovers of writes a kill interrupted.

Every file the package writes that a later run reads (checkpoints, metrics,
reports, the dataset cache, the lock's details) goes through
:func:`atomic_write`: the bytes go to a temporary file in the target's
folder, are flushed and fsync'ed, and the file is then renamed over the
target (``os.replace`` is atomic on POSIX and Windows).  A process killed at
any instant leaves the old file or the new one, never a torn one.

The temporary file is named ``.<target name>.<8 random characters>.tmp``, and
its writer holds an exclusive ``flock`` on it while it exists; the kernel
drops that lock when the writer dies, however it dies.  So a temporary whose
lock can be taken is provably a dead writer's leftover, whatever its age:
:func:`remove_leftovers` removes those, at the next start, and leaves a live
writer's alone.  (Without ``flock``, on Windows, a file still open cannot be
removed: trying is as safe.)
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:                        # pragma: no cover - Windows
    fcntl = None

_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")   # as tempfile.mkstemp names


def temporary(folder, target: str) -> tuple[int, str]:
    """(fd, path) of a new temporary file for ``target`` in ``folder``, locked while open."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + target + ".", suffix=".tmp")
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:                    # a file system without locks: no claim to it
            pass
    return fd, tmp


def atomic_write(path, write) -> Path:
    """Call ``write(file)`` on a temporary binary file next to ``path``, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary(path.parent, path.name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes it 0600; give the file open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:          # renamed while locked: never seen unlocked
                os.replace(tmp, path)
        if fcntl is None:                  # pragma: no cover - Windows renames no open file
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    try:                                   # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:                        # pragma: no cover - e.g. Windows
        pass
    return path


def atomic_write_text(path, text: str) -> Path:
    """``text`` as UTF-8 into ``path``, whole or not at all."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_leftovers(folder, is_target) -> list[Path]:
    """Remove the temporaries in ``folder`` of dead writers whose target name passes
    ``is_target``; the paths removed.  A live writer's temporary is left alone."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        named = _TEMPORARY.match(p.name)
        if named and is_target(named["target"]) and _writer_gone(p):
            try:
                p.unlink()
                removed.append(p)
            except OSError:                # gone meanwhile, or still open (Windows)
                pass
    return removed


def _writer_gone(path: Path) -> bool:
    """Whether no process holds ``path``'s lock (its writer has ended, however it ended)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:                        # held by a live writer (or locks unsupported)
        return False
    finally:
        os.close(fd)
