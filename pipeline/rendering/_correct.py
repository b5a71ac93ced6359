"""Colour correction that keeps a tile's detail: move its block colours toward its cell's, in CIELAB.

``--blend`` overlays a flat colour (mosaic makers call it ghosting: the tile's
contrast fades with it). Correction instead moves each tile's low-frequency
colour, its grid of block means, toward the cell's grid and leaves every
pixel's difference from its neighbours alone: the tile's texture and edges
survive, only its light and colour cast move.
"""
from __future__ import annotations

import numpy as np

from ..features import block_averaging, block_means, lab_to_srgb, srgb_to_lab

__all__ = ["correct_tiles"]

_CHUNK_PIXELS = 1 << 21


def _smooth_upsample_matrix(side: int, grid: int) -> np.ndarray:
    """(side, grid) weights that interpolate ``grid`` block values linearly between block centres, flat beyond the outer ones."""
    centres = (np.arange(grid) + 0.5) * side / grid
    pixels = np.arange(side) + 0.5
    weights = np.zeros((side, grid), np.float32)
    for i, x in enumerate(pixels):
        j = int(np.clip(np.searchsorted(centres, x) - 1, 0, max(grid - 2, 0)))
        if grid == 1:
            weights[i, 0] = 1.0
            continue
        t = float(np.clip((x - centres[j]) / (centres[j + 1] - centres[j]), 0.0, 1.0))
        weights[i, j], weights[i, j + 1] = 1.0 - t, t
    return weights


def _field_weights(side: int, grid: int) -> np.ndarray:
    """(side, grid) weights that turn ``grid`` block values into a smooth field whose mean over each block is that value.

    The field is linear between values at the block centres; the centre values are solved
    for (interpolating the block values themselves would flatten them).
    """
    weights = _smooth_upsample_matrix(side, grid)
    averaging = block_averaging(side, grid)  # the blocks the cells' grids were computed on
    return (weights @ np.linalg.inv(averaging @ weights)).astype(np.float32)


def correct_tiles(tiles: np.ndarray, cell_grids: np.ndarray, strength: float) -> np.ndarray:
    """Move each tile's block colours toward its cell's by ``strength``, keeping its detail.

    Each block's colour moves in CIELAB: its mean moves the fraction ``strength`` of
    the way to the cell's block mean. The move is applied to the pixels as a smooth
    sRGB offset field whose mean over each block is that block's move, so every pixel
    keeps its difference from its neighbours (the texture) and the work per pixel is
    one addition: colour conversions happen per block, not per pixel (a per-pixel
    CIELAB round trip rendered 40x slower than the rest of assembly).

    Parameters
    ----------
    tiles : ndarray of uint8, shape (K, h, w, 3)
        sRGB tiles, one per cell.
    cell_grids : ndarray, shape (K, g, g, 3)
        Each cell's CIELAB block means (its feature grid; g = 1: its mean colour).
    strength : float
        0 leaves the tiles alone; 1 gives each tile its cell's block colours (less
        where sRGB clips), its texture laid over them.

    Returns
    -------
    ndarray of uint8, shape (K, h, w, 3)
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"correction strength must be between 0 and 1, got {strength}")
    if strength == 0.0 or len(tiles) == 0:
        return tiles
    height, width = tiles.shape[1:3]
    grid = cell_grids.shape[1]
    down, across = _field_weights(height, grid), _field_weights(width, grid)
    out = np.empty_like(tiles)
    # A few thousand tiles at a time: the float field of a whole band (4 bytes a channel) tripled a render's memory.
    step = max(1, _CHUNK_PIXELS // (height * width))
    for lo in range(0, len(tiles), step):
        part = tiles[lo:lo + step]
        block_rgb = block_means(part, grid)  # sRGB levels, 0..255
        block_lab = srgb_to_lab(block_rgb / 255.0)
        moved = block_lab + strength * (np.asarray(cell_grids[lo:lo + step], np.float32) - block_lab)
        # + 0.5 rounds the sum below; a constant shift makes a constant field (each row of weights sums to 1).
        shift = lab_to_srgb(moved).astype(np.float32) - block_rgb + 0.5
        # down @ shift @ across.T for every tile and channel, as two batched products that leave the
        # field in the tiles' own (k, h, w, 3) layout: adding a transposed view to the tiles cost 3x more.
        k = len(part)
        rows_done = np.matmul(down, shift.reshape(k, grid, grid * 3)).reshape(k, height, grid, 3)
        field = np.matmul(across, rows_done)
        field += part
        np.clip(field, 0, 255, out=field)
        out[lo:lo + step] = field
    return out
