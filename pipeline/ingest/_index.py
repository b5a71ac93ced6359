"""Stage 1, index: the library's files in batches on a Dask bag -> thumbnails and features -> the HDF5 tile cache.

The scan is a generator, cut lazily into batches of many files; the batches go to
the cluster as bags of at most ``WAVE_BATCHES`` partitions (each partition one task),
the next wave submitted while the last is still running. So a library of
millions of files never becomes one graph of millions of tasks, nor a list of
every path in the client's memory; and a library of tens of thousands is one
graph that the dashboard shows whole. This process alone writes the cache, each
batch as its task finishes; a batch whose worker died is run again by Dask.
"""
from __future__ import annotations

import itertools
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from dask import annotate
from distributed import Client, Future, as_completed

from ..cache import TileCache, forget_files, prune_cache
from ..cluster import stage_client
from ..config import config_get, or_config
from ..errors import MosaicError
from ..features import CROP_MODES, TileAspect
from ..progress import Progress
from ..video import FrameSampling, split_source
from ._bag import MAX_BATCH, batch_bag, batches_of
from ._batch import VideoSegment
from ._scan import FileEntry, scan_library
from ._writer import CacheWriter

__all__ = ["IndexSummary", "WAVE_BATCHES", "WAVE_BYTES", "index_library"]

# One submitted bag holds at most this many batches (tasks), and at most about WAVE_BYTES of
# thumbnails. Results wait on the workers until the writer takes them, in scan order; the
# next wave goes in at half of the last, so at most about 1.5 x WAVE_BYTES wait there.
WAVE_BATCHES = 128
WAVE_BYTES = 256 << 20


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
    decoder_messages: int = 0  # photos that decoded while their decoder printed warnings
    decoder_log: str | None = None  # where those warnings went
    videos: int = 0  # videos whose frames were (re-)indexed in this run
    frames: int = 0  # frames those videos kept (their tiles are among ``added``, ``replaced`` and ``aliases``)
    frames_skipped: int = 0  # frames passed over as near-identical to the frame kept before them
    stale_frames: int = 0  # tiles of frames that changed videos no longer have, removed

    @property
    def processed(self) -> int:
        """Files this run looked at (a video once, however many frames it gave)."""
        return self.files_seen - self.unchanged

    def __str__(self) -> str:
        failed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.failures.items())) or "none"
        rate = self.processed / self.seconds if self.seconds else 0.0
        pruned = f", {self.pruned} pruned" if self.pruned else ""
        if self.videos:
            stale = f", {self.stale_frames} old frames removed" if self.stale_frames else ""
            pruned += (f", {self.videos} videos ({self.frames} frames kept, {self.frames_skipped} near-identical "
                       f"frames skipped{stale})")
        frame_rate = f", {self.frames / self.seconds:.0f} frames kept/s" if self.videos and self.seconds else ""
        return (
            f"{self.cache}: {self.tiles_in_cache} tiles. This run: {self.files_seen} files seen, "
            f"{self.unchanged} unchanged, {self.added} added, {self.replaced} re-indexed, "
            f"{self.aliases} duplicates of a tile (aliases), {self.ignored} not images{pruned}, failed: {failed}; "
            f"{self.seconds:.1f} s ({rate:.{0 if rate >= 10 else 1}f} files/s{frame_rate})"
            + (f"; decoder warnings for {self.decoder_messages} photos: {self.decoder_log}" if self.decoder_messages else "")
        )


def _tile_aspect(value: str | TileAspect) -> TileAspect:
    try:
        return TileAspect.parse(value)
    except ValueError as exc:
        raise MosaicError(str(exc)) from None


def _frame_sampling(value: str | FrameSampling) -> FrameSampling:
    try:
        return FrameSampling.parse(value)
    except ValueError as exc:
        raise MosaicError(str(exc)) from None


