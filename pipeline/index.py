"""Stage 1, index: a Dask bag over the library's files -> thumbnails and features -> HDF5 tile cache."""
from __future__ import annotations

import math
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import dask.bag as db
import numpy as np
from distributed import Client, as_completed, get_worker

from ._cache import TileCache
from ._cluster import dask_client
from ._config import config_get
from ._errors import MosaicError
from ._features import TileFeatures, compute_features
from ._photo import PHOTO_EXTENSIONS, PhotoError, has_image_signature, load_square_thumbnail
from ._progress import Progress
from ._scan import FileEntry, scan_library

__all__ = ["IndexedBatch", "IndexSummary", "index_batch", "index_library"]


class IndexedBatch(NamedTuple):
    """What a worker hands back for one batch of files: numpy arrays and plain lists."""

    tiles: list[FileEntry]
    thumbnails: np.ndarray  # (n, s, s, 3) uint8
    features: TileFeatures | None
    failures: list[tuple[FileEntry, str, str]]  # (file, reason, detail)
    ignored: int  # files that are not images at all (no image extension, no image signature)


@dataclass
class IndexSummary:
    """What a run of :func:`index_library` did."""

    cache: str
    files_seen: int = 0
    unchanged: int = 0
    added: int = 0
    replaced: int = 0
    ignored: int = 0
    failures: Counter = field(default_factory=Counter)
    tiles_in_cache: int = 0
    seconds: float = 0.0

    @property
    def processed(self) -> int:
        return self.added + self.replaced + sum(self.failures.values()) + self.ignored

    def __str__(self) -> str:
        failed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.failures.items())) or "none"
        rate = self.processed / self.seconds if self.seconds else 0.0
        return (
            f"{self.cache}: {self.tiles_in_cache} tiles. This run: {self.files_seen} files seen, "
            f"{self.unchanged} unchanged, {self.added} added, {self.replaced} re-indexed, "
            f"{self.ignored} not images, failed: {failed}; {self.seconds:.1f} s ({rate:.0f} files/s)"
        )


_VISIBILITY_REASONS = frozenset({"missing", "unreadable"})


def _this_process() -> str:
    try:
        return f"worker {get_worker().address}"
    except ValueError:  # not inside a Dask worker
        return f"host {socket.gethostname()}"


def _looks_like_photo(path: str) -> bool:
    if os.path.splitext(path)[1].lower() in PHOTO_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            return has_image_signature(f.read(16))
    except OSError:
        return False


def index_batch(files: Sequence[FileEntry], tile_size: int, grid: int) -> IndexedBatch:
    """Make tiles and features of a batch of files (runs inside a Dask task).

    Parameters
    ----------
    files : sequence of FileEntry
        Paths with their size and mtime.
    tile_size, grid : int
        Thumbnail side in pixels, and the feature grid.

    Returns
    -------
    IndexedBatch
        Every file is a tile, a failure with its reason, or counted as not an image.
    """
    tiles, thumbnails, failures, ignored = [], [], [], 0
    for entry in files:
        if not _looks_like_photo(entry.path):
            ignored += 1
            continue
        try:
            thumbnails.append(load_square_thumbnail(entry.path, tile_size))
            tiles.append(entry)
        except PhotoError as exc:
            detail = exc.detail
            if exc.reason in _VISIBILITY_REASONS:  # on a cluster: which machine could not see it
                detail = f"on {_this_process()}: {detail}"
            failures.append((entry, exc.reason, detail))
        except Exception as exc:  # one odd file must never end a run over millions
            failures.append((entry, "error", f"{type(exc).__name__}: {exc}"))
    if thumbnails:
        stacked = np.stack(thumbnails)
        features = compute_features(stacked, grid)
    else:
        stacked = np.empty((0, tile_size, tile_size, 3), np.uint8)
        features = None
    return IndexedBatch(tiles, stacked, features, failures, ignored)


def _index_partition(files: list[FileEntry], tile_size: int, grid: int) -> list[IndexedBatch]:
    return [index_batch(files, tile_size, grid)]


def _open_or_create(cache_path: str, tile_size: int | None, grid: int | None) -> TileCache:
    if not os.path.exists(cache_path):
        return TileCache.create(cache_path, tile_size or config_get("index.tile-size"), grid or config_get("index.grid"))
    cache = TileCache.open(cache_path, "r+")
    for name, asked, has in (("tile size", tile_size, cache.tile_size), ("feature grid", grid, cache.grid)):
        if asked is not None and asked != has:
            cache.close()
            raise MosaicError(f"{cache_path} was built with {name} {has}, not {asked}; use another --cache file")
    return cache


