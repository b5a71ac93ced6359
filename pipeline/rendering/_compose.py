"""Stage 3, assemble (compute): resize the chosen tiles, blend them toward their cells, lay them out."""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["blend_tiles", "resize_tiles", "tile_canvas"]


def resize_tiles(thumbnails: np.ndarray, tile_px: int) -> np.ndarray:
    """Resize square tiles (K, s, s, 3) to (K, tile_px, tile_px, 3).

    Shrinking by an integer factor averages pixel blocks (area resampling);
    the remaining non-integer part, and any enlargement, uses Lanczos. The whole
    stack is resized as one image, along an axis on which no two tiles touch,
    so nothing bleeds between tiles and the cost is a few Pillow calls, not K.
    """
    k, side = thumbnails.shape[:2]
    if k == 0:
        return np.empty((0, tile_px, tile_px, 3), np.uint8)
    stack = np.ascontiguousarray(thumbnails).reshape(k * side, side, 3)
    factor = side // tile_px
    if factor >= 2 and side % factor == 0:
        # Blocks of factor x factor never straddle two tiles, as factor divides side.
        stack = np.asarray(Image.fromarray(stack).reduce(factor))
        side //= factor
    if side == tile_px:
        return stack.reshape(k, side, side, 3).copy()
    lanczos = Image.Resampling.LANCZOS
    # Horizontal pass: tiles stacked vertically, (k * side) rows of side pixels.
    narrow = np.asarray(Image.fromarray(stack).resize((tile_px, k * side), lanczos)).reshape(k, side, tile_px, 3)
    # Vertical pass: tiles side by side, side rows of (k * tile_px) pixels.
    wide = Image.fromarray(np.ascontiguousarray(narrow.transpose(1, 0, 2, 3)).reshape(side, k * tile_px, 3))
    out = np.asarray(wide.resize((k * tile_px, tile_px), lanczos)).reshape(tile_px, k, tile_px, 3)
    return out.transpose(1, 0, 2, 3).copy()  # a writable array, whatever Pillow handed back


def blend_tiles(tiles: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    """Pull each tile toward a flat colour by alpha overlay: ``(1 - alpha) * tile + alpha * colour``.

    Parameters
    ----------
    tiles : ndarray of uint8, shape (K, p, p, 3)
    colours : ndarray of uint8, shape (K, 3)
        The sRGB colour each tile is pulled toward (its cell's mean colour).
    alpha : float
        0 leaves the tiles untouched; 1 replaces them with the flat colour.

    Returns
    -------
    ndarray of uint8, shape (K, p, p, 3)
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
    tiles : ndarray of uint8, shape (K, p, p, 3)
        The distinct tile images.
    layout : ndarray of int, shape (rows, cols)
        For each cell, the index into ``tiles`` of the image it shows.
    out : ndarray of uint8, shape (rows * p, cols * p, 3), optional
        Draw here (it may be a strided view, such as the pixels of
        :func:`pipeline.formats.png.png_rows`) instead of a new array.

    Returns
    -------
    ndarray of uint8, shape (rows * p, cols * p, 3)
    """
    rows, cols = layout.shape
    p = tiles.shape[1]
    if out is None:
        out = np.empty((rows * p, cols * p, 3), np.uint8)
    if out.shape != (rows * p, cols * p, 3):
        raise ValueError(f"out has shape {out.shape}, the canvas is {(rows * p, cols * p, 3)}")
    cells = out.reshape(rows, p, cols, p, 3)
    if out.size and not np.may_share_memory(cells, out):
        raise ValueError("out cannot be viewed as a grid of cells without copying")
    # One row of cells at a time: its gathered tiles (a few MB) stay in cache while they
    # are transposed into place, 2.5x faster than transposing the whole gathered band.
    for r in range(rows):
        cells[r] = tiles[layout[r]].transpose(1, 0, 2, 3)
    return out
