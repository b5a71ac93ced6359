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
from threadpoolctl import threadpool_limits

from ._scoring import VectorCost
from ._selection import least_k

__all__ = ["DENSE_PAIRS", "DenseSweep"]

DENSE_PAIRS = 600_000_000  # cell-tile pairs (each way round) up to which a dense sweep is the price-out
_BLOCK_BYTES = 1 << 24  # a block of cells' products with every tile stays under this
_CHUNK = 256  # free tiles screened together


_FAST = {"nsz", "reassoc", "contract"}  # no assumption that values are finite: inf marks "none yet"


@njit(cache=True)  # called rarely, and kept out of the sweep's fastmath
def _exact_cost(cell, tiles, t, n_tiles, n_ways, weight, scale):
    """The cell's exact cost of tile ``t``: float64, the lesser way round, weighted."""
    squared = np.inf
    for w in range(n_ways):
        row = tiles[w * n_tiles + t]
        total = 0.0
        for k in range(cell.size):
            diff = cell[k] - row[k]
            total += diff * diff
        squared = min(squared, total)
    return weight * np.sqrt(squared * scale)


@njit(cache=True, nogil=True, fastmath=_FAST, inline="always")  # a call per pair otherwise costs ~10 ns
def _screened(products, screen_norms, r, j, n_tiles, n_ways):
    """A lower bound of the squared distance of row ``r`` to tile ``j``, less the cell's own norm."""
    squared = screen_norms[j] - 2.0 * products[r, j]
    for w in range(1, n_ways):
        squared = min(squared, screen_norms[w * n_tiles + j] - 2.0 * products[r, w * n_tiles + j])
    return squared


@njit(cache=True, nogil=True, fastmath=_FAST)
def _sweep_rows(products, cells, tiles, order, cell_norms, screen_norms, n_priced, n_ways, scale, rounding, weights,
                prices, limits, per_cell, best, found):
    """Each row's least ``cost + price`` into ``best``; its ``per_cell`` most violating tiles into ``found`` (-1: none).

    Tiles come in ``order`` (``products``, ``screen_norms`` and ``prices`` follow it):
    the ``n_priced`` priced tiles first, then the free ones, whose cost alone counts,
    so that their least is a plain minimum of squared distances. The float32
    ``products`` only screen: lowered by a bound on their rounding, the values they
    give bound each ``cost + price`` from below, and every tile whose bound is below
    the row's least exact value is costed again exactly (float64).
    """
    n_tiles = order.size
    candidate_values, candidate_tiles = np.empty(n_tiles), np.empty(n_tiles, np.int64)
    priced_values = np.empty(n_priced)
    chosen = np.empty(per_cell, np.int64)
    # The free tiles go in chunks: a chunk's least bound, a vectorised minimum, tells whether any of its
    # tiles needs a closer look, which most chunks do not.
    n_chunks = -(-(n_tiles - n_priced) // _CHUNK)
    chunk_low = np.empty(n_chunks)
    for r in range(products.shape[0]):
        own = (1.0 - rounding) * cell_norms[r]
        weight, cell, limit = weights[r], cells[r], limits[r]
        free_low, free_chunk = np.inf, -1
        for c in range(n_chunks):
            low = np.inf
            for j in range(n_priced + c * _CHUNK, min(n_tiles, n_priced + (c + 1) * _CHUNK)):
                low = min(low, _screened(products, screen_norms, r, j, n_tiles, n_ways))
            chunk_low[c] = low
            if low < free_low:
                free_low, free_chunk = low, c
        for j in range(n_priced):
            priced_values[j] = weight * np.sqrt(max(own + _screened(products, screen_norms, r, j, n_tiles, n_ways),
                                                    0.0) * scale) + prices[j]
        nearest = -1
        for j in range(n_priced):
            if nearest < 0 or priced_values[j] < priced_values[nearest]:
                nearest = j
        if n_priced < n_tiles and (nearest < 0 or weight * np.sqrt(max(own + free_low, 0.0) * scale)
                                   < priced_values[nearest]):
            nearest = -1
        if nearest < 0:  # a free tile has the least bound: the least in its chunk
            low = np.inf
            for j in range(n_priced + free_chunk * _CHUNK, min(n_tiles, n_priced + (free_chunk + 1) * _CHUNK)):
                squared = _screened(products, screen_norms, r, j, n_tiles, n_ways)
                if squared < low:
                    low, nearest = squared, j
        least = _exact_cost(cell, tiles, order[nearest], n_tiles, n_ways, weight, scale) + prices[nearest]
        reach = max(least, limit)  # tiles whose bound is below this may violate, or be the least
        count = 0
        for j in range(n_priced):
            value = priced_values[j]
            if value < least:
                least = min(least, _exact_cost(cell, tiles, order[j], n_tiles, n_ways, weight, scale) + prices[j])
            if value < limit:
                candidate_values[count], candidate_tiles[count] = value, j
                count += 1
        free_reach = -np.inf if reach <= 0 else (reach / weight) ** 2 / scale * (1 + 1e-9) - own + 1e-9
        for c in range(n_chunks):
            if chunk_low[c] >= free_reach:
                continue
            for j in range(n_priced + c * _CHUNK, min(n_tiles, n_priced + (c + 1) * _CHUNK)):
                squared = _screened(products, screen_norms, r, j, n_tiles, n_ways)
                if squared < free_reach:
                    value = weight * np.sqrt(max(own + squared, 0.0) * scale)
                    if value < least:
                        least = min(least, _exact_cost(cell, tiles, order[j], n_tiles, n_ways, weight, scale))
                    if value < limit:
                        candidate_values[count], candidate_tiles[count] = value, j
                        count += 1
        best[r] = least
        kept = least_k(candidate_values[:count], per_cell, chosen)  # the row's most violating tiles
        for k in range(kept):
            found[r, k] = order[candidate_tiles[chosen[k]]]


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
        self._products: list[np.ndarray] = []

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
        # The priced tiles first: the free ones then need no price, only the least distance.
        priced = prices != 0
        order = np.concatenate([np.flatnonzero(priced), np.flatnonzero(~priced)])
        ways_order = np.concatenate([order + w * self.n_tiles for w in range(self.n_ways)])
        tiles32, screen_norms, ordered_prices = self.tiles32[ways_order], self.screen_norms[ways_order], prices[order]
        n_priced = int(priced.sum())

        threads = os.cpu_count() or 1
        if len(self._products) != threads or self._products[0].shape[0] != rows:
            # Kept across rounds: fresh pages for a block's products cost more than the product itself here.
            self._products = [np.empty((rows, len(self.tiles)), np.float32) for _ in range(threads)]

        def sweep(thread: int) -> None:
            for lo in range(thread * rows, n_cells, threads * rows):
                part = slice(lo, min(n_cells, lo + rows))
                products = self._products[thread][:part.stop - lo]
                np.matmul(self.cells32[part], tiles32.T, out=products)
                _sweep_rows(products, self.cells[part], self.tiles, order, self.cell_norms[part], screen_norms,
                            n_priced, self.n_ways, self.scale, self.rounding, self.weights[part], ordered_prices,
                            limits[part], per_cell, best[part], found[part])

        # The kernel lets go of the GIL: one thread's product overlaps another's sweep.
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(sweep, range(threads)))
        cells, slots = np.nonzero(found >= 0)
        return best, cells, found[cells, slots]
