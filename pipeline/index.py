"""Stage 1, index: stream the library's files in batches to Dask workers -> thumbnails and features -> HDF5 tile cache.

The scan is a generator and batches are submitted as futures, a bounded number at a time,
so that a library of millions of files never becomes millions of tasks, one huge graph,
or a list of every path in the client's memory.
"""
from __future__ import annotations

import itertools
import math
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
import xxhash
from distributed import Client, as_completed, get_worker

from ._cache import TileCache
from ._cluster import dask_client
from ._config import config_get
from ._errors import MosaicError
from ._features import compute_features
from ._index_writer import CacheWriter, IndexedBatch
from ._photo import PHOTO_EXTENSIONS, PhotoError, decode_square_thumbnail, has_image_signature, read_photo
from ._progress import Progress
from ._prune import prune_cache
from ._scan import FileEntry, scan_library

__all__ = ["IndexedBatch", "IndexSummary", "index_batch", "index_library"]


@dataclass
class IndexSummary:
    """What a run of :func:`index_library` did."""

    cache: str
    files_seen: int = 0
    unchanged: int = 0
    added: int = 0
    replaced: int = 0
    aliases: int = 0
    ignored: int = 0
    pruned: int = 0
    failures: Counter = field(default_factory=Counter)
    tiles_in_cache: int = 0
    seconds: float = 0.0

    @property
    def processed(self) -> int:
        return self.added + self.replaced + self.aliases + sum(self.failures.values()) + self.ignored

    def __str__(self) -> str:
        failed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.failures.items())) or "none"
        rate = self.processed / self.seconds if self.seconds else 0.0
        pruned = f", {self.pruned} pruned" if self.pruned else ""
        return (
            f"{self.cache}: {self.tiles_in_cache} tiles. This run: {self.files_seen} files seen, "
            f"{self.unchanged} unchanged, {self.added} added, {self.replaced} re-indexed, "
            f"{self.aliases} duplicates of a tile (aliases), {self.ignored} not images{pruned}, failed: {failed}; "
            f"{self.seconds:.1f} s ({rate:.0f} files/s)"
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


def index_batch(files: Sequence[FileEntry], tile_size: int, grid: int, *, min_size: int = 1,
                max_pixels: int | None = None) -> IndexedBatch:
    """Make tiles and features of a batch of files (runs inside a Dask task).

    Each file is read once; its bytes are hashed (xxh3-128, to find copies of one photo
    under several paths) and decoded from memory.

    Parameters
    ----------
    files : sequence of FileEntry
        Paths with their size and mtime.
    tile_size, grid : int
        Thumbnail side in pixels, and the feature grid.
    min_size : int, optional
        Photos whose shorter side is below this many pixels are failures (``too-small``).
    max_pixels : int, optional
        Decodes larger than this are failures (``too-large``); default
        ``mosaic.index.max-pixels``.

    Returns
    -------
    IndexedBatch
        Every file is a tile, a failure with its reason, or counted as not an image.
    """
    max_pixels = max_pixels or config_get("index.max-pixels")
    tiles, digests, failures, ignored = [], [], [], 0
    thumbnails = np.empty((len(files), tile_size, tile_size, 3), np.uint8)  # filled in place: no stacking copy
    for entry in files:
        if not _looks_like_photo(entry.path):
            ignored += 1
            continue
        try:
            data = read_photo(entry.path)
            thumbnails[len(tiles)] = decode_square_thumbnail(data, tile_size, max_pixels=max_pixels, min_size=min_size)
            digests.append(xxhash.xxh3_128_digest(data))
            tiles.append(entry)
        except PhotoError as exc:
            detail = exc.detail
            if exc.reason in _VISIBILITY_REASONS:  # on a cluster: which machine could not see it
                detail = f"on {_this_process()}: {detail}"
            failures.append((entry, exc.reason, detail))
        except Exception as exc:  # one odd file must never end a run over millions
            failures.append((entry, "error", f"{type(exc).__name__}: {exc}"))
    thumbnails = thumbnails[: len(tiles)]
    features = compute_features(thumbnails, grid) if tiles else None
    hashes = np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2).astype(np.uint64)
    return IndexedBatch(tiles, thumbnails, features, hashes, failures, ignored)


def _open_or_create(cache_path: str, tile_size: int | None, grid: int | None) -> TileCache:
    if not os.path.exists(cache_path):
        return TileCache.create(cache_path, tile_size or config_get("index.tile-size"), grid or config_get("index.grid"))
    cache = TileCache.open(cache_path, "r+")
    for name, asked, has in (("tile size", tile_size, cache.tile_size), ("feature grid", grid, cache.grid)):
        if asked is not None and asked != has:
            cache.close()
            raise MosaicError(f"{cache_path} was built with {name} {has}, not {asked}; use another --cache file")
    return cache


