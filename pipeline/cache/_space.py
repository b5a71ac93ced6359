"""Disk space for the next write, made sure of before HDF5 is asked to write anything.

HDF5 cannot recover from a write that fails half way: a full disk during a flush
left some of a batch's metadata on disk and some not, and the file no longer opened
(the library then crashed on close). So the writer reserves the space a batch can
take before writing it: Linux's ``fallocate`` with ``FALLOC_FL_KEEP_SIZE`` sets blocks
aside past the end of the file without changing its size (HDF5 then writes into
them); where that is not offered, the free space is compared instead.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

__all__ = ["NoSpace", "reserve"]

_KEEP_SIZE = 0x01  # FALLOC_FL_KEEP_SIZE, linux/falloc.h


class NoSpace(OSError):
    """The disk cannot take the next write; nothing of it was written."""


def _fallocate():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


_FALLOCATE = _fallocate()


def reserve(path: str, nbytes: int) -> None:
    """Make sure ``nbytes`` past the end of ``path`` can be written, or raise :class:`NoSpace`."""
    size = os.path.getsize(path)
    if _FALLOCATE is not None:
        fd = os.open(path, os.O_WRONLY)
        try:
            if _FALLOCATE(fd, _KEEP_SIZE, size, nbytes) == 0:
                return
            code = ctypes.get_errno()
        finally:
            os.close(fd)
        if code in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(code, os.strerror(code), path)
        if code not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), path)
    stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    if stats.f_bavail * stats.f_frsize < nbytes:
        raise NoSpace(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
