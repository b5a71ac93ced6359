"""Capacitated assignment of cells to tiles: every cell one tile, no tile used more than its max_uses times, least total cost.

The problem is a transportation problem far too large for a dense cost matrix
(200,000 cells x 13,000,000 tiles is 2.6e12 entries), and its optimum is not
local: when the library lacks some of the target's colours, many cells must take
distant tiles, so neither greedy matching nor exact matching on a k-nearest graph
comes close (both land 35-75 % above the optimum on real photo colours).

We solve it by **column generation on a sparse graph**, which is exact:

1. Start from a small graph: each cell's nearest tiles under prices taken from an
   exact transport between colour clusters of cells and tiles (a min-cost flow on a
   few hundred clusters), so the first graph already reaches across the colour space
   the way the optimum will; a greedy assignment's edges make it feasible.
2. Solve the assignment exactly on the graph, as a min-cost flow (OR-tools).
3. Recover the tiles' dual prices from that matching by shortest paths in its
   residual graph (vectorised Bellman-Ford): a full tile's price is what it costs
   to push one of its cells elsewhere.
4. Price out: look for any cell ``i`` and tile ``j`` in the *whole library* with
   ``cost(i, j) + price(j) < u(i)``, the cell's current cost plus its tile's price.
   KD-trees over tiles grouped by price level answer this with a certificate,
   because cost is never below the distance of the keys the trees index; the
   groups are independent Dask tasks on a client (:mod:`pipeline.matching._pricing`).
   Add the violating edges and go to 2; with none left the matching is optimal.
   Rounds search only each cell's first few candidates per tree, and approximately
   (``_ROUGH``: several times faster in 9-D), which finds plenty to add; only a
   round that finds nothing searches exactly and deep enough to prove optimality.

Every round also yields a valid lower bound on the optimum (the dual objective),
so a run stopped by its round or time budget reports how far it can be from the
optimum at most.
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

import numpy as np
from distributed import Client
from pykdtree.kdtree import KDTree

from ._pricing import _TOLERANCE, PricingData, _price_out
from ._scoring import PairCost, euclidean_cost
from ._transport import _COST_SCALE, _ROUGH, _kd_query, _solve_min_cost_flow, _transport_candidates

__all__ = ["CapacitatedAssignment", "assign_capacitated", "greedy_assignment"]

_STALL = 2e-4  # a round that gains less than this fraction of the cost ends the search
_DEEP_K = 512  # deepest search per price group when proving optimality
_FIRST_EDGES = 8_000_000  # edges the first graph may hold


class CapacitatedAssignment(NamedTuple):
    """The result of :func:`assign_capacitated`."""

    tiles: np.ndarray  # (n_cells,) int64
    costs: np.ndarray  # (n_cells,) float64
    lower_bound: float  # no assignment costs less in total
    rounds: int


class _Graph:
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
            merged = np.concatenate([self.codes, codes])
            order = np.argsort(merged, kind="stable")
            self.codes, self.costs = merged[order], np.concatenate([self.costs, new_costs])[order]
        return int(codes.size)

    def keep_best(self, reduced: np.ndarray, per_cell: int) -> None:
        """Keep each cell's ``per_cell`` edges of least reduced cost (its matched edge has 0)."""
        cells = self.cells
        order = np.lexsort((reduced, cells))
        rank = np.empty(cells.size, np.int64)
        rank[order] = np.arange(cells.size) - np.searchsorted(cells[order], cells[order])
        keep = rank < per_cell
        self.codes, self.costs = self.codes[keep], self.costs[keep]

    @property
    def cells(self) -> np.ndarray:
        return self.codes // self.n_tiles

    @property
    def tiles(self) -> np.ndarray:
        return self.codes % self.n_tiles


def _solve_on_graph(graph: _Graph, n_cells: int, max_uses: int, min_uses: int = 0) -> np.ndarray:
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


def _tile_prices(graph: _Graph, chosen: np.ndarray, full: np.ndarray, at_floor: np.ndarray) -> np.ndarray:
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


def _claim(candidates: np.ndarray, priority: np.ndarray, uses: np.ndarray, max_uses: int) -> np.ndarray:
    """Each row's first candidate tile with uses left (-1 if none), updating ``uses``.

    Column by column, all rows at once: rows that propose the same tile get it in
    ``priority`` order while it has uses left, and the others move on to their next.
    """
    chosen = np.full(len(candidates), -1, np.int64)
    rows = priority
    for column in candidates.T:
        if not rows.size:
            break
        tiles = column[rows]
        by_tile = np.argsort(tiles, kind="stable")  # stable: rows keep their priority within a tile
        ranked = tiles[by_tile]
        rank = np.empty(rows.size, np.int64)
        rank[by_tile] = np.arange(rows.size) - np.searchsorted(ranked, ranked)
        won = rank < max_uses - uses[tiles]
        chosen[rows[won]] = tiles[won]
        np.add.at(uses, tiles[won], 1)
        rows = rows[~won]
    return chosen