def _open_or_create(cache_path: str, tile_size: int | None, grid: int | None, crop: str | None,
                    aspect: TileAspect | None, frames: FrameSampling | None) -> TileCache:
    if not os.path.exists(cache_path):
        cache = TileCache.create(cache_path, or_config(tile_size, "index.tile-size"), or_config(grid, "index.grid"),
                                 or_config(crop, "index.crop"), aspect or _tile_aspect(config_get("index.tile-aspect")))
    else:
        cache = TileCache.open(cache_path, "r+")
    recorded = None if cache.frames is None else str(cache.frames)
    for name, asked, has in (("tile size", tile_size, cache.tile_size), ("feature grid", grid, cache.grid),
                             ("crop", crop, cache.crop), ("tile aspect", aspect, cache.tile_aspect),
                             ("--frames", None if frames is None or recorded is None else str(frames), recorded)):
        if asked is not None and asked != has:
            cache.close()
            raise MosaicError(f"{cache_path} was built with {name} {has}, not {asked}; use another cache file")
    if recorded is None:  # a new cache, or one from before videos: it takes this run's sampling
        cache.set_frames(str(frames or _frame_sampling(config_get("index.frames"))))
    return cache


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
    crop: str | None = None,
    tile_aspect: str | TileAspect | None = None,
    frames: str | None = None,
    prune: bool = False,
    progress: bool = True,
    client: Client | None = None,
) -> IndexSummary:
    """Index every photo below ``library`` into the tile cache at ``cache_path``.

    Files already in the cache with the same size and mtime are skipped; a changed file
    is re-indexed in place of its old tile; a file whose bytes equal a tile's is recorded
    as an alias of it; unreadable files are recorded as failures with a reason. Workers
    read, hash, decode and compute features (the partitions of :func:`batch_bag`, the
    bag behind :func:`pipeline.tile_bag`); only this process writes the cache. A run
    that is killed leaves a cache that opens, and the same command finishes the work.

    Parameters
    ----------
    library : path
        Folder to scan recursively.
    cache_path : path
        HDF5 tile cache; created if missing.
    tile_size, grid : int, optional
        Thumbnails' shorter side and feature grid of a new cache (defaults: the
        ``mosaic.index`` settings, 64 and 4); for an existing cache they must
        match or be left out.
    batch_size : int, optional
        Files per Dask task (default: ``mosaic.index.batch-size``, or about four
        tasks per worker thread for a small library, 256 for a big one).
    min_size : int, optional
        Photos whose shorter side is below this many pixels are skipped as ``too-small``
        (default ``mosaic.index.min-size``). Every photo is cropped to the tile aspect (``crop``).
    max_pixels : int, optional
        Files whose decode would exceed this many pixels are skipped as ``too-large``
        (default ``mosaic.index.max-pixels``); JPEGs count their reduced-scale decode.
    crop : {"centre", "smart"}, optional
        Where each photo's window is cut along the side it has to spare, for a new cache
        (default ``mosaic.index.crop``): the middle, or the window holding the subject
        (most edge energy, a near tie staying centred). An existing cache keeps its own.
    tile_aspect : str or TileAspect, optional
        The tiles' width:height for a new cache, e.g. ``"3:2"``, ``"4:3"``, ``"16:9"``,
        portrait ``"2:3"`` (default ``mosaic.index.tile-aspect``, 1:1); landscape and
        portrait photos alike are cropped to it. An existing cache keeps its own.
    frames : str, optional
        Which frames of each video become tiles, for a new cache: ``"every:1s"`` (a
        frame a second; ``"every:0.5s"``...), ``"every:N"`` (every Nth frame), ``"scenes"``
        (a frame each time the picture changes) or ``"all"`` (default ``mosaic.index.frames``).
        Consecutive near-identical frames are skipped and counted. A frame's source
        reads ``video.mp4#t=SECONDS``. An existing cache keeps its own.
    prune : bool
        Afterwards, remove the tiles, aliases and failures of files below ``library``
        that this scan did not find (a video's frames with it), and tiles whose file no
        longer decodes.
    progress : bool
        Print the dashboard link and progress to stderr.
    client : distributed.Client, optional
        Run on this client's cluster (default: dask's current client, else a
        LocalCluster started for the run; see :func:`pipeline.cluster.stage_client`).

    Returns
    -------
    IndexSummary
    """
    start = time.perf_counter()
    library = os.path.abspath(library)
    cache_path = os.fspath(cache_path)
    if not os.path.isdir(library):
        raise MosaicError(f"library folder not found: {library}")
    if crop is not None and crop not in CROP_MODES:
        raise MosaicError(f"`crop` must be one of {', '.join(CROP_MODES)}, got {crop!r}")
    aspect = None if tile_aspect is None else _tile_aspect(tile_aspect)
    sampling = None if frames is None else _frame_sampling(frames)
    options = {"min_size": or_config(min_size, "index.min-size"), "max_pixels": or_config(max_pixels, "index.max-pixels")}
    summary = IndexSummary(cache=cache_path)
    seen: set[str] | None = set() if prune else None
    with _open_or_create(cache_path, tile_size, grid, crop, aspect, sampling) as cache:
        options["crop"], options["frames"] = cache.crop, str(cache.frames)
        writer = CacheWriter(cache)
        problems = []
        todo = _to_index(scan_library(library, problems), writer, summary, seen)
        first = next(todo, None)
        if first is not None:
            with stage_client(client, announce=progress) as dask:
                threads = max(1, sum(dask.nthreads().values()))
                batches = batches_of(itertools.chain([first], todo), or_config(batch_size, "index.batch-size"), threads)
                _run_waves(dask, batches, cache, writer, options, threads, progress,
                           _DecoderLog(cache_path + ".decoder.log", summary))
        writer.record_problems(problems)
        cache.add_root(library)
        if writer.stale:  # frames that changed videos no longer have
            summary.stale_frames = forget_files(cache, writer.known, writer.stale)
        if prune:
            summary.pruned = prune_cache(cache, writer.known, seen, library, file_of=lambda path: split_source(path)[0])
        counts = writer.counts
        summary.videos, summary.frames, summary.frames_skipped = counts.videos, counts.frames, counts.frames_skipped
        summary.added, summary.replaced, summary.aliases = counts.added, counts.replaced, counts.aliases
        summary.ignored, summary.failures = counts.ignored, counts.failures
        summary.tiles_in_cache = len(cache)
    summary.seconds = time.perf_counter() - start
    return summary


