"""What C decoders print while a photo is decoded, caught instead of reaching the user's terminal.

libtiff and libjpeg report damaged data on the process's standard error (file
descriptor 2), below Python. Worker processes started for the user inherit the
terminal, so a folder of broken files scattered thousands of such lines between
the progress lines. While a photo is decoded in a worker process, descriptor 2
points at a private scratch file; what arrives there is handed back with the
photo: into a failure's detail, or into the decoder log beside the cache.

Only processes started by a parent (LocalCluster and ``dask worker`` processes)
redirect: in the user's own process, descriptor 2 is also where progress goes.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
import threading
from typing import Iterator

__all__ = ["caught_stderr"]

_lock = threading.Lock()
_active: set = set()
_scratch_file = None  # kept open for the process's life, reused by every decode
_scratch: int | None = None
_saved: int | None = None
_ROTATE_BYTES = 1 << 20


class Caught:
    """The messages caught while one photo decoded; ``shared`` if other decodes ran meanwhile."""

    def __init__(self) -> None:
        self.text = ""
        self.shared = False


def _redirect_on() -> None:
    global _scratch_file, _scratch, _saved
    if _scratch is None:
        _scratch_file = tempfile.TemporaryFile(prefix="mosaic-decoder-")
        _scratch = _scratch_file.fileno()
    elif os.fstat(_scratch).st_size > _ROTATE_BYTES:
        os.ftruncate(_scratch, 0)
    _saved = os.dup(2)
    os.dup2(_scratch, 2)


def _redirect_off() -> None:
    global _saved
    os.dup2(_saved, 2)
    os.close(_saved)
    _saved = None


@contextlib.contextmanager
def caught_stderr() -> Iterator[Caught]:
    """Catch what is written to descriptor 2 while the block runs (in worker processes only)."""
    caught = Caught()
    if multiprocessing.parent_process() is None:
        yield caught
        return
    with _lock:
        if not _active:
            _redirect_on()
        for other in _active:
            other.shared = True
        caught.shared = bool(_active)
        _active.add(caught)
        start = os.lseek(_scratch, 0, os.SEEK_END)
    try:
        yield caught
    finally:
        with _lock:
            end = os.lseek(_scratch, 0, os.SEEK_END)
            raw = os.pread(_scratch, end - start, start) if end > start else b""
            _active.discard(caught)
            if not _active:
                _redirect_off()
        caught.text = raw.decode("utf-8", "replace").strip()
