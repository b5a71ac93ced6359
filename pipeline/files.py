"""Writing output files so that an interrupted write never leaves a half file under the final name."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import socket
from typing import IO, Iterator

import numpy as np

from .errors import MosaicError

__all__ = ["check_not_precious", "check_writable", "partial_sibling", "remove_stale_partials", "replaced_atomically",
           "write_all"]

# A work file's name says whose it is: .<final name>.<host>.<pid>.<hex>.partial
_HOST = socket.gethostname()


def _partial_name(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.partial")


@contextlib.contextmanager
def partial_sibling(path: str | os.PathLike) -> Iterator[str]:
    """A hidden work name beside ``path`` (file or folder), removed when the block ends, whatever happens.

    Leftovers of killed runs are removed first (:func:`remove_stale_partials`).
    """
    remove_stale_partials(path)
    temporary = _partial_name(os.fspath(path))
    try:
        yield temporary
    finally:
        _remove(temporary)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_partials(path: str | os.PathLike) -> list[str]:
    """Remove the work files and folders that killed runs of this host left for ``path``; their names.

    Only names of our own pattern are touched, and only those whose process is gone.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    pattern = re.compile(rf"\.{re.escape(name)}\.{re.escape(_HOST)}\.(\d+)\.[0-9a-f]{{8}}\.partial\Z")
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry)
        if match and int(match[1]) != os.getpid() and not _pid_is_alive(int(match[1])):
            _remove(os.path.join(folder, entry))
            removed.append(entry)
    return removed


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike, binary: bool = True, **open_options) -> Iterator[IO]:
    """Open a hidden sibling of ``path`` for writing; rename it over ``path`` only if the block completes.

    The sibling is opened with mode ``x`` (not mkstemp, which forces mode 0600), so the
    finished file gets the user's usual permissions.
    """
    with partial_sibling(path) as temporary:
        with open(temporary, "xb" if binary else "x", **open_options) as f:
            yield f
        os.replace(temporary, path)


def check_writable(*paths: str | os.PathLike) -> None:
    """Refuse, before any work, outputs whose folder is missing or cannot be written.

    Creates and removes a work file beside each output: the only test that tells a
    read-only mount, a full quota or a pseudo-filesystem such as /proc from a folder
    that takes files.
    """
    for path in paths:
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(folder):
            raise MosaicError(f"output folder does not exist: {folder}")
        if os.path.isdir(path):
            raise MosaicError(f"{os.fspath(path)} is a folder; give a file name for the output")
        probe = _partial_name(os.fspath(path))
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            reason = "read-only file system" if exc.errno == errno.EROFS else (exc.strerror or str(exc)).lower()
            raise MosaicError(f"cannot write {os.fspath(path)}: {reason}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)


def check_not_precious(out: str, *precious: str) -> None:
    """Refuse an output path that is one of the inputs, or that cannot be written (:func:`check_writable`)."""
    for path in precious:
        if path and os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path):
            raise MosaicError(f"refusing to write the mosaic over {path}")
    check_writable(out)


def write_all(fd: int, parts: list[bytes | np.ndarray]) -> None:
    """Write byte strings and 1-D uint8 arrays, in order, with as few system calls as the kernel allows."""
    first = 0
    while first < len(parts):
        written = os.writev(fd, parts[first : first + 1024])  # IOV_MAX
        while first < len(parts) and written >= len(parts[first]):
            written -= len(parts[first])
            first += 1
        if written:
            parts[first] = parts[first][written:]
