"""The capped assignment's candidate graph: a growing set of (cell, tile) edges, its exact min-cost flow and dual prices.

The auction (:mod:`._auction`) solves the graph in every round where tiles have no
floor of uses; the min-cost flow here solves it where they do, and is the exact
reference the auction is tested against.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._scoring import PairCost
from ._selection import least_k
from ._transport import _COST_SCALE, _solve_min_cost_flow

__all__ = ["CandidateGraph", "solve_on_graph", "graph_prices"]


@njit(cache=True)
def _least_per_segment(starts: np.ndarray, values: np.ndarray, per_segment: int) -> np.ndarray:
    """A mask of each segment's ``per_segment`` least values (segment s is ``starts[s]:starts[s + 1]``)."""
    keep = np.zeros(values.size, np.bool_)
    chosen = np.empty(per_segment, np.int64)
    for s in range(starts.size - 1):
        lo, hi = starts[s], starts[s + 1]
        for k in range(least_k(values[lo:hi], per_segment, chosen)):
            keep[lo + chosen[k]] = True
    return keep


class CandidateGraph:
    """A growing set of (cell, tile) edges with their costs."""

    def __init__(self, n_tiles: int) -> None:
        self.n_tiles = n_tiles
        self.codes = np.empty(0, np.int64)
        self.costs = np.empty(0, np.float64)

    def add(self, cells: np.ndarray, tiles: np.ndarray, cost: PairCost) -> int:
        codes = np.sort(cells.astype(np.int64) * self.n_tiles + tiles)
        codes = codes[np.r_[True, codes[1:] != codes[:-1]]] if codes.size else codes
        if self.codes.size:  # sorted both: a binary search, much faster than np.setdiff1d's hashing here
            at = np.minimum(np.searchsorted(self.codes, codes), self.codes.size - 1)
            codes = codes[self.codes[at] != codes]
        if codes.size:
            # Costs on the solver's integer grid: the matching is then exactly optimal for the costs
            # the prices are computed from, so their shortest paths never meet a negative cycle.
            new_costs = np.rint(cost(codes // self.n_tiles, codes % self.n_tiles) * _COST_SCALE) / _COST_SCALE
            at = np.searchsorted(self.codes, codes)  # both sorted: an insertion, no sort of the whole
            self.codes, self.costs = np.insert(self.codes, at, codes), np.insert(self.costs, at, new_costs)
        return int(codes.size)

    def keep_best(self, reduced: np.ndarray, per_cell: int) -> None:
        """Keep each cell's ``per_cell`` edges of least reduced cost (its matched edge has 0)."""
        keep = _least_per_segment(np.searchsorted(self.codes, np.arange(self.codes[-1] // self.n_tiles + 2)
                                                  * self.n_tiles), reduced, per_cell)
        self.codes, self.costs = self.codes[keep], self.costs[keep]

    @property
    def cells(self) -> np.ndarray:
        return self.codes // self.n_tiles

    @property
    def tiles(self) -> np.ndarray:
        return self.codes % self.n_tiles


def solve_on_graph(graph: CandidateGraph, n_cells: int, max_uses: int, min_uses: int = 0) -> np.ndarray:
    """Exact min-cost assignment restricted to the graph's edges (each tile ``min_uses`` to ``max_uses`` cells).

    A min-cost flow (OR-tools' cost-scaling push-relabel): one unit from every cell,
    through one of its edges, to a tile, and on to a sink through an arc of capacity
    ``max_uses``. Sparse Jonker-Volgenant solvers need every tile split into ``max_uses`` slots
    and stall on rectangular graphs: in ``tests/benchmarks/bench_assign.py`` at 100,000
    cells x 1,000,000 tiles, scipy's LAPJVsp was still on the first graph after 5
    minutes; this solves it in ~12 s. A floor of uses is a lower bound on a tile's arc to
    the sink, which the flow takes as the tile's demand: ``min_uses`` of its cells must
    reach it, and only the rest pass on to the sink.
    """
    cells, tiles, costs = graph.cells, graph.tiles, graph.costs
    used_tiles = np.flatnonzero(np.bincount(tiles, minlength=graph.n_tiles))
    local = np.zeros(graph.n_tiles, np.int64)
    local[used_tiles] = np.arange(used_tiles.size)
    local = local[tiles]
    sink = n_cells + len(used_tiles)
    supplies = np.ones(sink + 1, np.int64)
    supplies[n_cells:] = -min_uses
    supplies[sink] = -(n_cells - min_uses * len(used_tiles))
    flows = _solve_min_cost_flow(
        np.concatenate([cells, np.arange(n_cells, sink)]),
        np.concatenate([n_cells + local, np.full(len(used_tiles), sink)]),
        np.concatenate([np.ones(len(cells), np.int64), np.full(len(used_tiles), max_uses - min_uses, np.int64)]),
        np.concatenate([np.rint(costs * _COST_SCALE), np.zeros(len(used_tiles))]),
        supplies, "the candidate graph")
    matched = np.flatnonzero(flows[: len(cells)] > 0)
    chosen = np.empty(n_cells, np.int64)
    chosen[cells[matched]] = used_tiles[local[matched]]
    return chosen


def graph_prices(graph: CandidateGraph, chosen: np.ndarray, full: np.ndarray, at_floor: np.ndarray) -> np.ndarray:
    """Dual prices of the tiles for a matching that is optimal on ``graph``.

    A tile with spare capacity costs 0. A full tile ``t`` costs the cheapest way to
    move one of its cells ``i`` to another tile ``t'`` of the graph:
    ``min cost(i, t') - cost(i, t) + price(t')``; Bellman-Ford, vectorised over edges.
    A tile held at its floor of uses (``at_floor``) costs that too where it is below 0:
    a negative price, what the floor is worth, draws cells to it (without a floor, the
    tiles "at" it are the unused ones, which have no cells to move).
    Each pass relaxes only the edges into tiles whose price fell in the pass before:
    at 100,000 cells x 1,000,000 tiles it takes 86 passes, most of them touching a
    few thousand tiles of 8 million edges.
    """
    prices = np.zeros(len(full), np.float64)
    prices[full] = np.inf
    if full.all():
        # No spare capacity anywhere: prices are defined up to a constant, so one tile anchors them.
        prices[chosen[0]] = 0.0
    cells, tiles = graph.cells, graph.tiles
    own_cost = np.zeros(len(chosen))
    own = tiles == chosen[cells]
    own_cost[cells[own]] = graph.costs[own]
    away = ~own
    source = chosen[cells[away]]
    target, step = tiles[away], graph.costs[away] - own_cost[cells[away]]
    keep = (full | at_floor)[source]
    source, target, step = source[keep], target[keep], step[keep]
    by_target = np.argsort(target, kind="stable")
    sorted_targets = target[by_target]
    offers = np.full(len(full), np.inf)  # each full tile's best offer in this pass
    edges = np.flatnonzero(np.isfinite(prices[target]))  # the first pass: every edge into a priced tile
    for _ in range(len(chosen) + 1):
        owners = source[edges]
        np.minimum.at(offers, owners, step[edges] + prices[target[edges]])
        fallen = np.unique(owners[offers[owners] < prices[owners] - 1e-12])
        prices[fallen] = offers[fallen]
        offers[owners] = np.inf
        if not fallen.size:
            break
        first = np.searchsorted(sorted_targets, fallen, "left")
        counts = np.searchsorted(sorted_targets, fallen, "right") - first
        edges = by_target[np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
    # A full tile whose cells cannot move within the graph gets no finite price from it;
    # the largest finite price keeps it dear without breaking the bound, which holds for any prices.
    finite = prices[np.isfinite(prices)]
    prices[~np.isfinite(prices)] = finite.max() if finite.size else 0.0
    return prices
