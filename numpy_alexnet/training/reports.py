"""Writing a study's report (``relu-vs-tanh``, ``ablate``): never a torn file, and
never an unfinished report over a complete one of the same study."""
from __future__ import annotations

import json
import os
from pathlib import Path


def is_complete_report_of(path: Path, settings: dict, keys: tuple) -> bool:
    """Whether ``path`` holds a complete report of a study with these settings.

    keys: the settings that make two reports the same study (the backend and
    ``--jobs`` are not among them: they give the same runs).
    """
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    ours = json.loads(json.dumps({k: settings[k] for k in keys}))        # tuples as lists
    return (old.get("complete") is True
            and {k: old.get("settings", {}).get(k) for k in keys} == ours)


def write_figure(draw, report: dict, path: Path) -> None:
    """``draw(report, file)`` under a temporary name, then renamed over ``path``: never a
    torn PNG."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        draw(report, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