_MAX_BATCH = 256


def _batches(todo: Iterator[FileEntry], size: int | None, threads: int) -> Iterator[list[FileEntry]]:
    """Cut the stream of files to index into batches.

    Without a given size, look ahead far enough to know whether the library is small: a
    small one is cut into about four batches per worker thread so every thread gets work,
    a big one into batches of 256 (a task of ~0.3 s at 64 px, ~4,000 tasks per million files).
    """
    if size is None:
        head = list(itertools.islice(todo, 4 * threads * _MAX_BATCH))
        size = max(8, min(_MAX_BATCH, math.ceil(len(head) / (4 * threads))))
        todo = itertools.chain(head, todo)
    while batch := list(itertools.islice(todo, size)):
        yield batch


def _to_index(files: Iterable[FileEntry], writer: CacheWriter, summary: IndexSummary, seen: set | None) -> Iterator[FileEntry]:
    for entry in files:
        summary.files_seen += 1
        if seen is not None:
            seen.add(entry.path)
        if writer.is_current(entry):
            summary.unchanged += 1
        else:
            yield entry


def index_library(
    library: str | os.PathLike,
    cache_path: str | os.PathLike,
    *,
    tile_size: int | None = None,
    grid: int | None = None,
    batch_size: int | None = None,
    min_size: int | None = None,
    max_pixels: int | None = None,
    prune: bool = False,
    progress: bool = True,
    client: Client | None = None,
    **cluster_options,
) -> IndexSummary:
    """Index every photo below ``library`` into the tile cache at ``cache_path``.

    Files already in the cache with the same size and mtime are skipped; a changed file
    is re-indexed in place of its old tile; a file whose bytes equal a tile's is recorded
    as an alias of it; unreadable files are recorded as failures with a reason. Workers
    read, hash, decode and compute features; only this process writes the cache. A run
    that is killed leaves a cache that opens, and the same command finishes the work.

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
        tasks per worker thread for a small library, 256 for a big one).
    min_size : int, optional
        Photos whose shorter side is below this many pixels are skipped as ``too-small``
        (default ``mosaic.index.min-size``). Longer photos are centre-cropped to a square.
    max_pixels : int, optional
        Files whose decode would exceed this many pixels are skipped as ``too-large``
        (default ``mosaic.index.max-pixels``); JPEGs count their reduced-scale decode.
    prune : bool
        Afterwards, remove the tiles, aliases and failures of files below ``library``
        that this scan did not find, and tiles whose file no longer decodes.
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
    options = {"min_size": min_size or config_get("index.min-size"), "max_pixels": max_pixels or config_get("index.max-pixels")}
    summary = IndexSummary(cache=cache_path)
    seen: set[str] | None = set() if prune else None
    with _open_or_create(cache_path, tile_size, grid) as cache:
        writer = CacheWriter(cache)
        problems = []
        todo = _to_index(scan_library(library, problems), writer, summary, seen)
        first = next(todo, None)
        if first is not None:
            with dask_client(client, announce=progress, **cluster_options) as dask:
                threads = max(1, sum(dask.nthreads().values()))
                batches = _batches(itertools.chain([first], todo), batch_size or config_get("index.batch-size"), threads)
                _run_batches(dask, batches, cache, writer, options, threads, progress)
        writer.record_problems(problems)
        cache.add_root(library)
        if prune:
            summary.pruned = prune_cache(cache, writer.known, seen, library)
        counts = writer.counts
        summary.added, summary.replaced, summary.aliases = counts.added, counts.replaced, counts.aliases
        summary.ignored, summary.failures = counts.ignored, counts.failures
        summary.tiles_in_cache = len(cache)
    summary.seconds = time.perf_counter() - start
    return summary


def _run_batches(dask: Client, batches: Iterator[list[FileEntry]], cache: TileCache, writer: CacheWriter,
                 options: dict, threads: int, progress: bool) -> None:
    """Keep a few batches per worker thread in flight; write each result as it lands."""
    bar = Progress("index", 0, "files", enabled=progress)
    bar.growing = True
    in_flight = as_completed(with_results=True)

    def write_one() -> None:
        future, batch = next(in_flight)
        writer.write(batch)
        bar.update(len(batch.tiles) + len(batch.failures) + batch.ignored)
        future.release()

    for files in batches:
        in_flight.add(dask.submit(index_batch, files, cache.tile_size, cache.grid, pure=False, **options))
        bar.total += len(files)
        while in_flight.count() >= 2 * threads + 2:  # enough queued that no worker waits on the client
            write_one()
    bar.growing = False
    while in_flight.count():
        write_one()
    bar.close()
