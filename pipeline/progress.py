"""Progress of long stages on stderr, through tqdm: a redrawn bar on a terminal, plain lines in a log."""
from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]

_LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f}%, {rate_fmt}, {elapsed})"


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines, for logs."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip("\n")
        if line.strip():
            self._stream.write(line + "\n")

    def flush(self) -> None:
        self._stream.flush()


class Progress:
    """Report ``done / total`` with a rate and the time so far. Silent when ``enabled`` is False.

    Parameters
    ----------
    label : str
        Stage name printed before the counts.
    total : int
        Items the stage will process. A stage that learns its total as it goes
        raises it with :meth:`grow`.
    unit : str
        What an item is ("files", "cells", ...).
    enabled : bool
        Print anything at all.
    """

    def __init__(self, label: str, total: int, unit: str, enabled: bool = True) -> None:
        interactive = sys.stderr.isatty()
        # On a terminal redraw often; in logs one line every few seconds.
        self._bar = tqdm(total=total, desc=label, unit=f" {unit}", disable=not enabled, leave=True,
                         file=sys.stderr if interactive else _Lines(sys.stderr), mininterval=0.2 if interactive else 5.0,
                         bar_format=None if interactive else _LOG_FORMAT, dynamic_ncols=interactive)

    def grow(self, n: int) -> None:
        """Add ``n`` items to the total."""
        self._bar.total += n
        self._bar.refresh()

    def update(self, n: int) -> None:
        """Count ``n`` more items done."""
        self._bar.update(n)

    def close(self) -> None:
        """Print the final counts."""
        self._bar.close()
