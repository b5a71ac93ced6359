"""Walking a photo library: every regular file below a folder, with its stat key."""
from __future__ import annotations

import os
from typing import Iterator, NamedTuple

__all__ = ["FileEntry", "ScanProblem", "scan_library"]


class FileEntry(NamedTuple):
    path: str
    size: int
    mtime_ns: int


class ScanProblem(NamedTuple):
    path: str
    reason: str
    detail: str


def scan_library(root: str | os.PathLike, problems: list[ScanProblem] | None = None) -> Iterator[FileEntry]:
    """Yield every regular file below ``root`` (depth first, sorted by name).

    Hidden files and folders (names starting with ``.``) are passed over, and
    symlinked folders are not followed, so that link loops cannot trap the walk.
    Symlinked files are followed. Folders that cannot be read and links that lead
    nowhere are appended to ``problems``, and the walk goes on. Sockets, FIFOs and
    devices are passed over (reading a FIFO would block).

    Parameters
    ----------
    root : path
        The library folder.
    problems : list, optional
        Receives a :class:`ScanProblem` per folder or file that could not be read.
    """
    root = os.path.abspath(root)
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if problems is not None:
                problems.append(ScanProblem(folder, "unreadable", exc.strerror or str(exc)))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                elif entry.is_file():
                    stat = entry.stat()
                    yield FileEntry(entry.path, stat.st_size, stat.st_mtime_ns)
                elif entry.is_symlink() and not os.path.exists(entry.path):
                    if problems is not None:
                        problems.append(ScanProblem(entry.path, "missing", f"dangling link to {os.readlink(entry.path)}"))
            except OSError as exc:  # vanished, or a dangling link
                if problems is not None:
                    problems.append(ScanProblem(entry.path, "missing" if isinstance(exc, FileNotFoundError) else "unreadable", str(exc)))
        pending.extend(reversed(subfolders))
