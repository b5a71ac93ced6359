"""Ingest as a Dask bag: one partition per batch of files, each made into tiles inside its task.

:func:`tile_bag` is the public face: a bag of per-photo records to compose
(``.filter``, ``.map``, ``.take``, ``.to_dataframe``). :func:`batch_bag` is what
:func:`pipeline.index_library` computes: the same partitions, each handing back
its batch as numpy arrays (:class:`IndexedBatch`), so a task's result moves as a
few arrays, not as hundreds of small objects.
"""
from __future__ import annotations

import itertools
import math
import os
import uuid
from typing import Iterable, Iterator, Sequence

import dask.bag as db
from dask.core import quote

from ..config import config_get, or_config
from ..features import TileAspect
from ..video import FrameSampling, is_named_video
from ._batch import VideoSegment, index_batch
from ._scan import FileEntry, scan_library
from ._writer import IndexedBatch

__all__ = ["MAX_BATCH", "batch_bag", "batches_of", "photo_records", "tile_bag"]

MAX_BATCH = 256


def batches_of(files: Iterable[FileEntry], size: int | None, threads: int,
               segment_bytes: int | None = None) -> Iterator[list[FileEntry | VideoSegment]]:
    """Cut a stream of files into batches, lazily; a video named as one is cut into time segments, a batch each.

    Without a given size, look ahead far enough to know whether the library is small: a
    small one is cut into about four batches per worker thread so every thread gets work,
    a big one into batches of 256 (a task of ~0.3 s at 64 px, ~4,000 tasks per million files).
    A video gets a segment per ``segment_bytes`` of file (default ``mosaic.index.segment-bytes``),
    so that one long film keeps every worker busy.
    """
    files = iter(files)
    segment_bytes = or_config(segment_bytes, "index.segment-bytes")
    if size is None:
        head = list(itertools.islice(files, 4 * threads * MAX_BATCH))
        size = max(8, min(MAX_BATCH, math.ceil(len(head) / (4 * threads))))
        files = itertools.chain(head, files)
    batch: list[FileEntry | VideoSegment] = []
    for entry in files:
        if is_named_video(entry.path):
            segments = max(1, math.ceil(entry.size / segment_bytes))
            yield from ([VideoSegment(entry, k, segments)] for k in range(segments))
            continue
        batch.append(entry)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _index_partition(partition: list[list[FileEntry]], thumbnail: tuple[int, int], grid: int,
                     options: dict) -> list[IndexedBatch]:
    return [index_batch(files, thumbnail, grid, **options) for files in partition]


def _records_partition(partition: list[list[FileEntry]], thumbnail: tuple[int, int], grid: int, options: dict) -> list[dict]:
    return [record for batch in _index_partition(partition, thumbnail, grid, options) for record in photo_records(batch)]


def resolved_options(min_size: int | None = None, max_pixels: int | None = None, crop: str | None = None,
                     frames: str | None = None) -> dict:
    """:func:`index_batch`'s options with the ``mosaic.index`` settings filled in (here, on the client)."""
    return {"min_size": or_config(min_size, "index.min-size"), "max_pixels": or_config(max_pixels, "index.max-pixels"),
            "crop": or_config(crop, "index.crop"), "frames": str(FrameSampling.parse(or_config(frames, "index.frames"))),
            "near_identical": float(config_get("index.near-identical")),
            "scene_change": float(config_get("index.scene-change"))}


def _bag_of_batches(batches: Sequence[list], make_partition, prefix: str, thumbnail: tuple[int, int], grid: int,
                    options: dict) -> db.Bag:
    """A bag whose every partition is one task: ``make_partition`` of one batch, the batch in the task itself.

    Built as one layer, not from_sequence then map_partitions: dask no longer fuses a
    bag's layers, and two would be two tasks a batch, the batch sent from one to the other.
    Each call gets fresh keys, so a bag computed again never meets the last one's
    results while they are being released.
    """
    name = f"{prefix}-{uuid.uuid4().hex}"
    # quote: the batch is data, not tasks, so dask need not walk its thousands of entries (0.5 s a wave).
    graph = {(name, i): (make_partition, quote([files]), thumbnail, grid, options) for i, files in enumerate(batches)}
    if not graph:  # a bag has at least one partition
        graph = {(name, 0): []}
    return db.Bag(graph, name, len(graph))


