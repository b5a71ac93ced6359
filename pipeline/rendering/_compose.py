"""Stage 3, assemble (compute): resize the chosen tiles, blend them toward their cells, lay them out."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..features import pixel_shape

__all__ = ["blend_tiles", "resize_tiles", "tile_canvas"]


def resize_tiles(thumbnails: np.ndarray, shape: int | tuple[int, int]) -> np.ndarray:
    """Resize tiles (K, h, w, 3) to ``shape``: (K, height, width, 3) (an int: square).

    Shrinking by an integer factor averages pixel blocks (area resampling);
    the remaining non-integer part, and any enlargement, uses Lanczos. The whole
    stack is resized as one image, along an axis on which no two tiles touch,
    so nothing bleeds between tiles and the cost is a few Pillow calls, not K.
    """
    height, width = pixel_shape(shape)
    k, rows, cols = thumbnails.shape[:3]
    if k == 0:
        return np.empty((0, height, width, 3), np.uint8)
    stack = np.ascontiguousarray(thumbnails).reshape(k * rows, cols, 3)
    factor = min(rows // height, cols // width)
    if factor >= 2 and rows % factor == 0 and cols % factor == 0:
        # Blocks of factor x factor never straddle two tiles, as factor divides their height.
        stack = np.asarray(Image.fromarray(stack).reduce(factor))
        rows, cols = rows // factor, cols // factor
    if (rows, cols) == (height, width):
        return stack.reshape(k, rows, cols, 3).copy()
    lanczos = Image.Resampling.LANCZOS
    if cols != width:  # horizontal pass: tiles stacked vertically, (k * rows) rows of cols pixels
        stack = np.asarray(Image.fromarray(stack).resize((width, k * rows), lanczos))
    narrow = stack.reshape(k, rows, width, 3)
    if rows == height:
        return narrow.copy()
    # Vertical pass: tiles side by side, rows of (k * width) pixels.
    wide = Image.fromarray(np.ascontiguousarray(narrow.transpose(1, 0, 2, 3)).reshape(rows, k * width, 3))
    out = np.asarray(wide.resize((k * width, height), lanczos)).reshape(height, k, width, 3)
    return out.transpose(1, 0, 2, 3).copy()  # a writable array, whatever Pillow handed back


def blend_tiles(tiles: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    """Pull each tile toward a flat colour by alpha overlay: ``(1 - alpha) * tile + alpha * colour``.

    Parameters
    ----------
    tiles : ndarray of uint8, shape (K, h, w, 3)
    colours : ndarray of uint8, shape (K, 3)
        The sRGB colour each tile is pulled toward (its cell's mean colour).
    alpha : float
        0 leaves the tiles untouched; 1 replaces them with the flat colour.

    Returns
    -------
    ndarray of uint8, shape (K, h, w, 3)
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"blend must be between 0 and 1, got {alpha}")
    if alpha == 0.0:
        return tiles
    mixed = tiles.astype(np.float32) * (1.0 - alpha) + colours.astype(np.float32)[:, None, None, :] * alpha
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def tile_canvas(tiles: np.ndarray, layout: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Place tiles on a grid.

    Parameters
    ----------
    tiles : ndarray of uint8, shape (K, h, w, 3)
        The distinct tile images.
    layout : ndarray of int, shape (rows, cols)
        For each cell, the index into ``tiles`` of the image it shows.
    out : ndarray of uint8, shape (rows * h, cols * w, 3), optional
        Draw here (it may be a strided view, such as the pixels of
        :func:`pipeline.formats.png.png_rows`) instead of a new array.

    Returns
    -------
    ndarray of uint8, shape (rows * h, cols * w, 3)
    """
    rows, cols = layout.shape
    h, w = tiles.shape[1:3]
    if out is None:
        out = np.empty((rows * h, cols * w, 3), np.uint8)
    if out.shape != (rows * h, cols * w, 3):
        raise ValueError(f"out has shape {out.shape}, the canvas is {(rows * h, cols * w, 3)}")
    cells = out.reshape(rows, h, cols, w, 3)
    if out.size and not np.may_share_memory(cells, out):
        raise ValueError("out cannot be viewed as a grid of cells without copying")
    # One row of cells at a time: its gathered tiles (a few MB) stay in cache while they
    # are transposed into place, 2.5x faster than transposing the whole gathered band.
    for r in range(rows):
        cells[r] = tiles[layout[r]].transpose(1, 0, 2, 3)
    return out
