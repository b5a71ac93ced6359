"""Stage 3, assemble (Dask): render the mosaic in horizontal bands on the workers, stream them into the output.

Each band is one task (:func:`pipeline.rendering.render_band`): it reads the
thumbnails its cells use, resizes them to the tile size (or re-reads the original
photos), blends them toward their cells' colours and returns the band encoded in
the output's format, plus a small preview. The client keeps a bounded number of
bands in flight and hands them, in order, to the format's writer: memory stays
bounded whatever the output size.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from distributed import Client, Future

from ..cache import TileCache
from ..cluster import stage_client
from ..config import or_config
from ..errors import MosaicError
from ..features import TileAspect
from ..files import check_not_precious
from ..formats import format_for, write_bands
from ..layout import check_tile_halves
from ..progress import Progress
from ..record import AssignmentRecord, read_assignment
from ._bands import BandPixels, release_worker_state, render_band
from ._quad_bands import QuadBand, render_quad_band

__all__ = ["RenderResult", "render_assignment", "render_mosaic"]

IN_FLIGHT_BYTES = 256 << 20  # bands computed or being computed ahead of the writer


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
                      progress: bool = False, band_bytes: int | None = None, correct: float | None = None,
                      dpi: float | None = None) -> RenderResult:
    """Render a matched grid to ``out`` in bands on ``client``'s cluster, with bounded memory.

    Parameters
    ----------
    record : AssignmentRecord
        The matched grid (tiles by cache row, cell colours).
    cache_path : path
        The tile cache the record's rows refer to.
    out : path
        Its extension names the format: see :func:`pipeline.formats.format_for`.
    client : distributed.Client
    tile_px : int
        Each tile's shorter side in the output; tiles have the cache's tile aspect.
    blend : float
        0..1: pull each tile toward its cell's colour (alpha overlay).
    from_originals : bool
        Re-read the original photos for the tiles (sharp when ``tile_px`` is
        larger than the cached thumbnails); a photo that cannot be read is
        replaced by its thumbnail and counted in ``fallbacks``.
    preview_width : int
        Width of the returned preview (at most one pixel per cell less).
    progress : bool
        Report progress on stderr.
    band_bytes : int, optional
        About how many pixel bytes one band task renders (default: the format's own).
    correct : float, optional
        0..1: move each tile's colours toward its cell's, block by block, keeping
        its detail (default: the record's ``correct``).
    dpi : float, optional
        The print resolution to write into the file (default: the record's, if any).

    Returns
    -------
    RenderResult
    """
    start = time.perf_counter()
    cache_path, out = os.path.abspath(os.fspath(cache_path)), os.fspath(out)
    if tile_px < 1:
        raise MosaicError("`tile_px` must be at least 1")
    if not 0.0 <= blend <= 1.0:
        raise MosaicError(f"`blend` must be between 0 and 1, got {blend}")
    correct = record.correct if correct is None else correct
    if not 0.0 <= correct <= 1.0:
        raise MosaicError(f"`correct` must be between 0 and 1, got {correct}")
    cell_grid = record.correction_grid() if correct > 0 else None
    rows, cols = record.rows, record.cols
    output_format = format_for(out)
    aspect = _aspect_of_matching_cache(record, cache_path)
    tile_h, tile_w = tile_shape = aspect.tile_shape(tile_px)
    if record.quad is not None:
        check_tile_halves(aspect, tile_px, record.quad.depth)
    width, height = cols * tile_w, rows * tile_h
    output_format.check_size(width, height)
    stat = os.stat(cache_path)
    stamp = (stat.st_size, stat.st_mtime_ns)
    threads = max(1, sum(client.nthreads().values()))
    bands = output_format.plan_bands(rows, cols, tile_shape, threads, band_bytes)
    window = max(2, min(2 * threads, IN_FLIGHT_BYTES // max(1, (bands[0][1] - bands[0][0]) * tile_h * width * 3)))
    preview_w = max(1, min(tile_w, preview_width // cols))
    preview_shape = (max(1, min(tile_h, round(preview_w * tile_h / tile_w))), preview_w)

    # A plain grid's arrays are by grid row; a subdivided grid's cells are in grid-row order.
    starts = np.arange(rows + 1) if record.quad is None else record.quad.row_starts()

    def submit() -> Iterator[Future]:
        for first, end, place in bands:
            part = slice(int(starts[first]), int(starts[end]))
            tiles = record.tiles[part]
            paths = {r: record.tile_paths[r] for r in np.unique(tiles).tolist()} if from_originals else None
            common = (tile_shape, blend, preview_shape, output_format, place, paths,
                      None if cell_grid is None else cell_grid[part], correct,
                      None if record.flipped is None else record.flipped[part])
            if record.quad is None:
                yield client.submit(render_band, cache_path, stamp, tiles, record.cell_rgb[part], *common, pure=False)
            else:
                quad = record.quad
                cells = QuadBand(first, end - first, cols, quad.level[part], quad.row[part], quad.col[part])
                yield client.submit(render_quad_band, cache_path, stamp, tiles, cells, record.cell_rgb[part], *common,
                                    pure=False)

    bar = Progress("assemble", rows, "rows of cells", enabled=progress)
    previews, unreadable = [], set()

    def encoded() -> Iterator[Any]:
        with contextlib.closing(_in_order(submit(), window)) as ordered:
            for band in ordered:
                previews.append(band.preview)
                unreadable.update(band.unreadable)
                bar.update(len(band.preview) // preview_shape[0])
                yield band.pixels

    stream = encoded()
    try:
        write_bands(out, width, height, stream, record.dpi if dpi is None else dpi)
    finally:
        stream.close()  # a failed write cancels the bands in flight now, while the client is up
        bar.close()
        client.run(release_worker_state)
    return RenderResult(out, width, height, np.concatenate(previews), len(unreadable), time.perf_counter() - start)


def _aspect_of_matching_cache(record: AssignmentRecord, cache_path: str) -> TileAspect:
    """The cache's tile aspect, once it is checked to hold the tiles the record names (else MosaicError)."""
    with TileCache.open(cache_path) as cache:
        n_tiles, aspect = len(cache), cache.tile_aspect
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
    return aspect


def render_mosaic(assignment: str | os.PathLike, cache_path: str | os.PathLike, out: str | os.PathLike, *,
                  tile_px: int | None = None, blend: float = 0.0, from_originals: bool = False, progress: bool = True,
                  client: Client | None = None, correct: float | None = None, dpi: float | None = None) -> RenderResult:
    """Render a mosaic again from its assignment record, without matching: ``mosaic render``.

    Parameters
    ----------
    assignment : path
        ``<stem>.assignment.npz`` or ``.csv``, written by :func:`pipeline.make_mosaic`.
    cache_path : path
        The tile cache the mosaic was made from.
    out : path
        The new image; see :func:`render_assignment` for the formats and other options.
    tile_px : int, optional
        Each tile's shorter side in the output (default ``mosaic.make.tile-px``).
    correct : float, optional
        Colour correction 0..1 (default: the one the mosaic was made with).
    dpi : float, optional
        Print resolution to write into the file (default: the one the mosaic was made with, if any).
    client : distributed.Client, optional
        Run on this client's cluster (default: dask's current client, else a
        LocalCluster of threads in this process; see :func:`pipeline.cluster.stage_client`).
    """
    record = read_assignment(assignment)
    out = os.fspath(out)
    check_not_precious(out, os.fspath(assignment), os.fspath(cache_path), record.target)
    with stage_client(client, assembly=True, announce=progress) as dask:
        return render_assignment(record, cache_path, out, dask, tile_px=or_config(tile_px, "make.tile-px"), blend=blend,
                                 from_originals=from_originals, progress=progress, correct=correct, dpi=dpi)
