"""What is wrong with a file that should be a tile cache, said in one line with what to do."""
from __future__ import annotations

import errno
import fcntl
import os
import re
import shlex

import h5py

from ._schema import GROUPS, SCHEMA_VERSION, TEXT_COLUMNS, UPGRADABLE_VERSION, read_attr_json

__all__ = ["damaged", "held_by_live_process", "layout_problem", "why_unopenable"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_REDO = "remove it and run the same command again"


def damaged(path: str, what: str) -> str:
    """The message for a cache whose bytes are not what its writer left: it must be rebuilt."""
    return f"{path} is damaged ({what}): {_REDO}"


def held_by_live_process(path: str) -> bool:
    """Whether a running process holds HDF5's lock on ``path`` (a killed one holds none)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # HDF5 locks with flock(2): writers LOCK_EX
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)  # also drops our lock
    return False


def _has_hdf5_signature(path: str, size: int) -> bool:
    with open(path, "rb") as f:
        offset = 0
        while offset + len(_SIGNATURE) <= size:  # the superblock may follow a user block of 512 * 2**k bytes
            f.seek(offset)
            if f.read(len(_SIGNATURE)) == _SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def why_unopenable(path: str, exc: OSError) -> str:
    """Why h5py could not open ``path``, as a message for the user."""
    if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
        return f"{path}: permission denied"
    text = str(exc)
    if "lock" in text.lower():
        if held_by_live_process(path):
            return f"{path} is in use by another process (is a `mosaic index` running?)"
    try:
        size = os.path.getsize(path)
        signed = _has_hdf5_signature(path, size)
    except OSError as stat_error:
        return f"{path}: {stat_error.strerror or stat_error}"
    if not signed:
        if size == 0:
            return f"{path} is empty (0 bytes), not a tile cache: {_REDO}"
        return f"{path} is not a tile cache (not an HDF5 file): give another cache path"
    truncated = re.search(r"truncated file: eof = (\d+)", text)
    if truncated:
        return damaged(path, f"truncated at {int(truncated.group(1)):,} bytes")
    detail = re.sub(r"^Unable to synchronously open file \((.*)\)$", r"\1", text.splitlines()[0] if text else repr(exc))
    return damaged(path, detail)


def _reindex_command(file: h5py.File) -> str:
    """The command that rebuilds an older cache's library into a new file beside it."""
    try:
        roots = read_attr_json(file, "roots")
    except Exception:  # an older cache may lack the attribute or hold it otherwise: name the library generically
        roots = []
    stem, extension = os.path.splitext(file.filename)
    libraries = " ".join(shlex.quote(root) for root in roots) if roots else "LIBRARY"
    return f"mosaic index {libraries} --cache {shlex.quote(stem + f'.v{SCHEMA_VERSION}' + (extension or '.h5'))}"


def layout_problem(file: h5py.File) -> str | None:
    """Why an open HDF5 file is not a cache this version can use, or None."""
    path = file.filename
    version = file.attrs.get("schema_version")
    if version is None:
        return f"{path} is an HDF5 file but not a mosaic tile cache: give another cache path"
    if int(version) > SCHEMA_VERSION:
        return (f"{path} was written by a newer mosaic (cache schema v{int(version)}; this one reads v{SCHEMA_VERSION}): "
                "upgrade mosaic to use it")
    if int(version) < UPGRADABLE_VERSION:
        return (f"{path} has cache schema v{int(version)}, older than this mosaic's v{SCHEMA_VERSION}: "
                f"index the library into a new cache: {_reindex_command(file)}")
    missing = [name for name in ("tile_size", "grid", "crop", "tile_aspect") if name not in file.attrs]
    if missing:
        return damaged(path, f"attribute {missing[0]} is missing")
    for group in GROUPS:
        if group == "videos" and int(version) == UPGRADABLE_VERSION:
            continue  # a v4 cache has none yet
        if group not in file or "committed" not in file[group].attrs:
            return damaged(path, f"group {group} is missing or has no commit record")
        for column in ("size", "mtime_ns", "text", *(f"{c}_span" for c in TEXT_COLUMNS[group])):
            if column not in file[group]:
                return damaged(path, f"column {group}/{column} is missing")
    return None
