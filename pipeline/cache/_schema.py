"""The tile cache's schema and its rules, in one place (the README's "Tile cache schema" describes them).

One HDF5 file holds three groups of rows: ``tiles`` (thumbnails and features of
photos), ``aliases`` (files whose bytes are a tile's under another path) and
``failures`` (files that could not be made into tiles). The rules every reader
and writer follows:

- **Committed rows.** ``path`` is written last on every append, so the length of
  ``path`` is a group's committed row count; a writer killed mid-append leaves
  longer data columns, which the next writer trims (:func:`discard_uncommitted`).
- **Retired rows.** Aliases and failures are retired in place rather than
  deleted: a retired alias points at tile -1, a retired failure has an empty
  reason (:data:`RETIRED`, :func:`live_rows`).
- **No reuse of freed space.** The file is created with HDF5's ``none`` free-space
  strategy, so a killed writer cannot have written over space the file on disk
  still points to; and thumbnails are not compressed, so an append rewrites
  committed bytes only with themselves.
"""
from __future__ import annotations

import json
import os
from typing import Iterable

import h5py
import numpy as np

from ..features import DOMINANT_BINS_PER_CHANNEL

__all__ = ["SCHEMA_VERSION", "GROUPS", "RETIRED", "FEATURE_DEFINITIONS", "committed_rows", "create_layout",
           "decode_paths", "discard_uncommitted", "encode_paths", "live_rows"]

SCHEMA_VERSION = 2
GROUPS = ("tiles", "aliases", "failures")
# The column and value that retire a row of each group that can be retired.
RETIRED = {"aliases": ("tile", -1), "failures": ("reason", "")}
_TEXT = h5py.string_dtype("utf-8")
FEATURE_DEFINITIONS = {
    "colour_space": "CIELAB, D65 white, from sRGB (IEC 61966-2-1); distance = CIE76 delta E",
    "mean_lab": "mean L*a*b* of all pixels of the square thumbnail",
    "dominant_lab": (
        f"mean L*a*b* of the pixels in the fullest bin of a "
        f"{DOMINANT_BINS_PER_CHANNEL}x{DOMINANT_BINS_PER_CHANNEL}x{DOMINANT_BINS_PER_CHANNEL} sRGB histogram"
    ),
    "grid_lab": "mean L*a*b* of each block of a grid x grid split, row-major from the top left",
}


def encode_paths(paths: Iterable[str]) -> list[bytes]:
    """File names as stored: fsencode keeps undecodable names (surrogate escapes) round-trippable."""
    return [os.fsencode(p) for p in paths]


def decode_paths(raw: np.ndarray) -> list[str]:
    """Stored file names back as ``str``."""
    return [os.fsdecode(p) for p in raw]


def create_layout(file: h5py.File, tile_size: int, grid: int) -> None:
    """Write the attributes and the empty, appendable datasets of a new cache."""
    file.attrs.update(schema_version=SCHEMA_VERSION, tile_size=tile_size, grid=grid,
                      feature_definitions=json.dumps(FEATURE_DEFINITIONS), roots=json.dumps([]))
    tiles = file.create_group("tiles")
    s = tile_size
    tiles.create_dataset("content_hash", shape=(0, 2), maxshape=(None, 2), dtype=np.uint64, chunks=(4096, 2))
    tiles.create_dataset("thumbnails", shape=(0, s, s, 3), maxshape=(None, s, s, 3), dtype=np.uint8,
                         chunks=(max(1, 2**18 // (s * s * 3)), s, s, 3))
    for name, shape in (("mean_lab", (3,)), ("dominant_lab", (3,)), ("grid_lab", (grid, grid, 3))):
        tiles.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=np.float32, chunks=(4096, *shape))
    _create_file_columns(tiles)
    aliases = file.create_group("aliases")
    _create_file_columns(aliases)
    aliases.create_dataset("tile", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
    failures = file.create_group("failures")
    _create_file_columns(failures)
    failures.create_dataset("reason", shape=(0,), maxshape=(None,), dtype=_TEXT, chunks=(1024,))
    failures.create_dataset("detail", shape=(0,), maxshape=(None,), dtype=_TEXT, chunks=(1024,))


def _create_file_columns(group: h5py.Group) -> None:
    group.create_dataset("size", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
    group.create_dataset("mtime_ns", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
    # Written last on every append: the length of "path" is the committed row count.
    group.create_dataset("path", shape=(0,), maxshape=(None,), dtype=_TEXT, chunks=(1024,))


def committed_rows(group: h5py.Group) -> int:
    """How many rows of a group are committed: the length of its ``path`` column."""
    return group["path"].shape[0]


def live_rows(group_name: str, group: h5py.Group) -> np.ndarray:
    """Which committed rows of a group are not retired (bool)."""
    n = committed_rows(group)
    if group_name not in RETIRED:
        return np.ones(n, bool)
    column, retired = RETIRED[group_name]
    values = group[column].asstr()[:n] if isinstance(retired, str) else group[column][:n]
    return np.asarray(values, dtype=object if isinstance(retired, str) else None) != retired


def discard_uncommitted(file: h5py.File) -> None:
    """Trim columns a killed writer extended past the committed ``path`` length."""
    for group_name in GROUPS:
        group = file[group_name]
        n = committed_rows(group)
        for dataset in group.values():
            if dataset.shape[0] > n:
                dataset.resize(n, axis=0)
