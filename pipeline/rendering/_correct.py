"""Colour correction that keeps a tile's detail: shift its CIELAB colours toward its cell's, block by block.

``--blend`` overlays a flat colour (mosaic makers call it ghosting: the tile's
contrast fades with it). Correction instead moves each tile's low-frequency
colour, its grid of block means, toward the cell's grid and leaves every
pixel's difference from its block mean alone: the tile's texture and edges
survive, only its light and colour cast move.
"""
from __future__ import annotations

import numpy as np

from ..features import lab_to_srgb, srgb_to_lab

__all__ = ["correct_tiles"]


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


def _block_means(lab: np.ndarray, grid: int) -> np.ndarray:
    """(K, p, p, 3) -> (K, grid, grid, 3) means of near-equal blocks."""
    side = lab.shape[1]
    edges = np.linspace(0, side, grid + 1).astype(np.intp)
    sums = np.add.reduceat(np.add.reduceat(lab, edges[:-1], axis=1), edges[:-1], axis=2)
    sizes = np.diff(edges)
    return sums / (sizes[:, None] * sizes[None, :])[None, :, :, None]


def correct_tiles(tiles: np.ndarray, cell_grids: np.ndarray, strength: float) -> np.ndarray:
    """Move each tile's block colours toward its cell's by ``strength``, keeping its detail.

    Parameters
    ----------
    tiles : ndarray of uint8, shape (K, p, p, 3)
        sRGB tiles, one per cell.
    cell_grids : ndarray, shape (K, g, g, 3)
        Each cell's CIELAB block means (its feature grid; g = 1: its mean colour).
    strength : float
        0 leaves the tiles alone; 1 gives each tile its cell's block means exactly
        (less where sRGB clips), its texture laid over them.

    Returns
    -------
    ndarray of uint8, shape (K, p, p, 3)
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"correction strength must be between 0 and 1, got {strength}")
    if strength == 0.0 or len(tiles) == 0:
        return tiles
    k, side = tiles.shape[:2]
    grid = cell_grids.shape[1]
    lab = srgb_to_lab(tiles)
    shift = strength * (np.asarray(cell_grids, np.float32) - _block_means(lab, grid))
    weights = _smooth_upsample_matrix(side, grid)
    # A smooth field, so no block edges appear in the tile: values at the block centres, interpolated
    # between them. The centre values are solved for so that the field's mean over each block is that
    # block's shift exactly (interpolating the shifts themselves would flatten them).
    edges = np.linspace(0, side, grid + 1).astype(np.intp)
    averaging = np.zeros((grid, side), np.float32)
    for block in range(grid):
        averaging[block, edges[block]:edges[block + 1]] = 1.0 / (edges[block + 1] - edges[block])
    weights = weights @ np.linalg.inv(averaging @ weights)
    # weights @ shift @ weights.T for every tile and channel, as two batched products (einsum: 6x slower).
    field = np.matmul(weights, np.matmul(weights, shift.transpose(0, 3, 1, 2)).transpose(0, 1, 3, 2))
    field = field.transpose(0, 3, 2, 1)
    return lab_to_srgb(lab + field)
