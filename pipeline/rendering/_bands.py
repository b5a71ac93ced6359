"""Stage 3's band tasks: one band of cells rendered and encoded on a worker, with the worker's tile store.

Within one run each worker process reads the cache through one shared handle
(:func:`pipeline.cache.worker_cache`) and keeps the tiles its threads have already
resized (up to a budget), because neighbouring bands use mostly the same tiles;
:func:`release_worker_state` drops them at the end of the run, so no handle
outlives it.
"""
from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

import numpy as np

from ..cache import release_worker_caches, worker_cache
from ..formats import BandPlace, Format, halve
from ..photo import PhotoError
from ..video import load_source_thumbnail
from ._compose import blend_tiles, resize_tiles, tile_canvas
from ._correct import correct_tiles

__all__ = ["BandPixels", "TileBand", "cell_images", "release_worker_state", "render_band"]

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

    pixels: Any  # the band's rows, encoded by its format
    preview: np.ndarray  # (cells * preview height, cols * preview width, 3) uint8, for the cells whose top row is in the band
    unreadable: list[int]  # cache rows


def _tile_store(cache_path: str, stamp: tuple, tile_shape: tuple[int, int], from_originals: bool) -> dict:
    key = (cache_path, stamp, tile_shape, from_originals, threading.get_ident() if from_originals else None)
    with _worker_states_lock:
        state = _worker_states.get(key)
        if state is None:
            capacity = max(1024, WORKER_TILE_BUDGET_BYTES // (tile_shape[0] * tile_shape[1] * 3))
            state = _worker_states[key] = dict(
                lock=threading.Lock(), cache=worker_cache(cache_path, stamp, WORKER_CHUNK_CACHE_BYTES),
                slots=None, capacity=capacity, slot_of={})
    return state


def _resized_tiles(store: dict, rows: np.ndarray, tile_shape: tuple[int, int], original_paths: dict[int, str] | None,
                   block_rows: int = 2048) -> tuple[np.ndarray, list[int]]:
    """The tiles at ``rows`` (sorted, unique) at ``tile_shape``, from the worker's store or freshly made."""
    slot_of, capacity, cache = store["slot_of"], store["capacity"], store["cache"]
    missing = np.array([r for r in rows.tolist() if r not in slot_of], dtype=np.int64)
    if len(slot_of) + len(missing) > capacity:
        slot_of.clear()  # over budget: start afresh rather than track recency
        missing = rows
    if len(missing) > capacity:  # more distinct tiles in one band than the whole budget: keep none
        return _fresh_tiles(cache, missing, tile_shape, original_paths)
    if store["slots"] is None:
        store["slots"] = np.empty((capacity, *tile_shape, 3), np.uint8)
    unreadable = []
    for start in range(0, len(missing), block_rows):  # bounded transient memory at the thumbnails' size
        block = missing[start : start + block_rows]
        fresh, failed = _fresh_tiles(cache, block, tile_shape, original_paths)
        unreadable += failed
        first_slot = len(slot_of)
        store["slots"][first_slot : first_slot + len(block)] = fresh
        slot_of.update(zip(block.tolist(), range(first_slot, first_slot + len(block))))
    return store["slots"][[slot_of[r] for r in rows.tolist()]], unreadable


def _fresh_tiles(cache, rows: np.ndarray, tile_shape: tuple[int, int],
                 original_paths: dict[int, str] | None) -> tuple[np.ndarray, list[int]]:
    tiles, unreadable = resize_tiles(cache.thumbnails(rows), tile_shape), []
    for i, row in enumerate(rows.tolist()) if original_paths is not None else ():
        try:
            tiles[i] = load_source_thumbnail(original_paths[row], tile_shape, crop=cache.crop)  # cut as the cache's were
        except PhotoError:
            unreadable.append(row)  # the cached thumbnail, resized, stands in
    return tiles, unreadable


class TileBand:
    """A :class:`pipeline.formats.BandSource` that draws a band by laying out its tiles.

    Parameters
    ----------
    images : ndarray of uint8, shape (K, h, w, 3)
        The distinct tile images of the band.
    layout : ndarray of int, shape (r, cols)
        For each of the band's cells, its index into ``images``.
    """

    def __init__(self, images: np.ndarray, layout: np.ndarray) -> None:
        self.images, self.layout = images, layout
        self.tile_shape = images.shape[1:3]

    @property
    def shape(self) -> tuple[int, int]:
        return self.layout.shape[0] * self.tile_shape[0], self.layout.shape[1] * self.tile_shape[1]

    def canvas(self, out: np.ndarray | None = None) -> np.ndarray:
        return tile_canvas(self.images, self.layout, out=out)

    def levels(self, top: int, rows: int, count: int, repeat_odd: bool) -> list[np.ndarray]:
        """Rows ``top .. top + rows`` of the band at pyramid levels 0 .. count - 1, each the :func:`halve` of the last.

        While ``2**k`` divides the tiles' height and width (and ``top``), no 2x2 block of level
        ``k - 1`` straddles two cells, so halving the band equals laying out its tiles
        halved: a few thousand small tiles instead of every pixel of the band.
        """
        images, layout = self.images, self.layout
        levels: list[np.ndarray] = []
        laid_out = True
        for level in range(count):
            if laid_out:
                height, width = images.shape[1:3]
                canvas = _scratch(level, (layout.shape[0] * height, layout.shape[1] * width, 3))
                levels.append(tile_canvas(images, layout, out=canvas)[top : top + rows])
                laid_out = height % 2 == 0 and width % 2 == 0 and top % 2 == 0 and level + 1 < count
                if laid_out:
                    images = halve(images.reshape(-1, width, 3)).reshape(-1, height // 2, width // 2, 3)
                    top, rows = top // 2, (rows + repeat_odd) // 2
            else:
                levels.append(halve(levels[-1], repeat_odd))
        return levels


def cell_images(cache_path: str, stamp: tuple, tiles: np.ndarray, tile_shape: tuple[int, int],
                original_paths: dict[int, str] | None, flipped: np.ndarray | None, cell_rgb: np.ndarray, blend: float,
                cell_grid: np.ndarray | None, correct: float) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The images that draw cells of ``tile_shape`` (see :func:`render_band`), and which image each cell takes.

    Returns ``(images, layout, unreadable)``: ``layout`` has ``tiles``' shape and indexes ``images``.
    """
    store = _tile_store(cache_path, stamp, tile_shape, original_paths is not None)
    # A tile and its mirror are two images of the band: each drawn once, however many cells use it.
    looks = tiles if flipped is None else tiles * 2 + flipped
    used_looks, layout = np.unique(looks, return_inverse=True)
    layout = layout.reshape(tiles.shape)
    used, image_of_look = (used_looks, None) if flipped is None else np.unique(used_looks // 2, return_inverse=True)
    # Threads share the thumbnails they resize: at 100 MP, each thread loading its own took a third of the bands' time.
    with store["lock"]:
        images, unreadable = _resized_tiles(store, used, tile_shape, original_paths)
    if flipped is not None:
        images = images[image_of_look]
        mirrored = used_looks % 2 == 1
        images[mirrored] = images[mirrored][:, :, ::-1]
    if correct > 0 or blend > 0:  # each cell its own copy of its tile, changed toward the cell
        images, layout = images[layout.ravel()], np.arange(tiles.size).reshape(tiles.shape)
    if correct > 0:
        images = correct_tiles(images, cell_grid.reshape(tiles.size, *cell_grid.shape[-3:]), correct)
    if blend > 0:
        images = blend_tiles(images, cell_rgb.reshape(-1, 3), blend)
    return images, layout, unreadable


def render_band(cache_path: str, stamp: tuple, tiles: np.ndarray, cell_rgb: np.ndarray, tile_shape: tuple[int, int],
                blend: float, preview_shape: tuple[int, int], output_format: Format, place: BandPlace,
                original_paths: dict[int, str] | None = None, cell_grid: np.ndarray | None = None,
                correct: float = 0.0, flipped: np.ndarray | None = None) -> BandPixels:
    """Render one band of cells and encode it in the output's format (runs on a worker).

    Parameters
    ----------
    cache_path : str
        The tile cache, read through this process's shared handle.
    stamp : tuple
        ``(size, mtime_ns)`` of the cache when the run started: a worker's open
        handle is reused only for the same file.
    tiles : ndarray of int64, shape (r, cols)
        Cache row of each cell's tile.
    cell_rgb : ndarray of uint8, shape (r, cols, 3)
        Each cell's colour, for the blend.
    tile_shape, blend, preview_shape
        Each tile's (height, width), the blend strength (0..1), and the preview's (height, width) per cell.
    output_format : Format
        Encodes the band (:meth:`pipeline.formats.Format.encode_band`).
    place : BandPlace
        The band's rows in the image. The preview holds the cells whose top row is in the band.
    original_paths : dict of int to str, optional
        Re-read these photos (by cache row) instead of resizing the thumbnails.
    cell_grid : ndarray, shape (r, cols, g, g, 3), optional
        Each cell's CIELAB block means, which ``correct`` (0..1) moves its tile toward.
    flipped : ndarray of bool, shape (r, cols), optional
        Where the tile is drawn mirrored left to right.
    """
    images, layout, unreadable = cell_images(cache_path, stamp, tiles, tile_shape, original_paths, flipped,
                                             cell_rgb, blend, cell_grid, correct)
    tile_h = tile_shape[0]
    rows = tiles.shape[0] * tile_h - place.skip_rows if place.rows is None else place.rows
    first_cell, end_cell = -(-place.skip_rows // tile_h), -(-(place.skip_rows + rows) // tile_h)
    # Averaging each tile down equals averaging the band down when the preview's cell divides the tile,
    # and costs K small tiles instead of a pass over every pixel of the band.
    preview = tile_canvas(resize_tiles(images, preview_shape), layout[first_cell:end_cell])
    band = output_format.encode_band(TileBand(images, layout), place._replace(rows=rows))
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


def release_worker_state() -> None:
    """Drop this process's resized tiles and scratch buffers and close its cache handles (after a render)."""
    with _worker_states_lock:
        _worker_states.clear()
    release_worker_caches()