def batch_bag(batches: Sequence[list], thumbnail: tuple[int, int], grid: int, *, min_size: int | None = None,
              max_pixels: int | None = None, crop: str | None = None, frames: str | None = None) -> db.Bag:
    """A bag with a partition (a task) per batch of files or video segment; each partition is ``[IndexedBatch]``.

    ``thumbnail`` is the tiles' ``(height, width)``, ``grid`` their feature grid.
    The options default to the ``mosaic.index`` settings, resolved here, so
    workers with other settings make the same tiles. Its tasks are named ``index-batch``.
    """
    options = resolved_options(min_size, max_pixels, crop, frames)
    return _bag_of_batches(batches, _index_partition, "index-batch", thumbnail, grid, options)


def photo_records(batch: IndexedBatch) -> list[dict]:
    """One record per photo of a batch: its file, and its thumbnail and features or its failure.

    Keys: ``path``, ``size``, ``mtime_ns``, ``failure`` (``None`` for a tile, else
    the reason), ``detail``, ``thumbnail`` ((height, width, 3) uint8), ``mean_lab``,
    ``dominant_lab``, ``grid_lab`` and ``content_hash`` (16 bytes); a failure's
    pixels and features are ``None``. Files that are not images have no record.
    """
    records = []
    for i, entry in enumerate(batch.tiles):
        features = {name: values[i] for name, values in batch.features._asdict().items()}
        records.append({"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns, "failure": None, "detail": "",
                        "thumbnail": batch.thumbnails[i], **features, "content_hash": batch.content_hashes[i].tobytes()})
    empty = dict.fromkeys(("thumbnail", "mean_lab", "dominant_lab", "grid_lab", "content_hash"))
    for entry, reason, detail in batch.failures:
        records.append({"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns, "failure": reason,
                        "detail": detail, **empty})
    return records


def tile_bag(library: str | os.PathLike, *, tile_size: int | None = None, grid: int | None = None,
             min_size: int | None = None, max_pixels: int | None = None, batch_size: int | None = None,
             threads: int | None = None, crop: str | None = None, tile_aspect: str | TileAspect | None = None,
             frames: str | None = None) -> db.Bag:
    """A lazy Dask bag of every photo below ``library``, made into a tile: per-photo records to compose.

    The library is scanned now (paths and stat keys only); nothing is decoded until
    the bag is computed, on whichever cluster computes it. Each partition is a
    batch of files, decoded and described inside one task, as ``mosaic index``
    does; see :func:`photo_records` for the records.

    Parameters
    ----------
    library : path
        Folder to scan recursively (hidden files and folders are passed over).
    tile_size, grid : int, optional
        Thumbnails' shorter side and feature grid (defaults ``mosaic.index.tile-size`` and ``grid``).
    min_size, max_pixels : int, optional
        Photos whose shorter side is below ``min_size``, or whose decode would
        exceed ``max_pixels``, are failures (defaults: the ``mosaic.index`` settings).
    batch_size : int, optional
        Files per partition (default ``mosaic.index.batch-size``, or about four
        partitions per thread for a small library, 256 files for a big one).
    threads : int, optional
        Worker threads the partitions are sized for (default: this machine's cores).
    crop : {"centre", "smart"}, optional
        Where each photo's window is cut (default ``mosaic.index.crop``).
    tile_aspect : str or TileAspect, optional
        The tiles' width:height, e.g. ``"3:2"`` (default ``mosaic.index.tile-aspect``).
    frames : str, optional
        Which frames of each video become tiles, e.g. ``"every:1s"``, ``"every:25"``,
        ``"scenes"``, ``"all"`` (default ``mosaic.index.frames``); a frame's ``path``
        reads ``video.mp4#t=SECONDS``.

    Returns
    -------
    dask.bag.Bag
        Records of tiles and failures (files that are not images have none); its
        tasks are named ``photo-records``.

    Examples
    --------
    >>> bag = tile_bag("Photos", tile_size=32)                        # doctest: +SKIP
    >>> dark = bag.filter(lambda r: r["failure"] is None and r["mean_lab"][0] < 30)  # doctest: +SKIP
    >>> dark.pluck("path").take(5)                                    # doctest: +SKIP
    """
    files = scan_library(library)
    batches = list(batches_of(files, batch_size or config_get("index.batch-size"), threads or os.cpu_count() or 1))
    thumbnail = TileAspect.parse(or_config(tile_aspect, "index.tile-aspect")).tile_shape(or_config(tile_size, "index.tile-size"))
    return _bag_of_batches(batches, _records_partition, "photo-records", thumbnail, or_config(grid, "index.grid"),
                           resolved_options(min_size, max_pixels, crop, frames))
