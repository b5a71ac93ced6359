"""The tile cache's schema and its rules, in one place (the README's "Tile cache schema" describes them).

One HDF5 file holds four groups of rows: ``tiles`` (thumbnails and features of
photos and video frames), ``aliases`` (files whose bytes are a tile's under another
path), ``failures`` (files that could not be made into tiles) and ``videos`` (each video
whose frames are all in: its stat key, frames kept, near-identical frames skipped). The
rules every reader and writer follows:

- **No global heap.** HDF5 keeps variable-length strings in a global heap whose
  collections are flushed independently of the datasets that point into them; a
  writer killed between the two left committed rows pointing at heap objects that
  were never written ("bad heap pointer"). Text (paths, reasons, details) is
  therefore stored as bytes in one ``text`` column of uint8 per group, and each text
  column as ``(start, end)`` offsets into it (``<name>_span``); the file's own
  attributes are fixed-length strings. Every value lives in a dataset's chunks.
- **Committed rows.** A group's ``committed`` attribute, ``[rows, text bytes]``, is
  updated only after the data it covers is flushed, then flushed itself: one small
  in-place write, so a killed writer leaves the old or the new count, never a count
  that covers unwritten data. Columns may be longer (a killed append); readers
  ignore the excess and the next writer trims it (:func:`discard_uncommitted`).
- **Retired rows.** Aliases and failures are retired in place rather than
  deleted: a retired alias points at tile -1, a retired failure has an empty
  reason (:data:`RETIRED`, :func:`live_rows`).
- **No reuse of freed space.** The file is created with HDF5's ``none`` free-space
  strategy, so a killed writer cannot have written over space the file on disk
  still points to; and thumbnails are not compressed, so an append rewrites
  committed bytes only with themselves.
- **Atomic creation.** A new cache is built under a hidden temporary name in the
  same folder and linked to its final name only when its skeleton is complete.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import h5py
import numpy as np

from ..features import DOMINANT_BINS_PER_CHANNEL, SQUARE, TileAspect

__all__ = ["SCHEMA_VERSION", "UPGRADABLE_VERSION", "GROUPS", "add_videos_group", "groups_in", "RETIRED", "TEXT_COLUMNS", "FEATURE_DEFINITIONS", "committed", "committed_rows",
           "create_layout", "discard_uncommitted", "live_rows", "read_attr_json", "read_text", "set_committed",
           "write_attr_json", "write_text"]

# v4: thumbnails of the cache's tile aspect, (N, height, width, 3), and the ``tile_aspect`` attribute.
# v5: the ``videos`` group. A v4 cache is read as one without videos, and opened for writing it gains the
# group in place (:func:`add_videos_group`): nothing else changed.
SCHEMA_VERSION = 5
UPGRADABLE_VERSION = 4
GROUPS = ("tiles", "aliases", "failures", "videos")
TEXT_COLUMNS = {"tiles": ("path",), "aliases": ("path",), "failures": ("path", "reason", "detail"), "videos": ("path",)}
# The column and value that retire a row of each group that can be retired.
RETIRED = {"aliases": ("tile", -1), "failures": ("reason", ""), "videos": ("frames", -1)}
_VIDEO_COLUMNS = ("frames", "skipped")  # frames made into tiles; near-identical frames passed over
FEATURE_DEFINITIONS = {
    "colour_space": "CIELAB, D65 white, from sRGB (IEC 61966-2-1); distance = CIE76 delta E",
    "mean_lab": "mean L*a*b* of all pixels of the thumbnail",
    "dominant_lab": (
        f"mean L*a*b* of the pixels in the fullest bin of a "
        f"{DOMINANT_BINS_PER_CHANNEL}x{DOMINANT_BINS_PER_CHANNEL}x{DOMINANT_BINS_PER_CHANNEL} sRGB histogram"
    ),
    "grid_lab": "mean L*a*b* of each block of a grid x grid split, row-major from the top left",
}
_TEXT_CHUNK = 1 << 16


def write_attr_json(node: h5py.HLObject, name: str, value) -> None:
    """Store JSON as a fixed-length byte string (in the object header, not the global heap)."""
    node.attrs[name] = np.bytes_(json.dumps(value).encode())


def read_attr_json(node: h5py.HLObject, name: str):
    raw = node.attrs[name]
    return json.loads(raw.decode() if isinstance(raw, bytes) else bytes(raw).decode())


def create_layout(file: h5py.File, tile_size: int, grid: int, crop: str = "centre", aspect: TileAspect = SQUARE) -> None:
    """Write the attributes and the empty, appendable datasets of a new cache.

    Thumbnails are ``aspect.tile_shape(tile_size)``: ``tile_size`` px on their shorter side.
    """
    # crop: where each photo's window was cut. Fixed-length bytes: a variable-length string
    # lives in the global heap, which a kill can leave behind its pointer.
    file.attrs.update(schema_version=SCHEMA_VERSION, tile_size=tile_size, grid=grid, crop=np.bytes_(crop.encode()),
                      tile_aspect=np.array(aspect, np.int64))
    write_attr_json(file, "feature_definitions", FEATURE_DEFINITIONS)
    write_attr_json(file, "roots", [])
    groups = {name: file.create_group(name) for name in GROUPS}
    tiles, (height, width) = groups["tiles"], aspect.tile_shape(tile_size)
    tiles.create_dataset("content_hash", shape=(0, 2), maxshape=(None, 2), dtype=np.uint64, chunks=(4096, 2))
    tiles.create_dataset("thumbnails", shape=(0, height, width, 3), maxshape=(None, height, width, 3), dtype=np.uint8,
                         chunks=(max(1, 2**18 // (height * width * 3)), height, width, 3))
    for name, shape in (("mean_lab", (3,)), ("dominant_lab", (3,)), ("grid_lab", (grid, grid, 3))):
        tiles.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=np.float32, chunks=(4096, *shape))
    groups["aliases"].create_dataset("tile", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
    for name, group in groups.items():
        _add_row_columns(group, name)


def _add_row_columns(group: h5py.Group, name: str) -> None:
    """Every group's stat key and text columns, a video's counts, and an empty commit record."""
    columns = ("size", "mtime_ns", *(_VIDEO_COLUMNS if name == "videos" else ()))
    for column in columns:
        group.create_dataset(column, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
    group.create_dataset("text", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(_TEXT_CHUNK,))
    for column in TEXT_COLUMNS[name]:
        group.create_dataset(f"{column}_span", shape=(0, 2), maxshape=(None, 2), dtype=np.int64, chunks=(4096, 2))
    set_committed(group, 0, 0)


def add_videos_group(file: h5py.File) -> None:
    """Bring a v4 cache to v5 in place: add the empty ``videos`` group, then say v5.

    The group is built under a work name and moved to ``videos`` only when whole, so a
    kill leaves the file v4 (a half-built work group is thrown away next time).
    """
    work = "videos.partial"
    if work in file:
        del file[work]
    _add_row_columns(file.create_group(work), "videos")
    file.flush()
    file.move(work, "videos")
    file.flush()
    file.attrs["schema_version"] = SCHEMA_VERSION
    file.flush()


def groups_in(file: h5py.File) -> tuple[str, ...]:
    """The row groups this file has: all of :data:`GROUPS`, or those of a v4 file opened read-only."""
    return tuple(name for name in GROUPS if name in file)


def committed(group: h5py.Group) -> tuple[int, int]:
    """``(rows, text bytes)`` of a group that are committed."""
    rows, text = group.attrs["committed"]
    return int(rows), int(text)


def committed_rows(group: h5py.Group) -> int:
    """How many rows of a group are committed."""
    return committed(group)[0]


def set_committed(group: h5py.Group, rows: int, text_bytes: int) -> None:
    """Commit rows and text; the caller flushes what they cover before, and this after."""
    group.attrs["committed"] = np.array([rows, text_bytes], np.int64)


def write_text(group: h5py.Group, values: Sequence[str], start: int) -> tuple[np.ndarray, int]:
    """Write ``values`` to the group's text column from byte ``start`` on; their (n, 2) spans and the end.

    ``start`` is the committed end or past it, so committed text is never written over.
    Text is stored as ``os.fsencode`` bytes, so undecodable file names (surrogate
    escapes) come back unchanged.
    """
    encoded = [os.fsencode(v) for v in values]
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    spans = np.empty((len(encoded), 2), np.int64)
    spans[:, 1] = start + ends
    spans[:, 0] = spans[:, 1] - [len(e) for e in encoded]
    total = int(ends[-1]) if len(encoded) else 0
    text = group["text"]
    text.resize(start + total, axis=0)
    if total:
        text[start:] = np.frombuffer(b"".join(encoded), np.uint8)
    return spans, start + total


def read_text(group: h5py.Group, column: str, rows: slice | None = None) -> list[str]:
    """The committed values of a text column (``rows``: a slice of committed rows)."""
    wanted = slice(committed_rows(group)) if rows is None else slice(*rows.indices(committed_rows(group)))
    spans = group[f"{column}_span"][wanted]  # only the rows asked for are read
    if not len(spans):
        return []
    lo, hi = int(spans[:, 0].min()), int(spans[:, 1].max())
    blob = group["text"][lo:hi].tobytes() if hi > lo else b""
    return [os.fsdecode(blob[a - lo : b - lo]) for a, b in spans.tolist()]


def live_rows(group_name: str, group: h5py.Group) -> np.ndarray:
    """Which committed rows of a group are not retired (bool)."""
    n = committed_rows(group)
    if group_name not in RETIRED:
        return np.ones(n, bool)
    column, retired = RETIRED[group_name]
    if column in TEXT_COLUMNS[group_name]:  # retired text is empty: a zero-length span
        spans = group[f"{column}_span"][:n]
        return spans[:, 1] > spans[:, 0]
    return group[column][:n] != retired


def discard_uncommitted(file: h5py.File) -> None:
    """Trim columns a killed writer extended past the committed rows and text."""
    for group_name in groups_in(file):
        group = file[group_name]
        rows, text_bytes = committed(group)
        for name, dataset in group.items():
            keep = text_bytes if name == "text" else rows
            if dataset.shape[0] > keep:
                dataset.resize(keep, axis=0)
