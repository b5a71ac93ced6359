"""A target picture cut into cells of the tiles' aspect, each described as the tiles are (features of its pixels)."""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from PIL import Image

from .errors import MosaicError
from .features import SQUARE, TileAspect, TileFeatures, compute_features, pixel_shape
from .photo import PhotoError, load_rgb

__all__ = ["CELL_SAMPLE_PX", "TargetCells", "cell_patches", "describe_cells", "describe_target", "grid_shape"]

# Each target cell is sampled at this many pixels on its shorter side to compute its features.
CELL_SAMPLE_PX = 16


def grid_shape(width: int, height: int, cols: int, rows: int | None = None, aspect: TileAspect = SQUARE) -> tuple[int, int]:
    """``(rows, cols)`` of a grid of ``aspect`` cells; rows follow the target's aspect ratio unless given."""
    if cols < 1 or (rows is not None and rows < 1):
        raise MosaicError("`cols` and `rows` must be at least 1")
    return (rows if rows is not None else max(1, round(cols * height * aspect.width / (width * aspect.height))), cols)


def _grid_crop(width: int, height: int, rows: int, cols: int, aspect: TileAspect) -> tuple[float, float, float, float]:
    """Left, top, cell width and cell height (in target pixels) of the centred crop that fits the grid."""
    cell_width = min(width / cols, height / rows * aspect.width / aspect.height)
    cell_height = cell_width * aspect.height / aspect.width
    # max(0, ...): width - cols * (width / cols) can round to a tiny negative, which Pillow refuses as a box.
    return max(0.0, (width - cols * cell_width) / 2), max(0.0, (height - rows * cell_height) / 2), cell_width, cell_height


def cell_patches(target: np.ndarray, rows: int, cols: int, cell_px: int | tuple[int, int] = CELL_SAMPLE_PX,
                 row_range: tuple[int, int] | None = None, aspect: TileAspect = SQUARE) -> np.ndarray:
    """Cut a target image into cells of the tiles' aspect.

    The target is centre-cropped to the grid's aspect ratio (losing less than a
    cell) and resampled so that every cell is ``cell_px``.

    Parameters
    ----------
    target : ndarray of uint8, shape (H, W, 3)
    rows, cols : int
        The cell grid.
    cell_px : int or (int, int)
        Each returned patch's ``(height, width)``; an int: square.
    row_range : (int, int), optional
        Only the cells of grid rows ``first <= r < last`` (default: all).
    aspect : TileAspect
        The cells' width:height in the target (the tiles' aspect).

    Returns
    -------
    ndarray of uint8, shape (n_rows * cols, height, width, 3), row-major.
    """
    first, last = row_range or (0, rows)
    patch_h, patch_w = pixel_shape(cell_px)
    height, width = target.shape[:2]
    left, top, cell_width, cell_height = _grid_crop(width, height, rows, cols, aspect)
    box = (left, top + first * cell_height, left + cols * cell_width, top + last * cell_height)
    band = last - first
    image = Image.fromarray(target).resize((cols * patch_w, band * patch_h), Image.Resampling.LANCZOS, box=box)
    pixels = np.asarray(image).reshape(band, patch_h, cols, patch_w, 3)
    return pixels.transpose(0, 2, 1, 3, 4).reshape(band * cols, patch_h, patch_w, 3)


class TargetCells(NamedTuple):
    """A target photo cut into cells: its pixels, the grid and each cell's features."""

    pixels: np.ndarray  # (H, W, 3) uint8, upright
    rows: int
    cols: int
    features: TileFeatures  # of the rows * cols cells, row-major
    mean_rgb: np.ndarray  # (rows * cols, 3) uint8: each cell's mean sRGB colour


# Cells are described a band of grid rows at a time, so a million-cell grid never
# needs all its sampled patches at once.
_PATCH_BAND_BYTES = 32 << 20


def describe_target(target: str | os.PathLike, cols: int, rows: int | None = None, grid: int = 3,
                    aspect: TileAspect = SQUARE) -> TargetCells:
    """Read a target photo and compute the features of its cells, as the tiles' are computed.

    Parameters
    ----------
    target : path
        The picture.
    cols, rows : int
        Cells across and down; rows default to the target's aspect ratio.
    grid : int
        The feature grid per side (the cache's).
    aspect : TileAspect
        The cells' width:height (the cache's tile aspect).

    Raises
    ------
    MosaicError
        If the target cannot be read as a photo.
    """
    patch_h, patch_w = aspect.tile_shape(CELL_SAMPLE_PX)
    try:
        # JPEG may decode reduced, but never below what the cells sample.
        pixels = load_rgb(os.fspath(target), min_side=max(cols * patch_w, (rows or 0) * patch_h))
    except PhotoError as exc:
        raise MosaicError(f"cannot read target {os.fspath(target)}: {exc}") from None
    n_rows, n_cols = grid_shape(pixels.shape[1], pixels.shape[0], cols, rows, aspect)
    features, means = describe_cells(pixels, n_rows, n_cols, grid, aspect)
    return TargetCells(pixels, n_rows, n_cols, features, means)


def describe_cells(pixels: np.ndarray, rows: int, cols: int, grid: int = 3,
                   aspect: TileAspect = SQUARE) -> tuple[TileFeatures, np.ndarray]:
    """The features and mean sRGB colours of a ``rows`` x ``cols`` grid of cells of a target image, row-major.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3)
        The target, upright.
    rows, cols : int
        The grid, whose cells have ``aspect``; the target is centre-cropped to it (:func:`cell_patches`).
    grid : int
        The feature grid per side.
    """
    patch_h, patch_w = aspect.tile_shape(CELL_SAMPLE_PX)
    band = max(1, _PATCH_BAND_BYTES // (cols * patch_h * patch_w * 3))
    parts, means = [], []
    for first in range(0, rows, band):
        patches = cell_patches(pixels, rows, cols, (patch_h, patch_w), (first, min(first + band, rows)), aspect)
        parts.append(compute_features(patches, grid))
        means.append(np.round(patches.mean(axis=(1, 2))).astype(np.uint8))
    return TileFeatures(*(np.concatenate(columns) for columns in zip(*parts))), np.concatenate(means)
