"""A terminal progress line for long stages (stderr; redraws in place on a terminal)."""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Report ``done / total`` with a rate. Quiet when ``enabled`` is False.

    Parameters
    ----------
    label : str
        Stage name printed before the counts.
    total : int
        Number of items the stage will process. A stage that learns its total as it goes
        raises ``total`` and sets ``growing`` until it knows it all.
    unit : str
        What an item is ("photos", "cells", ...).
    enabled : bool
        Print anything at all.
    """

    def __init__(self, label: str, total: int, unit: str, enabled: bool = True):
        self.label, self.total, self.unit, self.enabled = label, total, unit, enabled
        self.done = 0
        self.growing = False
        self.start = time.perf_counter()
        self._interactive = sys.stderr.isatty()
        self._last_print = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        # On a terminal redraw often; in logs one line every few seconds.
        if (self.done >= self.total and not self.growing) or now - self._last_print >= (0.2 if self._interactive else 5.0):
            self._last_print = now
            self._print(final=False)

    def close(self) -> None:
        self._print(final=True)

    def _print(self, final: bool) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        percent = 100.0 * self.done / self.total if self.total else 100.0
        total = f"{self.total}+ found so far" if self.growing else f"{self.total}"
        line = f"{self.label}: {self.done}/{total} {self.unit} ({percent:.0f}%, {rate:.0f}/s, {elapsed:.1f}s)"
        if self._interactive:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        elif final or self.done < self.total:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
