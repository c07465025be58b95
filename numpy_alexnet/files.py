"""Files written whole or not at all.

Every file the package writes that a later run reads (checkpoints, metrics,
reports, the dataset cache) goes through :func:`atomic_write`: the bytes go
to a temporary file in the target's folder, are flushed and fsync'ed, and the
file is then renamed over the target (``os.replace`` is atomic on POSIX and
Windows).  A process killed at any instant leaves the old file or the new
one, never a torn one.  The temporary file is named ``.<target name>.<random>.tmp``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path, write) -> Path:
    """Call ``write(file)`` on a temporary binary file next to ``path``, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes it 0600; give the file open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
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