def _columns(batch: IndexedBatch, rows: list[int]) -> tuple[list[FileEntry], tuple]:
    entries = [batch.tiles[i] for i in rows]
    features = TileFeatures(*(f[rows] for f in batch.features))
    return entries, ([e.size for e in entries], [e.mtime_ns for e in entries], batch.thumbnails[rows], features)


def _write_batch(cache: TileCache, batch: IndexedBatch, known: dict, summary: IndexSummary) -> None:
    already_tile = [e.path in known and known[e.path].row >= 0 for e in batch.tiles]
    append = [i for i, old in enumerate(already_tile) if not old]
    replace = [i for i, old in enumerate(already_tile) if old]
    if append:
        entries, columns = _columns(batch, append)
        cache.append_tiles([e.path for e in entries], *columns)
    if replace:
        entries, columns = _columns(batch, replace)
        cache.replace_tiles([known[e.path].row for e in entries], *columns)
    summary.added += len(append)
    summary.replaced += len(replace)
    if batch.failures:
        cache.append_failures(
            [e.path for e, _, _ in batch.failures],
            [e.size for e, _, _ in batch.failures],
            [e.mtime_ns for e, _, _ in batch.failures],
            [reason for _, reason, _ in batch.failures],
            [detail for _, _, detail in batch.failures],
        )
        summary.failures.update(reason for _, reason, _ in batch.failures)
    summary.ignored += batch.ignored


def index_library(
    library: str | os.PathLike,
    cache_path: str | os.PathLike,
    *,
    tile_size: int | None = None,
    grid: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    client: Client | None = None,
    **cluster_options,
) -> IndexSummary:
    """Index every photo below ``library`` into the tile cache at ``cache_path``.

    Files already in the cache with the same size and mtime are skipped; changed
    files are re-indexed in place; unreadable files are recorded as failures.
    Workers decode and compute features; only this process writes the cache.

    Parameters
    ----------
    library : path
        Folder to scan recursively.
    cache_path : path
        HDF5 tile cache; created if missing.
    tile_size, grid : int, optional
        Thumbnail side and feature grid of a new cache (defaults: the
        ``mosaic.index`` settings, 64 and 3); for an existing cache they must
        match or be left out.
    batch_size : int, optional
        Files per Dask task (default: ``mosaic.index.batch-size``, or about four
        tasks per worker thread, 8..256).
    progress : bool
        Print the dashboard link and progress to stderr.
    client : distributed.Client, optional
        Run on this client's cluster.
    **cluster_options
        Otherwise, how to find or start a cluster: see :func:`pipeline.dask_client`.

    Returns
    -------
    IndexSummary
    """
    start = time.perf_counter()
    library = os.path.abspath(library)
    cache_path = os.fspath(cache_path)
    if not os.path.isdir(library):
        raise MosaicError(f"library folder not found: {library}")
    summary = IndexSummary(cache=cache_path)
    with _open_or_create(cache_path, tile_size, grid) as cache:
        known = cache.known_files()
        problems = []
        files = list(scan_library(library, problems))
        summary.files_seen = len(files)
        todo = [f for f in files if f.path not in known or (known[f.path].size, known[f.path].mtime_ns) != (f.size, f.mtime_ns)]
        summary.unchanged = len(files) - len(todo)
        new_problems = [p for p in problems if p.path not in known]
        if new_problems:
            cache.append_failures([p.path for p in new_problems], [-1] * len(new_problems), [0] * len(new_problems),
                                  [p.reason for p in new_problems], [p.detail for p in new_problems])
            summary.failures.update(p.reason for p in new_problems)
        if todo:
            with dask_client(client, announce=progress, **cluster_options) as dask:
                threads = max(1, sum(dask.nthreads().values()))
                size = batch_size or config_get("index.batch-size") or max(8, min(256, math.ceil(len(todo) / (4 * threads))))
                bag = db.from_sequence(todo, partition_size=size)
                futures = dask.compute(bag.map_partitions(_index_partition, cache.tile_size, cache.grid).to_delayed())
                bar = Progress("index", len(todo), "files", enabled=progress)
                for future, (batch,) in as_completed(futures, with_results=True):
                    _write_batch(cache, batch, known, summary)
                    bar.update(len(batch.tiles) + len(batch.failures) + batch.ignored)
                    future.release()
                bar.close()
        cache.add_root(library)
        summary.tiles_in_cache = len(cache)
    summary.seconds = time.perf_counter() - start
    return summary
