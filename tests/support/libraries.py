"""Libraries of real photos for tests that need a run long enough to interfere with."""
from __future__ import annotations

from pathlib import Path


def distinct_copies(root: Path, photos: list[Path], copies: int) -> Path:
    """``copies`` folders of every photo, each copy a distinct file (not an alias of the first).

    Bytes after a JPEG's end marker are ignored by decoders, so the copies show the same
    pictures while their content hashes differ.
    """
    for i in range(copies):
        (root / f"copy{i}").mkdir(parents=True)
        for photo in photos:
            (root / f"copy{i}" / photo.name).write_bytes(photo.read_bytes() + f"copy {i}".encode())
    return root
