"""Progress bars on long work: a tqdm bar on stderr, or nothing.

``progress_bar(enabled, **tqdm_arguments)`` is what every long loop of the
package uses (an epoch's batches, decoding images, reading an archive).  It
returns :class:`NoBar`, which accepts the same calls and draws nothing, when
the bar is switched off (``--quiet``) or tqdm is not installed: a bar is a
convenience, never a reason to fail.  Bars are left off the screen when done
(``leave=False``) and start no monitor thread (the data loaders fork).
"""
from __future__ import annotations

import sys


class NoBar:
    """A progress bar that draws nothing."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def set_description(self, s):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress_bar(enabled: bool = True, **kwargs):
    """A tqdm bar on stderr with ``kwargs`` (total, desc, unit, ...), or a :class:`NoBar`."""
    if not enabled:
        return NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return NoBar()

    class _Bar(tqdm):
        monitor_interval = 0      # no monitor thread: the data loaders fork

    kwargs.setdefault("leave", False)
    return _Bar(file=sys.stderr, **kwargs)
