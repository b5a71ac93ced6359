"""Stage 3, assemble (Dask): render the mosaic in horizontal bands on the workers, stream them into the output.

Each band is one task. It opens the tile cache read-only inside the worker,
reads the thumbnails its cells use, resizes them to ``tile_px`` (or re-reads the
original photos), blends them toward their cells' colours and returns the band's
pixels plus a small preview. The client keeps a bounded number of bands in
flight and hands them, in order, to the streamed writer: memory stays bounded
whatever the output size.

Within one run each worker process keeps the cache open, with a large chunk
cache, and keeps the tiles its threads have already resized (up to a budget),
because neighbouring bands use mostly the same tiles; :func:`release_worker_state`
drops them at the end of the run, so no handle outlives it.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np
from distributed import Client, Future

from ._band_plan import BandPlace, plan_bands
from ._cache import TileCache
from ._cluster import dask_client
from ._dz_bands import DeepZoomBand, encode_dz_band
from ._errors import MosaicError
from ._files import check_not_precious
from ._image_out import (DeflatedRows, EncodedRows, check_output, deflate_rows, encode_rows, png_rows, save_options,
                         write_strips)
from ._jpeg_bands import JpegBand, encode_jpeg_band
from ._photo import PhotoError, load_square_thumbnail
from ._progress import Progress
from ._tiff_bands import TiffBand, encode_tiff_band, halve, pyramid_sizes
from .assemble import blend_tiles, resize_tiles, tile_canvas
from .record import AssignmentRecord, read_assignment

__all__ = ["BandPlace", "RenderResult", "release_worker_state", "render_assignment", "render_band", "render_mosaic"]

IN_FLIGHT_BYTES = 256 << 20  # bands computed or being computed ahead of the writer
WORKER_CHUNK_CACHE_BYTES = 64 << 20
WORKER_TILE_BUDGET_BYTES = 256 << 20

# Per worker process, shared by its threads (a threaded worker runs several bands at once), one per run:
# {"lock": Lock, "cache": TileCache, "slots": ndarray, "capacity": int, "slot_of": dict}. Tiles re-read from their
# original photos are kept per thread instead, so that threads decode photos in parallel. And per thread, the
# scratch canvases of TIFF bands.
_worker_states: dict[tuple, dict] = {}
_worker_states_lock = threading.Lock()


class BandPixels(NamedTuple):
    """One rendered band: its pixels, its preview, and the tiles whose original photo could not be re-read."""

    pixels: EncodedRows | DeflatedRows | JpegBand | TiffBand  # the band's rows, framed or compressed
    preview: np.ndarray  # (cells * preview_px, cols * preview_px, 3) uint8, for the cells whose top row is in the band
    unreadable: list[int]  # cache rows


def _tile_store(cache_path: str, stamp: tuple, tile_px: int, from_originals: bool) -> dict:
    key = (cache_path, stamp, tile_px, from_originals, threading.get_ident() if from_originals else None)
    with _worker_states_lock:
        state = _worker_states.get(key)
        if state is None:
            capacity = max(1024, WORKER_TILE_BUDGET_BYTES // (tile_px * tile_px * 3))
            state = _worker_states[key] = dict(
                lock=threading.Lock(), cache=TileCache.open(cache_path, chunk_cache_bytes=WORKER_CHUNK_CACHE_BYTES),
                slots=None, capacity=capacity, slot_of={})
    return state


def _resized_tiles(store: dict, rows: np.ndarray, tile_px: int, original_paths: dict[int, str] | None,
                   block_rows: int = 2048) -> tuple[np.ndarray, list[int]]:
    """The tiles at ``rows`` (sorted, unique) at ``tile_px``, from the worker's store or freshly made."""
    slot_of, capacity, cache = store["slot_of"], store["capacity"], store["cache"]
    missing = np.array([r for r in rows.tolist() if r not in slot_of], dtype=np.int64)
    if len(slot_of) + len(missing) > capacity:
        slot_of.clear()  # over budget: start afresh rather than track recency
        missing = rows
    if len(missing) > capacity:  # more distinct tiles in one band than the whole budget: keep none
        return _fresh_tiles(cache, missing, tile_px, original_paths)
    if store["slots"] is None:
        store["slots"] = np.empty((capacity, tile_px, tile_px, 3), np.uint8)
    unreadable = []
    for start in range(0, len(missing), block_rows):  # bounded transient memory at the thumbnails' size
        block = missing[start : start + block_rows]
        fresh, failed = _fresh_tiles(cache, block, tile_px, original_paths)
        unreadable += failed
        first_slot = len(slot_of)
        store["slots"][first_slot : first_slot + len(block)] = fresh
        slot_of.update(zip(block.tolist(), range(first_slot, first_slot + len(block))))
    return store["slots"][[slot_of[r] for r in rows.tolist()]], unreadable


