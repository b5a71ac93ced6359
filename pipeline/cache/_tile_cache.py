"""The HDF5 tile cache: thumbnails, their features, where they came from, and what failed.

Only the client process writes a cache; workers never open it for writing. The
schema is documented in the README ("Tile cache schema").
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

import h5py
import numpy as np

from ..errors import MosaicError
from ..features import SQUARE, TileAspect, TileFeatures
from . import _schema
from ._attributes import CacheAttributes
from ._check import check_cache
from ._diagnose import damaged, layout_problem, why_unopenable
from ._schema import SCHEMA_VERSION
from ._space import NoSpace, reserve
from ..files import partial_sibling

__all__ = ["SCHEMA_VERSION", "CacheError", "TileCache", "FileRecord", "VideoRecord"]

# Room for the B-tree nodes and object headers a write adds (all at the end of the file,
# which never reuses freed space): a batch of 256 tiles adds a few kilobytes.
_METADATA_MARGIN = 1 << 20


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

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


class VideoRecord(NamedTuple):
    """A video whose frames are all in the cache: its stat key, frames kept, near-identical frames skipped; its row."""

    size: int
    mtime_ns: int
    frames: int
    skipped: int
    index: int


class TileCache(CacheAttributes):
    """An open tile cache. Use :meth:`create` or :meth:`open`, ideally in a ``with`` block.

    Parameters
    ----------
    file : h5py.File
        The open HDF5 file (owned by this object from now on).
    """

    def __init__(self, file: h5py.File):
        self._file = file
        if file.mode == "r+":
            if int(file.attrs["schema_version"]) == _schema.UPGRADABLE_VERSION:
                _schema.add_videos_group(file)
            _schema.discard_uncommitted(file)

    # -- opening ---------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, tile_size: int, grid: int, crop: str = "centre",
               aspect: TileAspect = SQUARE) -> "TileCache":
        """Create a new, empty cache file (refusing to overwrite one), of thumbnails ``tile_size`` px on their short side.

        The skeleton is written under a hidden temporary name in the same folder and
        linked to ``path`` only when complete, so a kill leaves no cache or a whole one.
        """
        path = os.fspath(path)
        if os.path.lexists(path):
            raise CacheError(f"cannot create cache {path}: a file of that name exists")
        try:
            with partial_sibling(path) as temporary:
                # Freed file space is never reused: a writer killed mid-batch cannot have
                # written new data over space that the file on disk still points to.
                with h5py.File(temporary, "w-", fs_strategy="none") as file:
                    _schema.create_layout(file, tile_size, grid, crop, aspect)
                os.link(temporary, path)  # unlike rename, never replaces a cache made meanwhile
        except FileExistsError:
            raise CacheError(f"cannot create cache {path}: a file of that name exists") from None
        except OSError as exc:
            raise CacheError(f"cannot create cache {path}: {(exc.strerror or str(exc)).lower()}") from None
        return cls.open(path, "r+")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", chunk_cache_bytes: int = 1 << 20) -> "TileCache":
        """Open an existing cache, read-only (``"r"``) or for appending (``"r+"``).

        ``chunk_cache_bytes`` sizes HDF5's cache of decompressed chunks for each
        dataset; a reader that comes back to the same thumbnails wants it large. A
        file that is not a usable cache raises :class:`CacheError` saying what is
        wrong with it and what to do.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise CacheError(f"no tile cache at {path}")
        try:
            file = h5py.File(path, mode, rdcc_nbytes=chunk_cache_bytes, rdcc_nslots=10007)
        except OSError as exc:
            raise CacheError(why_unopenable(path, exc)) from None
        try:
            problem = layout_problem(file)
            if problem:
                raise CacheError(problem)
            cache = cls(file)
        except CacheError:
            file.close()
            raise
        except Exception as exc:  # HDF5 reports damage inside a file as errors of many types
            file.close()
            raise CacheError(damaged(path, f"{type(exc).__name__}: {exc}")) from None
        return cache

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TileCache":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def set_frames(self, frames: str) -> None:
        """Record which frames of videos this cache takes (``--frames``), once."""
        with self._writing(256):
            self._file.attrs["frames"] = np.bytes_(frames.encode())  # fixed length: no global heap
            self._file.flush()

    def add_root(self, root: str) -> None:
        """Remember a library folder that was indexed into this cache."""
        roots = self.roots
        if root not in roots:
            with self._writing(4 * len(json.dumps(roots + [root]))):
                _schema.write_attr_json(self._file, "roots", roots + [root])
                self._file.flush()

    def __len__(self) -> int:
        return _schema.committed_rows(self._file["tiles"])

    def record_count(self, group_name: str) -> int:
        """Committed rows of ``"tiles"``, ``"aliases"`` or ``"failures"``, retired ones included."""
        return _schema.committed_rows(self._file[group_name])

    # -- reading -----------------------------------------------------------------
    def paths(self, rows: slice | None = None) -> list[str]:
        """Source path of every tile (or of a slice of rows), in row order."""
        return _schema.read_text(self._file["tiles"], "path", rows)

    def features(self) -> TileFeatures:
        """All tiles' features, in row order."""
        n = len(self)
        tiles = self._file["tiles"]
        return TileFeatures(*(tiles[name][:n] for name in TileFeatures._fields))

    def thumbnails(self, rows: Sequence[int] | np.ndarray, block_rows: int = 1024) -> np.ndarray:
        """The thumbnails at ``rows`` (any order, repeats allowed), shape (len(rows), height, width, 3).

        Reads whole runs of chunks as slices, ``block_rows`` at a time: h5py's
        fancy indexing selects row by row and is ~25x slower on thousands of rows.
        """
        rows = np.asarray(rows, dtype=np.int64)
        unique, inverse = np.unique(rows, return_inverse=True)
        if unique.size and (unique[0] < 0 or unique[-1] >= len(self)):
            raise IndexError(f"tile rows out of range 0..{len(self) - 1}")
        dataset = self._file["tiles/thumbnails"]
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
        return self._file["tiles/content_hash"][: len(self)]

    def content_hash(self, row: int) -> bytes:
        """xxh3-128 of one tile's file bytes, as 16 bytes."""
        return self._file["tiles/content_hash"][row].tobytes()

    def column(self, group_name: str, name: str) -> np.ndarray:
        """The committed rows of a numeric column, e.g. ``("aliases", "tile")``."""
        group = self._file[group_name]
        return group[name][: _schema.committed_rows(group)]

    def live_rows(self, group_name: str) -> np.ndarray:
        """Which committed rows of ``tiles``, ``aliases`` or ``failures`` are not retired (bool)."""
        return _schema.live_rows(group_name, self._file[group_name])

    def failures(self) -> list[tuple[str, str, str]]:
        """``(path, reason, detail)`` of every file that currently fails."""
        group = self._file["failures"]
        live = self.live_rows("failures")
        rows = zip(*(_schema.read_text(group, column) for column in ("path", "reason", "detail")))
        return [row for row, alive in zip(rows, live) if alive]

    def aliases(self) -> list[tuple[str, int]]:
        """``(path, tile row)`` of every path whose bytes equal those of a tile indexed under another path."""
        group = self._file["aliases"]
        n, live = _schema.committed_rows(group), self.live_rows("aliases")
        rows = zip(_schema.read_text(group, "path"), group["tile"][:n].tolist())
        return [row for row, alive in zip(rows, live) if alive]

    def known_files(self) -> dict[str, FileRecord]:
        """Every path the cache holds, as a tile, an alias or a failure, with its stat key.

        The writer keeps one live alias or failure per path at most, and drops it when
        the file changes. A path can have both a tile and a failure: the photo was
        indexed, then its file went bad; the failure is what the file is now, and the
        record keeps the tile's row (``tile_row``) for the next change or ``--prune``.
        """
        known: dict[str, FileRecord] = {}
        for kind, group_name in (("tile", "tiles"), ("alias", "aliases"), ("failure", "failures")):
            group = self._file[group_name]
            n = _schema.committed_rows(group)
            sizes, mtimes = group["size"][:n], group["mtime_ns"][:n]
            live = self.live_rows(group_name)
            shown = group["tile"][:n] if kind == "alias" else None
            for i, path in enumerate(_schema.read_text(group, "path")):
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

    def videos(self) -> dict[str, VideoRecord]:
        """Every video whose frames are all indexed, by path (empty for a v4 cache opened read-only)."""
        if "videos" not in self._file:
            return {}
        group = self._file["videos"]
        n, live = _schema.committed_rows(group), self.live_rows("videos")
        columns = [group[name][:n].tolist() for name in ("size", "mtime_ns", "frames", "skipped")]
        return {path: VideoRecord(*(int(c[i]) for c in columns), i)
                for i, path in enumerate(_schema.read_text(group, "path")) if live[i]}

    # -- writing -----------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self, nbytes: int) -> Iterator[None]:
        """Reserve the disk space a write of about ``nbytes`` can take, then turn its failures into one line."""
        committed = f"{len(self):,} tiles are committed"
        try:
            reserve(self.path, 2 * nbytes + _METADATA_MARGIN)
        except NoSpace:
            raise CacheError(f"{self.path}: no space left on device; {committed}: free space and run the same command") from None
        try:
            yield
        except (OSError, RuntimeError) as exc:  # h5py reports a failed write as either
            raise CacheError(f"{self.path}: write failed ({_first_line(exc)}); {committed}: "
                             "fix the disk and run the same command") from None

    def _append_rows(self, group_name: str, columns: dict, texts: dict[str, Sequence[str]]) -> None:
        """Append rows past the committed ones; they become visible only when committed, after a flush."""
        n_new = len(texts["path"])
        if n_new == 0:
            return
        nbytes = sum(np.asarray(v).nbytes for v in columns.values()) + sum(len(t) * 4 + 16 for v in texts.values() for t in v)
        with self._writing(nbytes):
            self._write_rows(self._file[group_name], n_new, columns, texts)

    def _write_rows(self, group: h5py.Group, n_new: int, columns: dict, texts: dict[str, Sequence[str]]) -> None:
        start, text_end = _schema.committed(group)
        for name, values in columns.items():
            group[name].resize(start + n_new, axis=0)
            group[name][start:] = values
        for column, values in texts.items():
            span, text_end = _schema.write_text(group, values, text_end)
            group[f"{column}_span"].resize(start + n_new, axis=0)
            group[f"{column}_span"][start:] = span
        self._commit(group, start + n_new, text_end)

    def _commit(self, group: h5py.Group, rows: int, text_bytes: int) -> None:
        self._file.flush()  # the data first, then the count that makes it visible
        _schema.set_committed(group, rows, text_bytes)
        self._file.flush()

    def append_tiles(self, paths: Sequence[str], sizes, mtimes_ns, thumbnails: np.ndarray, features: TileFeatures,
                     content_hashes: np.ndarray) -> None:
        """Append tiles: their files' stat keys, thumbnails, features and (N, 2) uint64 content hashes."""
        self._append_rows("tiles", {"thumbnails": thumbnails, **features._asdict(), "size": sizes,
                                    "mtime_ns": mtimes_ns, "content_hash": content_hashes}, {"path": paths})

    def replace_tiles(self, rows: Sequence[int], sizes, mtimes_ns, thumbnails: np.ndarray, features: TileFeatures,
                      content_hashes: np.ndarray) -> None:
        """Overwrite existing tile rows in place (a file changed since it was indexed).

        The stat key goes last, after a flush: a writer killed before it leaves the
        old key, so the next run sees the file as changed and writes the row again.
        """
        tiles = self._file["tiles"]
        content = {"thumbnails": thumbnails, **features._asdict(), "content_hash": content_hashes}
        with self._writing(thumbnails.nbytes * 2):
            for columns in (content, {"size": sizes, "mtime_ns": mtimes_ns}):
                for i, row in enumerate(rows):
                    for name, values in columns.items():
                        tiles[name][row] = values[i]
                self._file.flush()

    def append_aliases(self, paths: Sequence[str], sizes, mtimes_ns, tiles: Sequence[int]) -> None:
        """Record paths whose bytes are those of the tiles at rows ``tiles``."""
        self._append_rows("aliases", {"size": sizes, "mtime_ns": mtimes_ns, "tile": tiles}, {"path": paths})

    def append_failures(self, paths: Sequence[str], sizes, mtimes_ns, reasons: Sequence[str], details: Sequence[str]) -> None:
        """Record files that could not be made into tiles, with a reason category and detail."""
        self._append_rows("failures", {"size": sizes, "mtime_ns": mtimes_ns},
                          {"path": paths, "reason": reasons, "detail": details})

    def append_videos(self, paths: Sequence[str], sizes, mtimes_ns, frames, skipped) -> None:
        """Record videos whose frames are now all in: stat keys, frames kept, near-identical frames skipped."""
        self._append_rows("videos", {"size": sizes, "mtime_ns": mtimes_ns, "frames": frames, "skipped": skipped},
                          {"path": paths})

    def drop_records(self, kind: str, indices: Sequence[int]) -> None:
        """Retire alias, failure or video rows in place (the file changed, became a tile, or is gone).

        ``kind`` is ``"alias"``, ``"failure"`` or ``"video"``; see the schema's retirement rule.
        """
        if len(indices) == 0:
            return
        group_name = {"alias": "aliases", "failure": "failures", "video": "videos"}[kind]
        column, retired = _schema.RETIRED[group_name]
        if column in _schema.TEXT_COLUMNS[group_name]:
            dataset, retired = self._file[group_name][f"{column}_span"], np.zeros(2, np.int64)
        else:
            dataset = self._file[group_name][column]
        with self._writing(64 * len(indices)):
            for index in sorted(indices):
                dataset[index] = retired
            self._file.flush()

    def hand_over(self, rows: Sequence[int], paths: Sequence[str], sizes: Sequence[int], mtimes_ns: Sequence[int]) -> None:
        """Give tile ``rows`` another path and stat key (the photo lives on under an alias's path).

        The new paths are written and committed as text before any row points at them.
        """
        tiles = self._file["tiles"]
        with self._writing(sum(4 * len(p) + 64 for p in paths)):
            rows_committed, text_end = _schema.committed(tiles)
            spans, text_end = _schema.write_text(tiles, paths, text_end)
            self._commit(tiles, rows_committed, text_end)
            for row, span, size, mtime_ns in zip(rows, spans, sizes, mtimes_ns):
                tiles["size"][row], tiles["mtime_ns"][row] = size, mtime_ns
                tiles["path_span"][row] = span
            self._file.flush()

    def check(self, sample: int = 256) -> list[str]:
        """What is wrong with this cache's content (empty when nothing): see :func:`check_cache`."""
        return check_cache(self._file, sample)
