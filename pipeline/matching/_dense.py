"""A dense, exact price-out: every cell against every tile, for libraries small enough to sweep.

The KD-tree price-out (:mod:`._pricing`) proves its bound through 9-number keys
that bound a 48-number cost loosely, so proving a cell's best tile can take
thousands of candidates. Up to some hundreds of millions of pairs it is faster to
cost them all: the squared distances come from one matrix product per block of
cells (``|a|^2 + |b|^2 - 2 a.b``, in float64, the tiles' mean taken out first so
the terms stay small), and a numba kernel turns each row into the cell's least
``cost + price`` and its most violating tiles.

The bound is exact up to rounding, and rounding is charged to it: each squared
distance is lowered by a bound on its error before the root, so the least
``cost + price`` found is never above the true one.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from ._scoring import VectorCost

__all__ = ["DENSE_PAIRS", "DenseSweep"]

DENSE_PAIRS = 600_000_000  # cell-tile pairs (each way round) up to which a dense sweep is the price-out
_BLOCK_BYTES = 1 << 24  # a block of cells' products with every tile stays under this


@njit(cache=True)
def _exact_squared(cell, tiles, t, n_tiles, n_ways):
    """The float64 squared distance of a cell to tile ``t``, the lesser way round."""
    squared = np.inf
    for w in range(n_ways):
        row = tiles[w * n_tiles + t]
        total = 0.0
        for k in range(cell.size):
            diff = cell[k] - row[k]
            total += diff * diff
        squared = min(squared, total)
    return squared


@njit(cache=True, nogil=True, fastmath={"nsz", "reassoc", "contract"})
def _sweep_rows(products, cells, tiles, cell_norms, screen_norms, n_tiles, n_ways, scale, rounding, weights, prices,
                limits, per_cell, best, found):
    """Each row's least ``cost + price`` into ``best``; its ``per_cell`` most violating tiles into ``found`` (-1: none).

    The float32 ``products`` only screen: lowered by a bound on their rounding, the
    values they give bound each ``cost + price`` from below; the tiles whose bound
    is below the row's least exact value are costed again exactly, so the row's
    least is exact up to float64 rounding.
    """
    values = np.empty(n_tiles)
    for r in range(products.shape[0]):
        own = (1.0 - rounding) * cell_norms[r]
        weight, cell, limit = weights[r], cells[r], limits[r]
        for j in range(n_tiles):
            values[j] = screen_norms[j] - 2.0 * products[r, j]
        for w in range(1, n_ways):
            for j in range(n_tiles):
                values[j] = min(values[j], screen_norms[w * n_tiles + j] - 2.0 * products[r, w * n_tiles + j])
        count = 0
        for j in range(n_tiles):
            value = weight * np.sqrt(max(own + values[j], 0.0) * scale) + prices[j]
            values[j] = value
            count += value < limit
        nearest = np.argmin(values)
        least = weight * np.sqrt(_exact_squared(cell, tiles, nearest, n_tiles, n_ways) * scale) + prices[nearest]
        for j in range(n_tiles):
            if values[j] < least:
                least = min(least, weight * np.sqrt(_exact_squared(cell, tiles, j, n_tiles, n_ways) * scale)
                            + prices[j])
        best[r] = least
        if count == 0:
            continue
        k = 0
        if count <= per_cell:
            for j in range(n_tiles):
                if values[j] < limit:
                    found[r, k] = j
                    k += 1
            continue
        violating = np.empty(count)  # only the row's ``per_cell`` most violating tiles: up to the per_cell-th value
        for j in range(n_tiles):
            if values[j] < limit:
                violating[k] = values[j]
                k += 1
        last = np.partition(violating, per_cell - 1)[per_cell - 1]
        k = 0
        for j in range(n_tiles):
            if values[j] < last:
                found[r, k] = j
                k += 1
        for j in range(n_tiles):  # ties with the last, as many as there is room for
            if values[j] == last and k < per_cell:
                found[r, k] = j
                k += 1


class DenseSweep:
    """The dense price-out of one :class:`VectorCost`, its float64 vectors prepared once per run."""

    def __init__(self, cost: VectorCost):
        centre = cost.tile_ways[0].mean(axis=0, dtype=np.float64)
        self.cells = cost.cell_vectors.astype(np.float64) - centre
        self.tiles = np.vstack([way.astype(np.float64) - centre for way in cost.tile_ways])
        self.cells32, self.tiles32 = self.cells.astype(np.float32), self.tiles.astype(np.float32)
        self.n_tiles, self.n_ways = len(cost.tile_ways[0]), len(cost.tile_ways)
        self.cell_norms = np.einsum("ij,ij->i", self.cells, self.cells)
        self.tile_norms = np.einsum("ij,ij->i", self.tiles, self.tiles)
        self.scale = cost.scale
        self.weights = np.ones(len(self.cells)) if cost.weights is None else cost.weights.astype(np.float64)
        # The float32 product of d terms errs by at most about d * 2^-24 of |a||b| <= (|a|^2 + |b|^2) / 2, the
        # screen's own sum once more: a screen lowered by eight times that passes every tile that may matter on
        # to the exact float64 cost.
        self.rounding = 8 * (self.cells.shape[1] + 2) * float(np.finfo(np.float32).eps)
        self.screen_norms = (1.0 - self.rounding) * self.tile_norms

    def price_out(self, prices: np.ndarray, u: np.ndarray, tolerance: float,
                  per_cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every cell's least ``cost + price`` over all tiles, and its most violating edges.

        Returns
        -------
        best : ndarray, shape (n_cells,)
            A lower bound of each cell's least ``cost + price``, below it by no more than rounding.
        cells, tiles : ndarray
            Up to ``per_cell`` edges a cell whose ``cost + price`` is below ``u - tolerance``, the lowest
            (or within rounding of it: the graph costs its edges exactly).
        """
        n_cells = len(self.cells)
        prices = np.ascontiguousarray(prices, dtype=np.float64)
        limits = np.asarray(u, np.float64) - tolerance
        best = np.empty(n_cells)
        found = np.full((n_cells, per_cell), -1, np.int64)
        rows = max(1, _BLOCK_BYTES // (4 * len(self.tiles)))

        def sweep(lo: int) -> None:
            part = slice(lo, min(n_cells, lo + rows))
            products = self.cells32[part] @ self.tiles32.T
            _sweep_rows(products, self.cells[part], self.tiles, self.cell_norms[part], self.screen_norms,
                        self.n_tiles, self.n_ways, self.scale, self.rounding, self.weights[part], prices,
                        limits[part], per_cell, best[part], found[part])

        # The kernel lets go of the GIL: one block's product overlaps another's sweep.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(sweep, range(0, n_cells, rows)))
        cells, slots = np.nonzero(found >= 0)
        return best, cells, found[cells, slots]
