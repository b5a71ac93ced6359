"""Stage 3's band tasks for a subdivided grid: cells of several sizes drawn into one band, then encoded."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

from ..formats import ArraySource, BandPlace, Format
from ._bands import BandPixels, cell_images

__all__ = ["QuadBand", "render_quad_band"]


class QuadBand(NamedTuple):
    """One band's cells of a subdivided grid: grid rows ``first .. first + rows`` of ``cols`` cells."""

    first: int
    rows: int
    cols: int
    level: np.ndarray  # each cell's, as in QuadCells
    row: np.ndarray
    col: np.ndarray


def render_quad_band(cache_path: str, stamp: tuple, tiles: np.ndarray, cells: QuadBand, cell_rgb: np.ndarray,
                     tile_shape: tuple[int, int], blend: float, preview_shape: tuple[int, int], output_format: Format,
                     place: BandPlace, original_paths: dict[int, str] | None = None,
                     cell_grid: np.ndarray | None = None, correct: float = 0.0,
                     flipped: np.ndarray | None = None) -> BandPixels:
    """Render one band of a subdivided grid and encode it (runs on a worker).

    A cell of level ``l`` is drawn with its tile at ``tile_shape`` halved ``l`` times
    (which the caller has checked divides evenly). The other parameters are
    :func:`pipeline.rendering.render_band`'s, one entry a cell (flat, in ``cells``' order).
    """
    tile_h, tile_w = tile_shape
    canvas = np.empty((cells.rows * tile_h, cells.cols * tile_w, 3), np.uint8)
    unreadable: list[int] = []
    for level in np.unique(cells.level).tolist():
        at = np.flatnonzero(cells.level == level)
        shape = (tile_h >> level, tile_w >> level)
        images, layout, failed = cell_images(
            cache_path, stamp, tiles[at], shape, original_paths, None if flipped is None else flipped[at],
            cell_rgb[at], blend, None if cell_grid is None else cell_grid[at], correct)
        unreadable += failed
        # The band seen as this level's grid of cells: one fancy assignment places them all.
        view = canvas.reshape(cells.rows << level, shape[0], cells.cols << level, shape[1], 3)
        view[cells.row[at] - (cells.first << level), :, cells.col[at], :] = images[layout]
    rows = canvas.shape[0] - place.skip_rows if place.rows is None else place.rows
    first_cell, end_cell = -(-place.skip_rows // tile_h), -(-(place.skip_rows + rows) // tile_h)
    preview_h, preview_w = preview_shape
    shown = Image.fromarray(canvas[first_cell * tile_h:end_cell * tile_h])
    preview = np.asarray(shown.resize((cells.cols * preview_w, (end_cell - first_cell) * preview_h), Image.Resampling.BOX))
    band = output_format.encode_band(ArraySource(canvas), place._replace(rows=rows))
    return BandPixels(band, preview, sorted(set(unreadable)))
