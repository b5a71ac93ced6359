"""Pair costs between target cells and library tiles, and the KD-tree keys that bound them from below.

Structure-aware scoring compares the CIELAB grids of a cell and a tile (4x4 by
default, L* weighted: :func:`pipeline.features.matching_vectors`), so a tile's
light and dark parts fall where the cell's do: the cost is the root mean square
difference of corresponding blocks (48 numbers a pair at 4x4).
KD-trees cannot index 48 dimensions well, so candidates are found on 9-number keys
(:func:`grid_keys`): the grid's projection to 8 axes (the mean colour, then the
grid's five main ways of varying), plus the length of what the projection leaves
out. Their distance is never above the cost. A search on the keys therefore never
misses a tile that the cost would rank first, once it is deep enough;
:mod:`pipeline.matching._assign` relies on that bound to prove optimality.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["PairCost", "VectorCost", "euclidean_cost", "grid_cost", "grid_basis", "grid_keys"]

PairCost = Callable[[np.ndarray, np.ndarray], np.ndarray]


class VectorCost:
    """Pair cost = a cell's weight x sqrt(``scale`` x the squared distance of the pair's vectors).

    A callable ``cost(cells, tiles)`` of index pairs, like any :data:`PairCost`, that
    also says what it is made of, so that a search may sweep it densely
    (:mod:`pipeline.matching._dense`). A tile that may be used either way round has
    two ``tile_ways`` (its vectors, then its vectors mirrored) and costs the lesser.

    Parameters
    ----------
    cell_vectors : ndarray, shape (n_cells, d)
    tile_ways : sequence of ndarray, each shape (n_tiles, d)
    scale : float
    weights : ndarray, shape (n_cells,), optional
        Each cell's multiplier of its costs (at least 1).
    """

    def __init__(self, cell_vectors: np.ndarray, tile_ways: Sequence[np.ndarray], scale: float = 1.0,
                 weights: np.ndarray | None = None, chunk: int = 1 << 18):
        self.cell_vectors, self.tile_ways = cell_vectors, tuple(tile_ways)
        self.scale, self.weights, self.chunk = float(scale), weights, chunk

    def __call__(self, cells: np.ndarray, tiles: np.ndarray) -> np.ndarray:
        out = np.empty(len(cells), np.float64)
        for lo in range(0, len(cells), self.chunk):
            part_cells, part_tiles = cells[lo:lo + self.chunk], tiles[lo:lo + self.chunk]
            rows = self.cell_vectors[part_cells]
            squared = None
            for way in self.tile_ways:
                diff = rows - way[part_tiles]
                way_squared = np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
                squared = way_squared if squared is None else np.minimum(squared, way_squared)
            out[lo:lo + self.chunk] = np.sqrt(squared * self.scale)
        if self.weights is not None:
            out *= self.weights[cells]
        return out

    def weighted(self, weights: np.ndarray) -> "VectorCost":
        """This cost with each cell's multiplied by its weight (and by any weight it had)."""
        if self.weights is not None:
            weights = weights * self.weights
        return VectorCost(self.cell_vectors, self.tile_ways, self.scale, weights, self.chunk)

    def either_way(self, n_tiles: int) -> "VectorCost":
        """A cost over ``n_tiles`` tiles whose vectors here are followed by their mirrored ones: the better way round."""
        ways = [part for way in self.tile_ways for part in (way[:n_tiles], way[n_tiles:])]
        return VectorCost(self.cell_vectors, ways, self.scale, self.weights, self.chunk)


def euclidean_cost(cell_keys: np.ndarray, tile_keys: np.ndarray) -> VectorCost:
    """Pair cost = Euclidean distance of the keys themselves."""
    return VectorCost(cell_keys, [tile_keys])


def grid_cost(cell_grid: np.ndarray, tile_grid: np.ndarray, chunk: int = 1 << 18) -> VectorCost:
    """Pair cost = root mean square CIE76 difference of corresponding grid blocks.

    ``cell_grid`` and ``tile_grid`` are (n, blocks * 3). This is never below the
    distance of the pair's :func:`grid_keys`, which the KD-trees index.
    """
    return VectorCost(cell_grid, [tile_grid], 3 / cell_grid.shape[1], chunk=chunk)


def grid_basis(grid: np.ndarray, dims: int = 8, sample: int = 50_000) -> np.ndarray:
    """An orthonormal (blocks * 3, dims) basis for :func:`grid_keys`.

    The first three axes are the mean colour of the blocks; the others are the main
    axes of how blocks differ from their mean (PCA of a sample of ``grid``: light
    above dark, left to right, ...).
    """
    blocks = grid.shape[1] // 3
    mean_axes = np.zeros((grid.shape[1], 3))
    for channel in range(3):
        mean_axes[channel::3, channel] = 1 / np.sqrt(blocks)
    rows = grid[np.random.default_rng(0).choice(len(grid), min(sample, len(grid)), replace=False)].astype(np.float64)
    residual = rows - (rows @ mean_axes) @ mean_axes.T
    residual -= residual.mean(axis=0)
    _, _, components = np.linalg.svd(residual, full_matrices=False)
    return np.hstack([mean_axes, components[:max(0, dims - 3)].T])


def grid_keys(grid: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(n, blocks * 3) grid features -> (n, dims + 1) KD-tree keys.

    The first ``dims`` coordinates are the grid's projection on ``basis`` (the
    first three the mean colour), the last the length of the rest (the residual).
    Key distance never exceeds :func:`grid_cost`: the cost is the length of the
    difference, whose projection and residual are orthogonal, and two residuals'
    lengths differ by no more than the length of their difference. That last
    coordinate doubles the cells whose best tile is proven among their 16 nearest
    keys (0.31 to 0.67 on tests/benchmarks/bench_assign.py's 100,000 x 1,000,000).
    """
    blocks = grid.shape[1] // 3
    out = np.empty((len(grid), basis.shape[1] + 1), np.float32)
    for lo in range(0, len(grid), 1 << 20):
        part = grid[lo:lo + (1 << 20)].astype(np.float64) / np.sqrt(blocks)
        projected = part @ basis
        out[lo:lo + (1 << 20), :-1] = projected
        residual = np.einsum("ij,ij->i", part, part) - np.einsum("ij,ij->i", projected, projected)
        out[lo:lo + (1 << 20), -1] = np.sqrt(np.maximum(residual, 0))
    return out