def _greedy_feasible(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int,
                     nearest: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Some assignment within capacity: cells claim their nearest tiles with uses left, nearest first.

    ``nearest`` is every cell's (distances, tiles) to its k nearest tiles, the first
    round's candidates; later rounds search only the tiles with uses left, twice as
    deep each time (up to 1,024).
    """
    n_cells, n_tiles = len(cell_keys), len(tile_keys)
    uses = np.zeros(n_tiles, np.int64)
    chosen = np.full(n_cells, -1, np.int64)
    open_cells = np.arange(n_cells)
    dist, candidates = nearest
    k = candidates.shape[1]
    while open_cells.size:
        chosen[open_cells] = _claim(candidates, np.argsort(dist[:, 0], kind="stable"), uses, max_uses)
        open_cells = open_cells[chosen[open_cells] < 0]
        if open_cells.size:
            free = np.flatnonzero(uses < max_uses)
            tree = KDTree(np.ascontiguousarray(tile_keys[free], dtype=np.float32))
            # The cells left compete for the same crowded colours: a fixed depth took 71 rounds
            # at 100,000 cells x 1,000,000 tiles, doubling it 8.
            k = min(2 * k, 1024)
            dist, local = _kd_query(tree, cell_keys[open_cells], min(k, free.size), _ROUGH)
            candidates = free[local]
    return chosen


def _floor_first(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int, min_uses: int, k: int) -> np.ndarray:
    """Some assignment with every tile used ``min_uses`` to ``max_uses`` times.

    Each tile first claims ``min_uses`` distinct cells, nearest first (the roles of
    :func:`_greedy_feasible` swapped: a tile's uses are the claimants, cells hold one
    each); the cells left then claim tiles with uses left.
    """
    n_cells, n_tiles = len(cell_keys), len(tile_keys)
    chosen = np.full(n_cells, -1, np.int64)
    slots = np.repeat(np.arange(n_tiles), min_uses)
    slot_keys = tile_keys[slots]
    nearest = _kd_query(KDTree(cell_keys), slot_keys, min(k, n_cells), _ROUGH)
    chosen[_greedy_feasible(slot_keys, cell_keys, 1, nearest)] = slots
    rest = np.flatnonzero(chosen < 0)
    if rest.size:
        nearest = _kd_query(KDTree(tile_keys), cell_keys[rest], min(k, n_tiles), _ROUGH)
        chosen[rest] = _greedy_feasible(cell_keys[rest], tile_keys, max_uses - min_uses, nearest)
    return chosen


def greedy_assignment(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int, k: int = 32) -> np.ndarray:
    """A quick assignment within ``max_uses``: cells claim their nearest tiles by key with uses left, nearest first.

    The start of :func:`assign_capacitated`, and the baseline it is measured against.
    """
    nearest = _kd_query(KDTree(np.ascontiguousarray(tile_keys, dtype=np.float32)), cell_keys, min(k, len(tile_keys)))
    return _greedy_feasible(cell_keys, tile_keys, max_uses, nearest)


def assign_capacitated(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int, cost: PairCost | None = None, *,
                       min_uses: int = 0, mirror_keys: np.ndarray | None = None, neighbours: int = 32, gap: float = 0.0,
                       max_rounds: int = 100, time_budget: float | None = None,
                       client: Client | None = None, log: Callable[[str], None] | None = None) -> CapacitatedAssignment:
    """Assign every cell a tile, no tile more than ``max_uses`` times, at least total cost.

    Parameters
    ----------
    cell_keys, tile_keys : ndarray, shape (n_cells, d) and (n_tiles, d)
        Points the KD-trees index (mean CIELAB colour, or :func:`grid_keys`).
    max_uses : int
        Uses allowed per tile; ``n_tiles * max_uses >= n_cells``.
    cost : callable, optional
        ``cost(cells, tiles)`` of index pairs, never less than the Euclidean distance
        of their keys. Default: that distance.
    min_uses : int
        Every tile is used at least this often; ``n_tiles * min_uses <= n_cells``.
    mirror_keys : ndarray, shape (n_tiles, d), optional
        The keys of the tiles mirrored, where a tile may be used either way round; ``cost``
        is then the lesser of the two ways, never less than the nearer of the two keys.
    neighbours : int
        Tiles per cell in the first graph, and first depth of every search.
    gap : float
        Stop as soon as the total cost is proven within ``1 + gap`` of the optimum.
        A round that gains less than 0.02 % also ends the search.
    max_rounds, time_budget : optional
        Keep the best matching so far after this many rounds, or when another round,
        taking a quarter longer than the last, would end past this many seconds.
    client : distributed.Client, optional
        Search the price groups as Dask tasks (see :mod:`pipeline.matching._pricing`).
    log : callable, optional
        Receives one line per round.

    Returns
    -------
    CapacitatedAssignment
        ``lower_bound`` equals the total cost when the matching is proven optimal.
    """
    start = time.perf_counter()
    cell_keys = np.ascontiguousarray(cell_keys, dtype=np.float32)
    tile_keys = np.ascontiguousarray(tile_keys, dtype=np.float32)
    n_cells, n_tiles = len(cell_keys), len(tile_keys)
    if n_tiles * max_uses < n_cells:
        raise ValueError(f"{n_cells} cells need more than {n_tiles} tiles x {max_uses} uses")
    if n_tiles * min_uses > n_cells or min_uses > max_uses:
        raise ValueError(f"{n_tiles} tiles used {min_uses} to {max_uses} times cannot fill exactly {n_cells} cells")
    cost = cost or euclidean_cost(cell_keys, tile_keys)
    pricing_data = PricingData(cell_keys, tile_keys, cost, client, mirror_keys)
    graph = _Graph(n_tiles)
    kk = max(4, min(neighbours, n_tiles, _FIRST_EDGES // n_cells))
    nearest = _kd_query(KDTree(tile_keys), cell_keys, kk, _ROUGH)
    graph.add(np.repeat(np.arange(n_cells), kk), nearest[1].ravel(), cost)
    feasible = (_floor_first(cell_keys, tile_keys, max_uses, min_uses, kk) if min_uses
                else _greedy_feasible(cell_keys, tile_keys, max_uses, nearest))
    graph.add(np.arange(n_cells), feasible, cost)
    cells, tiles = _transport_candidates(cell_keys, tile_keys, max_uses, kk)
    graph.add(cells, tiles, cost)
    lower_bound, rounds, deep, previous = -np.inf, 0, False, np.inf
    while True:
        rounds += 1
        round_start = time.perf_counter()
        chosen = _solve_on_graph(graph, n_cells, max_uses, min_uses)
        uses = np.bincount(chosen, minlength=n_tiles)
        full = uses >= max_uses
        prices = _tile_prices(graph, chosen, full, uses <= min_uses)
        own = cost(np.arange(n_cells), chosen)
        total = float(own.sum())
        # Searches stay shallow while they find violations; only a round that finds none
        # searches deep enough to prove (or disprove) optimality.
        pricing = _price_out(pricing_data, prices, own + prices[chosen], kk, kk,
                             max_k=_DEEP_K if deep else kk, eps=0.0 if deep else _ROUGH)
        # The Lagrangian bound: a positive price is charged on max_uses uses, a negative one on min_uses.
        lower_bound = max(lower_bound, float(pricing.best.sum() - max_uses * np.maximum(prices, 0).sum()
                                             + min_uses * np.maximum(-prices, 0).sum()))
        # Edges far from tight only slow the next solve; the matched edges (reduced cost 0) stay.
        reduced = graph.costs + prices[graph.tiles] - (own + prices[chosen])[graph.cells]
        reduced[graph.tiles == chosen[graph.cells]] = -np.inf
        graph.keep_best(reduced, 4 * kk)
        added = graph.add(pricing.cells, pricing.tiles, cost)
        if log:
            log(f"round {rounds}: cost {total:.1f}, bound {lower_bound:.1f}, +{added} edges "
                f"({graph.codes.size} in all), {time.perf_counter() - start:.1f}s")
        if added == 0 and pricing.certified:
            return CapacitatedAssignment(chosen, own, max(lower_bound, total - _TOLERANCE * n_cells), rounds)
        # Another round takes about as long as this one, or a little longer as the graph grows
        # (at 200,000 x 13,000,000 a sixth round ended 2.7 s before the budget): it starts only
        # if it should end in time with a quarter to spare.
        now = time.perf_counter()
        out_of_time = time_budget is not None and now + 1.25 * (now - round_start) - start > time_budget
        stalled = previous - total < _STALL * total
        previous = total
        if total <= (1 + gap) * lower_bound or stalled or rounds >= max_rounds or out_of_time or (added == 0 and deep):
            return CapacitatedAssignment(chosen, own, lower_bound, rounds)
        deep = added == 0