def _waves(batches: Iterator[list[FileEntry]], bytes_per_file: int, fewest: int) -> Iterator[list[list[FileEntry]]]:
    """Batches grouped into waves of up to WAVE_BATCHES, within WAVE_BYTES of thumbnails unless that is under ``fewest``."""
    wave: list[list[FileEntry]] = []
    held = 0
    for batch in batches:
        wave.append(batch)
        # A video segment's frames are not known before it is read: count it as a full batch of photos.
        held += (MAX_BATCH if isinstance(batch[0], VideoSegment) else len(batch)) * bytes_per_file
        if len(wave) == WAVE_BATCHES or (held >= WAVE_BYTES and len(wave) >= fewest):
            yield wave
            wave, held = [], 0
    if wave:
        yield wave


class _DecoderLog:
    """``<cache>.decoder.log``: what C decoders printed about photos that still became tiles."""

    def __init__(self, path: str, summary: IndexSummary) -> None:
        self.path, self.summary = path, summary

    def add(self, messages: list[tuple[str, str]]) -> None:
        if not messages:
            return
        with open(self.path, "a", encoding="utf-8", errors="surrogateescape") as log:
            log.writelines(f"{path or '(several photos at once)'}\t{text}\n" for path, text in messages)
        self.summary.decoder_messages += len(messages)
        self.summary.decoder_log = self.path


def _run_waves(dask: Client, batches: Iterator[list[FileEntry]], cache: TileCache, writer: CacheWriter,
               options: dict, threads: int, progress: bool, decoder_log: _DecoderLog) -> None:
    """Submit the batches as bags of up to WAVE_BATCHES tasks; write each batch, in scan order, once it is done.

    Writing in scan order makes a new cache's rows follow the library's order
    whichever worker finishes first, so the tasks must run in scan order too: left to
    dask's own order a wave ran backwards, the writer waited for its first batch until
    the wave was done, and both workers sat idle at every wave while it caught up (86 %
    busy against 97 %; a million small files 27 % slower than the futures design).
    The results of the next few batches are fetched in the background as their tasks
    finish, and the next wave is scanned and submitted while half of the last one is
    still unwritten, so neither a transfer nor a scan holds the workers up.
    """
    bar = Progress("index", 0, "files", enabled=progress)  # a video counts once per time segment
    fewest = 2 * threads + 2
    height, width = cache.thumbnail_shape
    waves = _waves(batches, 3 * height * width, fewest)
    unwritten: deque[Future] = deque()
    items: deque[int] = deque()  # files (or video segments) of each unwritten batch, for the progress bar
    fetching = as_completed(loop=dask.loop, with_results=True)  # at most `fewest` results held in this process
    fetched: dict[str, list] = {}
    asked = 0  # how many of the first unwritten futures are being fetched
    more = True
    low_water = fewest
    submitted = 0  # batches submitted so far

    def top_up() -> None:
        nonlocal more, low_water, asked, submitted
        while more and len(unwritten) < low_water:
            wave = next(waves, None)
            more = wave is not None
            if more:
                # Scan order (see above): each task's priority is minus its place in the whole scan;
                # the one-layer graph is not optimised, which could drop the annotation.
                with annotate(priority=lambda key, first=submitted: -(first + key[1])):
                    bag = batch_bag(wave, cache.thumbnail_shape, cache.grid, **options)
                unwritten.extend(dask.compute(bag.to_delayed(optimize_graph=False)))
                sizes = [len(files) for files in wave]
                items.extend(sizes)
                submitted += len(wave)
                bar.grow(sum(sizes))
                low_water = max(fewest, len(wave) // 2)
        while asked < min(fewest, len(unwritten)):
            fetching.add(unwritten[asked])
            asked += 1

    try:
        top_up()
        while unwritten:
            future = unwritten.popleft()
            while future.key not in fetched:
                done, result = next(fetching)
                fetched[done.key] = result
            [batch] = fetched.pop(future.key)
            asked -= 1
            writer.write(batch)
            decoder_log.add(batch.messages)
            bar.update(items.popleft())
            future.release()
            top_up()
    finally:  # the last progress line comes before whatever error ends the run
        bar.close()
