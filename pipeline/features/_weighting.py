"""Matching vectors: a grid of CIELAB blocks with lightness weighted, flattened for the pair cost.

The eye reads a mosaic's light-and-dark structure before its hues (metapixel
weights luminance for the same reason). Scaling L* by ``luminance_weight`` in both
cells and tiles makes the matching cost's Euclidean distance count a lightness
difference that many times a chroma difference of the same size; the cost is
still a Euclidean distance of two vectors, so the KD-tree keys built on these
vectors still bound it from below.
"""
from __future__ import annotations

import numpy as np

__all__ = ["matching_vectors", "mirror_grids"]


def matching_vectors(grid_lab: np.ndarray, luminance_weight: float = 1.0) -> np.ndarray:
    """(N, grid, grid, 3) CIELAB grids -> (N, grid * grid * 3) float32 vectors with L* scaled.

    Parameters
    ----------
    grid_lab : ndarray, shape (N, grid, grid, 3)
        Block means in CIELAB, as :func:`compute_features` returns them.
    luminance_weight : float
        Factor on L*; 1 leaves the grid as CIE76 distances see it.

    Returns
    -------
    ndarray of float32, shape (N, grid * grid * 3)
    """
    if luminance_weight <= 0:
        raise ValueError(f"luminance_weight must be positive, got {luminance_weight}")
    vectors = np.array(grid_lab, dtype=np.float32).reshape(len(grid_lab), -1)
    if luminance_weight != 1:
        vectors[:, 0::3] *= luminance_weight
    return vectors


def mirror_grids(grid_lab: np.ndarray) -> np.ndarray:
    """(N, grid, grid, 3) block means of tiles -> those of the tiles mirrored left to right (a view).

    Each row of blocks is reversed: the mirror's features without decoding the tile
    again. Exact where the blocks are of equal width; where a tile's width does not
    divide into them, its blocks differ by a pixel and this is a close approximation.
    """
    return grid_lab[:, :, ::-1, :]
