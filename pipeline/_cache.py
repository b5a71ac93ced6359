"""The HDF5 tile cache: thumbnails, their features, where they came from, and what failed.

Only the client process writes a cache; workers never open it for writing. The
schema is documented in the README ("Tile cache schema").
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import h5py
import numpy as np

from ._errors import MosaicError
from ._features import DOMINANT_BINS_PER_CHANNEL, TileFeatures

__all__ = ["SCHEMA_VERSION", "CacheError", "TileCache", "FileRecord"]

SCHEMA_VERSION = 2
_PATH_DTYPE = h5py.string_dtype("utf-8")
_FEATURE_DEFINITIONS = {
    "colour_space": "CIELAB, D65 white, from sRGB (IEC 61966-2-1); distance = CIE76 delta E",
    "mean_lab": "mean L*a*b* of all pixels of the square thumbnail",
    "dominant_lab": (
        f"mean L*a*b* of the pixels in the fullest bin of a "
        f"{DOMINANT_BINS_PER_CHANNEL}x{DOMINANT_BINS_PER_CHANNEL}x{DOMINANT_BINS_PER_CHANNEL} sRGB histogram"
    ),
    "grid_lab": "mean L*a*b* of each block of a grid x grid split, row-major from the top left",
}


class CacheError(MosaicError):
    """A cache that cannot be used as asked; the message is meant for the user."""


@dataclass(frozen=True)
class FileRecord:
    """What the cache knows of one file: its stat key and where it ended up.

    ``kind`` is ``"tile"``, ``"alias"`` (the same bytes as a tile under another path) or
    ``"failure"``; ``index`` is the row in that group.
    """

    size: int
    mtime_ns: int
    kind: str
    index: int
    # The tile row this path shows (a tile, an alias), or its own tile whose file now fails.
    tile_row: int = -1

    @property
    def row(self) -> int:
        """The tile row this path shows, or -1 for a failure or an alias."""
        return self.index if self.kind == "tile" else -1


def _encode(paths: Iterable[str]) -> list[bytes]:
    # fsencode keeps undecodable file names (surrogate escapes) round-trippable.
    return [os.fsencode(p) for p in paths]


def _decode(raw: np.ndarray) -> list[str]:
    return [os.fsdecode(p) for p in raw]


class TileCache:
    """An open tile cache. Use :meth:`create` or :meth:`open`, ideally in a ``with`` block.

    Parameters
    ----------
    file : h5py.File
        The open HDF5 file (owned by this object from now on).
    """

    def __init__(self, file: h5py.File):
        self.file = file
        version = file.attrs.get("schema_version")
        if version != SCHEMA_VERSION:
            raise CacheError(f"{file.filename}: schema version {version}, this mosaic reads version {SCHEMA_VERSION}; index the library into a new cache file")
        self._discard_uncommitted_rows()

    # -- opening ---------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, tile_size: int, grid: int) -> "TileCache":
        """Create a new, empty cache file (refusing to overwrite one)."""
        try:
            # Freed file space is never reused: a writer killed mid-batch cannot have
            # written new data over space that the file on disk still points to.
            file = h5py.File(path, "w-", fs_strategy="none")
        except (FileExistsError, OSError) as exc:
            raise CacheError(f"cannot create cache {os.fspath(path)}: {exc}") from None
        file.attrs.update(
            schema_version=SCHEMA_VERSION,
            tile_size=tile_size,
            grid=grid,
            feature_definitions=json.dumps(_FEATURE_DEFINITIONS),
            roots=json.dumps([]),
        )
        tiles = file.create_group("tiles")
        s = tile_size
        tiles.create_dataset("content_hash", shape=(0, 2), maxshape=(None, 2), dtype=np.uint64, chunks=(4096, 2))
        tiles.create_dataset(
            "thumbnails", shape=(0, s, s, 3), maxshape=(None, s, s, 3), dtype=np.uint8,
            chunks=(max(1, 2**18 // (s * s * 3)), s, s, 3),
        )
        for name, shape in (("mean_lab", (3,)), ("dominant_lab", (3,)), ("grid_lab", (grid, grid, 3))):
            tiles.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=np.float32, chunks=(4096, *shape))
        cls._create_file_columns(tiles)
        aliases = file.create_group("aliases")
        cls._create_file_columns(aliases)
        aliases.create_dataset("tile", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
        failures = file.create_group("failures")
        cls._create_file_columns(failures)
        failures.create_dataset("reason", shape=(0,), maxshape=(None,), dtype=_PATH_DTYPE, chunks=(1024,))
        failures.create_dataset("detail", shape=(0,), maxshape=(None,), dtype=_PATH_DTYPE, chunks=(1024,))
        return cls(file)

    @staticmethod
    def _create_file_columns(group: h5py.Group) -> None:
        group.create_dataset("size", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
        group.create_dataset("mtime_ns", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
        # Written last on every append: the length of "path" is the committed row count.
        group.create_dataset("path", shape=(0,), maxshape=(None,), dtype=_PATH_DTYPE, chunks=(1024,))

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", chunk_cache_bytes: int = 1 << 20) -> "TileCache":
        """Open an existing cache, read-only (``"r"``) or for appending (``"r+"``).

        ``chunk_cache_bytes`` sizes HDF5's cache of decompressed chunks for each
        dataset; a reader that comes back to the same thumbnails wants it large.
        """
        if not os.path.exists(path):
            raise CacheError(f"no tile cache at {os.fspath(path)}")
        try:
            file = h5py.File(path, mode, rdcc_nbytes=chunk_cache_bytes, rdcc_nslots=10007)
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise CacheError(f"{os.fspath(path)} is open for writing by another process (is a `mosaic index` running?)") from None
            raise CacheError(f"{os.fspath(path)} is not a readable tile cache: {exc}") from None
        if "schema_version" not in file.attrs:
            file.close()
            raise CacheError(f"{os.fspath(path)} is an HDF5 file but not a mosaic tile cache")
        return cls(file)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "TileCache":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- metadata ----------------------------------------------------------------
    @property
    def tile_size(self) -> int:
        return int(self.file.attrs["tile_size"])

    @property
    def grid(self) -> int:
        return int(self.file.attrs["grid"])

    @property
    def roots(self) -> list[str]:
        return json.loads(self.file.attrs["roots"])

    @property
    def feature_definitions(self) -> dict[str, str]:
        return json.loads(self.file.attrs["feature_definitions"])

    def add_root(self, root: str) -> None:
        """Remember a library folder that was indexed into this cache."""
        roots = self.roots
        if root not in roots:
            self.file.attrs["roots"] = json.dumps(roots + [root])

    def __len__(self) -> int:
        return self.file["tiles/path"].shape[0]

    # -- reading -----------------------------------------------------------------
    def paths(self) -> list[str]:
        """Source path of every tile, in row order."""
        return _decode(self.file["tiles/path"][:])

    def features(self) -> TileFeatures:
        """All tiles' features, in row order."""
        n = len(self)
        tiles = self.file["tiles"]
        return TileFeatures(*(tiles[name][:n] for name in TileFeatures._fields))

    def thumbnails(self, rows: Sequence[int] | np.ndarray, block_rows: int = 1024) -> np.ndarray:
        """The thumbnails at ``rows`` (any order, repeats allowed), shape (len(rows), s, s, 3).

        Reads whole runs of chunks as slices, ``block_rows`` at a time: h5py's
        fancy indexing selects row by row and is ~25x slower on thousands of rows.
        """
        rows = np.asarray(rows, dtype=np.int64)
        unique, inverse = np.unique(rows, return_inverse=True)
        if unique.size and (unique[0] < 0 or unique[-1] >= len(self)):
            raise IndexError(f"tile rows out of range 0..{len(self) - 1}")
        dataset = self.file["tiles/thumbnails"]
        out = np.empty((len(unique), *dataset.shape[1:]), dataset.dtype)
        chunk = dataset.chunks[0]
        step = max(1, block_rows // chunk) * chunk
        chunk_ids = unique // chunk
        run_starts = np.flatnonzero(np.r_[True, np.diff(chunk_ids) > 1]) if unique.size else np.empty(0, np.int64)
        run_ends = np.r_[run_starts[1:], len(unique)].astype(np.int64)
        for first, last in zip(run_starts.tolist(), run_ends.tolist()):
            end = min((int(chunk_ids[last - 1]) + 1) * chunk, dataset.shape[0])
            for block_start in range(int(chunk_ids[first]) * chunk, end, step):
                block_end = min(block_start + step, end)
                i0, i1 = np.searchsorted(unique, [block_start, block_end])
                if i1 > i0:
                    out[i0:i1] = dataset[block_start:block_end][unique[i0:i1] - block_start]
        return out[inverse.ravel()]

    def content_hashes(self) -> np.ndarray:
        """xxh3-128 of each tile's file bytes, as (N, 2) uint64."""
        return self.file["tiles/content_hash"][: len(self)]

    def live_rows(self, group_name: str) -> np.ndarray:
        """Which committed rows of ``tiles``, ``aliases`` or ``failures`` are not retired (bool)."""
        group = self.file[group_name]
        n = group["path"].shape[0]
        if group_name == "aliases":
            return group["tile"][:n] >= 0
        if group_name == "failures":
            return np.asarray(group["reason"].asstr()[:n], dtype=object) != ""
        return np.ones(n, bool)

    def failures(self) -> list[tuple[str, str, str]]:
        """``(path, reason, detail)`` of every file that currently fails."""
        group = self.file["failures"]
        n = group["path"].shape[0]
        reasons = group["reason"].asstr()[:n]
        details = group["detail"].asstr()[:n]
        return [row for row in zip(_decode(group["path"][:n]), reasons, details) if row[1]]  # "" is retired

    def aliases(self) -> list[tuple[str, int]]:
        """``(path, tile row)`` of every path whose bytes equal those of a tile indexed under another path."""
        group = self.file["aliases"]
        n = group["path"].shape[0]
        tiles = group["tile"][:n]
        return [(path, int(tile)) for path, tile in zip(_decode(group["path"][:n]), tiles) if tile >= 0]

    def known_files(self) -> dict[str, FileRecord]:
        """Every path the cache holds, as a tile, an alias or a failure, with its stat key.

        The writer keeps one live alias or failure per path at most, and drops it when
        the file changes. A path can have both a tile and a failure: the photo was
        indexed, then its file went bad; the failure is what the file is now, and the
        record keeps the tile's row (``tile_row``) for the next change or ``--prune``.
        """
        known: dict[str, FileRecord] = {}
        for kind, group_name in (("tile", "tiles"), ("alias", "aliases"), ("failure", "failures")):
            group = self.file[group_name]
            n = group["path"].shape[0]
            sizes, mtimes = group["size"][:n], group["mtime_ns"][:n]
            live = self.live_rows(group_name)
            shown = group["tile"][:n] if kind == "alias" else None
            for i, path in enumerate(_decode(group["path"][:n])):
                if not live[i]:
                    continue
                if kind == "tile":
                    tile_row = i
                elif kind == "alias":
                    tile_row = int(shown[i])
                else:  # a failure keeps the row of the path's own tile, if it had one
                    tile_row = known[path].tile_row if path in known else -1
                known[path] = FileRecord(int(sizes[i]), int(mtimes[i]), kind, i, tile_row)
        return known

    # -- writing -----------------------------------------------------------------
    def _append_rows(self, group_name: str, paths: Sequence[str], columns: dict) -> None:
        """Append rows; they become visible only once the whole batch is written (``path`` last)."""
        n_new = len(paths)
        if n_new == 0:
            return
        group = self.file[group_name]
        start = group["path"].shape[0]
        for name, values in columns.items():
            group[name].resize(start + n_new, axis=0)
            group[name][start:] = values
        group["path"].resize(start + n_new, axis=0)
        group["path"][start:] = _encode(paths)
        self.file.flush()

    def append_tiles(self, paths: Sequence[str], sizes, mtimes_ns, thumbnails: np.ndarray, features: TileFeatures,
                     content_hashes: np.ndarray) -> None:
        """Append tiles: their files' stat keys, thumbnails, features and (N, 2) uint64 content hashes."""
        self._append_rows("tiles", paths, {"thumbnails": thumbnails, **features._asdict(), "size": sizes,
                                           "mtime_ns": mtimes_ns, "content_hash": content_hashes})

    def replace_tiles(self, rows: Sequence[int], sizes, mtimes_ns, thumbnails: np.ndarray, features: TileFeatures,
                      content_hashes: np.ndarray) -> None:
        """Overwrite existing tile rows in place (a file changed since it was indexed)."""
        tiles = self.file["tiles"]
        columns = {"thumbnails": thumbnails, **features._asdict(), "size": sizes, "mtime_ns": mtimes_ns,
                   "content_hash": content_hashes}
        for i, row in enumerate(rows):
            for name, values in columns.items():
                tiles[name][row] = values[i]
        self.file.flush()

    def append_aliases(self, paths: Sequence[str], sizes, mtimes_ns, tiles: Sequence[int]) -> None:
        """Record paths whose bytes are those of the tiles at rows ``tiles``."""
        self._append_rows("aliases", paths, {"size": sizes, "mtime_ns": mtimes_ns, "tile": tiles})

    def append_failures(self, paths: Sequence[str], sizes, mtimes_ns, reasons: Sequence[str], details: Sequence[str]) -> None:
        """Record files that could not be made into tiles, with a reason category and detail."""
        self._append_rows("failures", paths, {"size": sizes, "mtime_ns": mtimes_ns, "reason": list(reasons),
                                              "detail": list(details)})

    def drop_records(self, kind: str, indices: Sequence[int]) -> None:
        """Retire alias or failure rows in place (the file changed, became a tile, or is gone).

        A dropped alias points at tile -1; a dropped failure has an empty reason.
        """
        if len(indices) == 0:
            return
        name, value = {"alias": ("aliases/tile", -1), "failure": ("failures/reason", "")}[kind]
        dataset = self.file[name]
        for index in sorted(indices):
            dataset[index] = value
        self.file.flush()

    def _discard_uncommitted_rows(self) -> None:
        """Trim columns a killed writer extended past the committed ``path`` length."""
        if self.file.mode != "r+":
            return
        for group_name in ("tiles", "aliases", "failures"):
            group = self.file[group_name]
            n = group["path"].shape[0]
            for dataset in group.values():
                if dataset.shape[0] > n:
                    dataset.resize(n, axis=0)
