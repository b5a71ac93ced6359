"""One batch of files made into tiles: read, hash, decode, thumbnail and describe (runs inside a Dask task)."""
from __future__ import annotations

import os
import socket
from typing import Sequence

import numpy as np
import xxhash
from distributed import get_worker

from ..config import or_config
from ..features import compute_features, pixel_shape
from ..photo import PHOTO_EXTENSIONS, PhotoError, decode_thumbnail, has_image_signature, read_photo
from ._scan import FileEntry
from ._stderr import caught_stderr
from ._writer import IndexedBatch

__all__ = ["index_batch"]

_VISIBILITY_REASONS = frozenset({"missing", "unreadable"})


def _this_process() -> str:
    try:
        return f"worker {get_worker().address}"
    except ValueError:  # not inside a Dask worker
        return f"host {socket.gethostname()}"


def _summarised(text: str, most: int = 3) -> str:
    """A decoder's messages as one line: the first few, and how many more (a bad strip repeats one per scan line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    more = f"; and {len(lines) - most} more" if len(lines) > most else ""
    return "; ".join(lines[:most]) + more


def _looks_like_photo(path: str) -> bool:
    if os.path.splitext(path)[1].lower() in PHOTO_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            return has_image_signature(f.read(16))
    except OSError:
        return False


def index_batch(files: Sequence[FileEntry], thumbnail: int | tuple[int, int], grid: int, *, min_size: int | None = None,
                max_pixels: int | None = None, crop: str = "centre") -> IndexedBatch:
    """Make tiles and features of a batch of files (runs inside a Dask task).

    Each file is read once; its bytes are hashed (xxh3-128, to find copies of one photo
    under several paths) and decoded from memory.

    Parameters
    ----------
    files : sequence of FileEntry
        Paths with their size and mtime.
    thumbnail : int or (int, int)
        The thumbnails' ``(height, width)`` in pixels (an int: square).
    grid : int
        The feature grid.
    min_size : int, optional
        Photos whose shorter side is below this many pixels are failures
        (``too-small``); default ``mosaic.index.min-size``.
    max_pixels : int, optional
        Decodes larger than this are failures (``too-large``); default
        ``mosaic.index.max-pixels``.
    crop : {"centre", "smart"}
        Where each photo's window is cut (:func:`pipeline.photo.decode_thumbnail`).

    Returns
    -------
    IndexedBatch
        Every file is a tile, a failure with its reason, or counted as not an image.
    """
    min_size = or_config(min_size, "index.min-size")
    max_pixels = or_config(max_pixels, "index.max-pixels")
    tiles, digests, failures, ignored, messages = [], [], [], 0, []
    height, width = pixel_shape(thumbnail)
    thumbnails = np.empty((len(files), height, width, 3), np.uint8)  # filled in place: no stacking copy
    for entry in files:
        if not _looks_like_photo(entry.path):
            ignored += 1
            continue
        failure = None
        with caught_stderr() as caught:
            try:
                data = read_photo(entry.path)
                thumbnails[len(tiles)] = decode_thumbnail(data, (height, width), max_pixels=max_pixels,
                                                          min_size=min_size, crop=crop)
                digests.append(xxhash.xxh3_128_digest(data))
                tiles.append(entry)
            except PhotoError as exc:
                detail = exc.detail
                if exc.reason in _VISIBILITY_REASONS:  # on a cluster: which machine could not see it
                    detail = f"on {_this_process()}: {detail}"
                failure = (entry, exc.reason, detail)
            except Exception as exc:  # one odd file must never end a run over millions
                failure = (entry, "error", f"{type(exc).__name__}: {exc}")
        said = _summarised(caught.text)
        if failure is not None:
            if said and not caught.shared:
                failure = (*failure[:2], f"{failure[2]} (decoder: {said})")
            failures.append(failure)
        if said and (failure is None or caught.shared):
            messages.append(("" if caught.shared else entry.path, said))
    thumbnails = thumbnails[: len(tiles)]
    features = compute_features(thumbnails, grid) if tiles else None
    hashes = np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2).astype(np.uint64)
    return IndexedBatch(tiles, thumbnails, features, hashes, failures, ignored, messages)