def _fresh_tiles(cache: TileCache, rows: np.ndarray, tile_px: int, original_paths: dict[int, str] | None) -> tuple[np.ndarray, list[int]]:
    tiles, unreadable = resize_tiles(cache.thumbnails(rows), tile_px), []
    for i, row in enumerate(rows.tolist()) if original_paths is not None else ():
        try:
            tiles[i] = load_square_thumbnail(original_paths[row], tile_px)
        except PhotoError:
            unreadable.append(row)  # the cached thumbnail, resized, stands in
    return tiles, unreadable


def render_band(cache_path: str, stamp: tuple, tiles: np.ndarray, cell_rgb: np.ndarray, tile_px: int, blend: float,
                preview_px: int, original_paths: dict[int, str] | None = None, place: BandPlace = BandPlace()) -> BandPixels:
    """Render one band of cells (runs on a worker).

    Parameters
    ----------
    cache_path : str
        The tile cache, opened read-only here.
    stamp : tuple
        ``(size, mtime_ns)`` of the cache when the run started: a worker's open
        handle is reused only for the same file.
    tiles : ndarray of int64, shape (r, cols)
        Cache row of each cell's tile.
    cell_rgb : ndarray of uint8, shape (r, cols, 3)
        Each cell's colour, for the blend.
    tile_px, blend, preview_px
        Tile side, blend strength (0..1) and the preview's pixels per cell.
    original_paths : dict of int to str, optional
        Re-read these photos (by cache row) instead of resizing the thumbnails.
    place : BandPlace
        The band's rows in the image, and its encoding: framed for libvips
        (``"stored"``, :func:`pipeline.encode_rows`), compressed for a PNG
        (``"deflate"``, :func:`pipeline.deflate_rows`), a band of a JPEG
        (``"jpeg"``, :func:`encode_jpeg_band`), or the tiles of a pyramidal TIFF
        (``"tiff"``, :func:`encode_tiff_band`) or of a Deep Zoom pyramid
        (``"dz"``, :func:`encode_dz_band`). The preview holds the cells whose top
        row is in the band.
    """
    store = _tile_store(cache_path, stamp, tile_px, original_paths is not None)
    used, layout = np.unique(tiles, return_inverse=True)
    layout = layout.reshape(tiles.shape)
    # Threads share the thumbnails they resize: at 100 MP, each thread loading its own took a third of the bands' time.
    with store["lock"]:
        images, unreadable = _resized_tiles(store, used, tile_px, original_paths)
    if blend > 0:
        images = blend_tiles(images[layout.ravel()], cell_rgb.reshape(-1, 3), blend)
        layout = np.arange(tiles.size).reshape(tiles.shape)
    rows = tiles.shape[0] * tile_px - place.skip_rows if place.rows is None else place.rows
    first_cell, end_cell = -(-place.skip_rows // tile_px), -(-(place.skip_rows + rows) // tile_px)
    # Averaging each tile down equals averaging the band down when preview_px divides tile_px,
    # and costs K small tiles instead of a pass over every pixel of the band.
    preview = tile_canvas(resize_tiles(images, preview_px), layout[first_cell:end_cell])
    if place.encoding == "jpeg":
        band = encode_jpeg_band(tile_canvas(images, layout), place.first_row, save_options("jpeg"))
    elif place.encoding == "tiff":
        band = _tiff_band(images, layout, tile_px, place._replace(rows=rows))
    elif place.encoding == "dz":
        band = _dz_band(images, layout, tile_px, place._replace(rows=rows))
    else:
        raw, pixels = png_rows(tiles.shape[0] * tile_px, tiles.shape[1] * tile_px)
        tile_canvas(images, layout, out=pixels)
        band = deflate_rows(raw) if place.encoding == "deflate" else encode_rows(raw)
    return BandPixels(band, preview, unreadable)


def _scratch(name: object, shape: tuple[int, ...]) -> np.ndarray:
    """A per-thread buffer of ``shape`` uint8, reused from band to band: fresh pages cost a fault each."""
    size = math.prod(shape)
    with _worker_states_lock:
        buffers = _worker_states.setdefault(("scratch", threading.get_ident()), {})
    buffer = buffers.get(name)
    if buffer is None or buffer.size < size:
        buffer = buffers[name] = np.empty(size, np.uint8)
    return buffer[:size].reshape(shape)


def _band_levels(images: np.ndarray, layout: np.ndarray, tile_px: int, top: int, rows: int, count: int,
                 repeat_odd: bool) -> list[np.ndarray]:
    """Rows ``top .. top + rows`` of the band's cells at pyramid levels 0 .. count - 1, each the :func:`halve` of the last.

    While ``2**k`` divides ``tile_px`` (and ``top``), no 2x2 block of level
    ``k - 1`` straddles two cells, so halving the band equals laying out its tiles
    halved: a few thousand small tiles instead of every pixel of the band.
    """
    levels: list[np.ndarray] = []
    laid_out = True
    for level in range(count):
        if laid_out:
            side = tile_px >> level
            canvas = _scratch(level, (layout.shape[0] * side, layout.shape[1] * side, 3))
            levels.append(tile_canvas(images, layout, out=canvas)[top : top + rows])
            laid_out = side % 2 == 0 and top % 2 == 0 and level + 1 < count
            if laid_out:
                images = halve(images.reshape(-1, side, 3)).reshape(-1, side // 2, side // 2, 3)
                top, rows = top // 2, (rows + repeat_odd) // 2
        else:
            levels.append(halve(levels[-1], repeat_odd))
    return levels


def _tiff_band(images: np.ndarray, layout: np.ndarray, tile_px: int, place: BandPlace) -> TiffBand:
    """A band of a pyramidal TIFF: its levels 1, 2, .. made here too, as the next level's rows to hand on."""
    wanted = min(place.levels, len(pyramid_sizes(layout.shape[1] * tile_px, place.image_height)) - 1)
    levels = _band_levels(images, layout, tile_px, place.skip_rows, place.rows, wanted + 1, repeat_odd=False)
    return encode_tiff_band(levels[0], place.first_row, place.image_height, save_options("tiff")["Q"],
                            place.levels, levels[1:])


def _dz_band(images: np.ndarray, layout: np.ndarray, tile_px: int, place: BandPlace) -> DeepZoomBand:
    """A band of a Deep Zoom pyramid, rendered with its margins."""
    start = max(0, place.first_row - place.margin)
    stop = min(place.image_height, place.first_row + place.rows + place.margin)
    levels = _band_levels(images, layout, tile_px, place.skip_rows - (place.first_row - start), stop - start,
                          place.levels, repeat_odd=True)
    return encode_dz_band(levels, place.first_row, place.rows, place.image_height,
                          save_options("jpeg")["Q"])  # the quality of the tiles libvips writes: dzsave(suffix=".jpg[Q=90]")


def _release(state: dict) -> None:
    cache = state.pop("cache", None)
    if cache is not None:
        cache.close()
    state.clear()


def release_worker_state() -> None:
    """Close this process's cache handles and drop its resized tiles (run on every worker after a render)."""
    with _worker_states_lock:
        states = list(_worker_states.values())
        _worker_states.clear()
    for state in states:
        _release(state)


def _in_order(futures: Iterator[Future], window: int) -> Iterator[BandPixels]:
    """Results of ``futures`` in order, keeping at most ``window`` submitted ahead; cancels the rest on exit."""
    pending: deque[Future] = deque()
    try:
        for future in futures:
            pending.append(future)
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


@dataclass
class RenderResult:
    """What :func:`render_assignment` wrote."""

    output: str
    width: int
    height: int
    preview: np.ndarray  # small (H, W, 3) image of the mosaic, for reports
    fallbacks: int  # original photos that could not be re-read (their thumbnail was used)
    seconds: float


def render_assignment(record: AssignmentRecord, cache_path: str | os.PathLike, out: str | os.PathLike, client: Client, *,
                      tile_px: int, blend: float = 0.0, from_originals: bool = False, preview_width: int = 1024,
                      progress: bool = False) -> RenderResult:
    """Render a matched grid to ``out`` in bands on ``client``'s cluster, with bounded memory.

    Parameters
    ----------
    record : AssignmentRecord
        The matched grid (tiles by cache row, cell colours).
    cache_path : path
        The tile cache the record's rows refer to.
    out : path
        ``.jpg``, ``.png``, ``.tif`` or ``.dzi``: see :func:`pipeline.write_strips`.
    client : distributed.Client
    tile_px : int
        Side of each tile in the output.
    blend : float
        0..1: pull each tile toward its cell's colour (alpha overlay).
    from_originals : bool
        Re-read the original photos for the tiles (sharp when ``tile_px`` is
        larger than the cached thumbnails); a photo that cannot be read is
        replaced by its thumbnail and counted in ``fallbacks``.
    preview_width : int
        Width of the returned preview (at most one pixel per cell less).

    Returns
    -------
    RenderResult
    """
    start = time.perf_counter()
    cache_path, out = os.path.abspath(os.fspath(cache_path)), os.fspath(out)
    if tile_px < 1:
        raise MosaicError("--tile-px must be at least 1")
    if not 0.0 <= blend <= 1.0:
        raise MosaicError(f"--blend must be between 0 and 1, got {blend}")
    rows, cols = record.rows, record.cols
    width, height = cols * tile_px, rows * tile_px
    kind = check_output(out, width, height)
    _check_cache_matches(record, cache_path)
    stat = os.stat(cache_path)
    stamp = (stat.st_size, stat.st_mtime_ns)
    threads = max(1, sum(client.nthreads().values()))
    bands = plan_bands(kind, rows, cols, tile_px, threads)
    window = max(2, min(2 * threads, IN_FLIGHT_BYTES // max(1, (bands[0][1] - bands[0][0]) * tile_px * width * 3)))
    preview_px = max(1, min(tile_px, preview_width // cols))

    def submit() -> Iterator[Future]:
        for first, end, place in bands:
            tiles = record.tiles[first:end]
            paths = {r: record.tile_paths[r] for r in np.unique(tiles).tolist()} if from_originals else None
            yield client.submit(render_band, cache_path, stamp, tiles, record.cell_rgb[first:end],
                                tile_px, blend, preview_px, paths, place, pure=False)

    bar = Progress("assemble", rows, "rows of cells", enabled=progress)
    previews, unreadable = [], set()

    def strips() -> Iterator[EncodedRows]:
        for band in _in_order(submit(), window):
            previews.append(band.preview)
            unreadable.update(band.unreadable)
            bar.update(len(band.preview) // preview_px)
            yield band.pixels

    try:
        write_strips(out, width, height, strips())
    finally:
        client.run(release_worker_state)
    bar.close()
    return RenderResult(out, width, height, np.concatenate(previews), len(unreadable), time.perf_counter() - start)


def _check_cache_matches(record: AssignmentRecord, cache_path: str) -> None:
    with TileCache.open(cache_path) as cache:
        n_tiles = len(cache)
        used = sorted(record.tile_paths)
        if used and (used[0] < 0 or used[-1] >= n_tiles):
            raise MosaicError(f"the assignment uses tile row {used[-1]}, but {cache_path} holds {n_tiles} tiles: "
                              "is it the cache the mosaic was made from?")
        paths = cache.paths()
    for row in used:
        if paths[row] != record.tile_paths[row]:
            raise MosaicError(f"{cache_path} has changed since the assignment was made (tile {row} was "
                              f"{record.tile_paths[row]}, is now {paths[row]}); run `mosaic make` again")
    missing = set(np.unique(record.tiles).tolist()) - set(record.tile_paths)
    if missing:
        raise MosaicError(f"the assignment record lacks the path of tile {min(missing)}")


def assembly_cluster(client: Client | None = None, announce: bool = True, **cluster_options):
    """:func:`pipeline.dask_client` for assembly: a LocalCluster started here runs threads in this process.

    The bands' pixels are then handed to the writer without being copied between
    processes. Every format's bands compress themselves, so the writer needs
    little CPU: unless ``n_workers`` says otherwise, one thread per core.
    """
    if cluster_options.get("n_workers") is None:
        cluster_options["n_workers"] = os.cpu_count() or 1
    return dask_client(client, announce=announce, processes=False, **cluster_options)


def render_mosaic(assignment: str | os.PathLike, cache_path: str | os.PathLike, out: str | os.PathLike, *,
                  tile_px: int = 32, blend: float = 0.0, from_originals: bool = False, progress: bool = True,
                  client: Client | None = None, **cluster_options) -> RenderResult:
    """Render a mosaic again from its assignment record, without matching: ``mosaic render``.

    Parameters
    ----------
    assignment : path
        ``<stem>.assignment.npz`` or ``.csv``, written by :func:`pipeline.make_mosaic`.
    cache_path : path
        The tile cache the mosaic was made from.
    out : path
        The new image; see :func:`render_assignment` for the formats and other options.
    client, **cluster_options
        Which Dask cluster: see :func:`pipeline.dask_client` and, for a
        LocalCluster started here, :func:`assembly_cluster`.
    """
    record = read_assignment(assignment)
    out = os.fspath(out)
    check_not_precious(out, os.fspath(assignment), os.fspath(cache_path), record.target)
    with assembly_cluster(client, announce=progress, **cluster_options) as dask:
        return render_assignment(record, cache_path, out, dask, tile_px=tile_px, blend=blend,
                                 from_originals=from_originals, progress=progress)
