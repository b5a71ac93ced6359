"""Capacitated assignment of cells to tiles: every cell one tile, no tile used more than its max_uses times, least total cost.

The problem is a transportation problem far too large for a dense cost matrix
(2,000,000 cells x 13,000,000 tiles is 2.6e13 entries), and its optimum is not
local: when the library lacks some of the target's colours, many cells must take
distant tiles, so neither greedy matching nor exact matching on a k-nearest graph
comes close (both land 35-75 % above the optimum on real photo colours).

We solve it by **column generation on a sparse graph**, with a proven gap:

1. Start from a small graph: each cell's nearest tiles under prices taken from an
   exact transport between colour clusters of cells and tiles (a min-cost flow on a
   few hundred clusters), so the first graph already reaches across the colour space
   the way the optimum will; a greedy assignment's edges make it feasible.
2. Solve the assignment on the graph by auction with epsilon-scaling
   (:mod:`._auction`), warm-started from the last round's prices and holders; its
   slot prices are the tiles' dual prices. With a floor of uses, an exact min-cost
   flow and shortest-path prices instead (:mod:`._graph`).
3. Price out: look for any cell ``i`` and tile ``j`` in the *whole library* with
   ``cost(i, j) + price(j) < u(i)``, the cell's current cost plus its tile's price.
   KD-trees answer this with a certificate, because cost is never below the
   distance of the keys the trees index: one static tree over all tiles for the
   free ones, small trees of this round's priced tiles (:mod:`._pricing`).
   Add the violating edges and go to 2.
4. Every price-out also proves a lower bound on the optimum, the Lagrangian dual
   ``sum_i min_j (cost_ij + price_j) - max_uses * sum_j price_j``; the search
   stops as soon as the cost is within the gap asked for of it. Rounds search
   only each cell's first few candidates, approximately (``_ROUGH``), which finds
   plenty to add; a round that finds nothing or gains little is followed by an
   exact search deep enough to certify the bound.
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

import numpy as np
from distributed import Client
from pykdtree.kdtree import KDTree

from ._auction import AuctionState, auction
from ._graph import CandidateGraph, graph_prices, solve_on_graph
from ._greedy import floor_first, greedy_feasible
from ._pricing import _TOLERANCE, PricingData, _Depth, _price_out
from ._scoring import PairCost, euclidean_cost
from ._transport import _ROUGH, _kd_query, _transport_candidates

__all__ = ["CapacitatedAssignment", "assign_capacitated"]

_STALL = 2e-4  # a round that gains less than this fraction of the cost is followed by a certifying search
_DEEP_K = 512  # first depth per tree of a certifying search
_DEEPEST_K = 8192  # a certifying search that finds nothing goes four times deeper, up to this
_FIRST_EDGES = 8_000_000  # edges the first graph may hold
_GAP_SHARE = 0.25  # of the gap asked for, what the auction may leave on the graph
_FINAL_SHARE = 0.25  # of a time budget, what is kept for the final, certifying search


class CapacitatedAssignment(NamedTuple):
    """The result of :func:`assign_capacitated`."""

    tiles: np.ndarray  # (n_cells,) int64
    costs: np.ndarray  # (n_cells,) float64
    lower_bound: float  # no assignment costs less in total
    rounds: int

    @property
    def gap(self) -> float:
        """How far above the optimum the total cost can be, at most, as a fraction of the bound (inf: no bound)."""
        total = float(self.costs.sum())
        return total / self.lower_bound - 1 if self.lower_bound > 0 else (0.0 if total == 0 else np.inf)


def assign_capacitated(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int, cost: PairCost | None = None, *,
                       min_uses: int = 0, mirror_keys: np.ndarray | None = None, neighbours: int = 32, gap: float = 0.0,
                       max_rounds: int = 100, time_budget: float | None = None, price_out: str = "auto",
                       client: Client | None = None, log: Callable[[str], None] | None = None) -> CapacitatedAssignment:
    """Assign every cell a tile, no tile more than ``max_uses`` times, at least total cost, within a proven gap.

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
        Stop as soon as the total cost is proven within ``1 + gap`` of the optimum
        (0: only when proven optimal, up to rounding). With a floor, the search also
        ends when the edges a certifying search found gain under 0.02 %.
    max_rounds, time_budget : optional
        Keep the best matching so far after this many rounds, or when another round,
        taking a quarter longer than the last, would end past this many seconds. Near
        the end of the budget (its last quarter), a round whose search was shallow is
        followed by a last, certifying one, which goes no deeper past the budget's end.
    price_out : {"auto", "dense", "kdtree"}
        How each round looks for edges in the whole library: ``"dense"`` costs every
        pair (the cost must be a :class:`VectorCost`; exact, so every round proves its
        bound), ``"kdtree"`` searches KD-trees of the keys, ``"auto"`` costs every pair
        of instances up to ``DENSE_PAIRS`` (:mod:`pipeline.matching._dense`) pairs.
    client : distributed.Client, optional
        Run the KD-tree price-out searches as Dask tasks (see :mod:`pipeline.matching._pricing`).
    log : callable, optional
        Receives one line per round.

    Returns
    -------
    CapacitatedAssignment
        ``lower_bound`` is proven: no assignment costs less; ``gap`` says how near.
    """
    start = time.perf_counter()
    # A certifying search past the budget stops going deeper (on the workers too: wall-clock time).
    deadline = None if time_budget is None else time.time() + time_budget
    cell_keys = np.ascontiguousarray(cell_keys, dtype=np.float32)
    tile_keys = np.ascontiguousarray(tile_keys, dtype=np.float32)
    n_cells, n_tiles = len(cell_keys), len(tile_keys)
    if n_tiles * max_uses < n_cells:
        raise ValueError(f"{n_cells} cells need more than {n_tiles} tiles x {max_uses} uses")
    if n_tiles * min_uses > n_cells or min_uses > max_uses:
        raise ValueError(f"{n_tiles} tiles used {min_uses} to {max_uses} times cannot fill exactly {n_cells} cells")
    cost = cost or euclidean_cost(cell_keys, tile_keys)
    graph = CandidateGraph(n_tiles)
    kk = max(4, min(neighbours, n_tiles, _FIRST_EDGES // n_cells))
    nearest = _kd_query(KDTree(tile_keys), cell_keys, kk, _ROUGH)
    graph.add(np.repeat(np.arange(n_cells), kk), nearest[1].ravel(), cost)
    feasible = (floor_first(cell_keys, tile_keys, max_uses, min_uses, kk) if min_uses
                else greedy_feasible(cell_keys, tile_keys, max_uses, nearest))
    graph.add(np.arange(n_cells), feasible, cost)
    cells, tiles = _transport_candidates(cell_keys, tile_keys, max_uses, kk)
    graph.add(cells, tiles, cost)
    # The auction leaves each cell within eps of its best on the graph: a share of the gap asked for, in all.
    eps = _GAP_SHARE * max(gap, 1e-7) * float(cost(np.arange(n_cells), feasible).mean())
    # Edges that gain less than twice that are the auction's own slack: adding them would only trade it around.
    tolerance = max(_TOLERANCE, 2 * eps)
    state = None if min_uses else AuctionState(n_cells, n_tiles, max_uses)
    lower_bound, rounds, depth, certify_depth, previous, certifying_before = -np.inf, 0, 0, _DEEP_K, np.inf, False
    final = False
    with PricingData(cell_keys, tile_keys, cost, client, mirror_keys, price_out) as pricing_data:
        while True:
            rounds += 1
            round_start, sent = time.perf_counter(), pricing_data.sent_bytes
            if state is not None:
                auction(graph.cells, graph.tiles, graph.costs, state, eps, warm=rounds > 1)
                chosen, prices = state.tiles, state.tile_prices()
            else:
                chosen = solve_on_graph(graph, n_cells, max_uses, min_uses)
                uses = np.bincount(chosen, minlength=n_tiles)
                prices = graph_prices(graph, chosen, uses >= max_uses, uses <= min_uses)
            own = cost(np.arange(n_cells), chosen)
            total = float(own.sum())
            solved = time.perf_counter()
            # Shallow, approximate searches while they find violations; a certifying one (exact, deep) after a
            # round that finds none or gains little.
            pricing = _price_out(pricing_data, prices, own + prices[chosen], kk,
                                 _Depth(kk, depth, 0.0, tolerance, deadline) if depth else
                                 _Depth(kk, kk, _ROUGH, tolerance))
            # The Lagrangian bound: a positive price is charged on max_uses uses, a negative one on min_uses.
            lower_bound = max(lower_bound, float(pricing.best.sum() - max_uses * np.maximum(prices, 0).sum()
                                                 + min_uses * np.maximum(-prices, 0).sum()))
            # Edges far from tight only slow the next solve; the matched edges (reduced cost 0) stay.
            reduced = graph.costs + prices[graph.tiles] - (own + prices[chosen])[graph.cells]
            reduced[graph.tiles == chosen[graph.cells]] = -np.inf
            graph.keep_best(reduced, 4 * kk)
            added = graph.add(pricing.cells, pricing.tiles, cost)
            now = time.perf_counter()
            proven = lower_bound > 0 and total <= (1 + gap) * lower_bound
            if log:
                shown = f"{100 * (total / lower_bound - 1):.3f} %" if lower_bound > 0 else "none"
                log(f"round {rounds}: cost {total:.1f}, bound {lower_bound:.1f} (gap {shown}), +{added} edges "
                    f"({graph.codes.size} in all), solve {solved - round_start:.1f} s, "
                    f"price-out {now - solved:.1f} s{' (certifying)' if depth else ''}"
                    + (f" ({(pricing_data.sent_bytes - sent) / 2**20:.1f} MiB sent)" if client is not None else "")
                    + f", {now - start:.1f} s")
            # Another round takes about as long as this one, or a little longer as the graph grows: it starts only
            # if it should end in time with a quarter to spare.
            out_of_time = time_budget is not None and now + 1.25 * (now - round_start) - start > time_budget
            exhausted = added == 0 and depth >= _DEEPEST_K
            # Shallow searches prove little: when the budget nears its end, the last round is a certifying one,
            # which stops going deeper at the deadline with every cell's bound still valid.
            finish = (time_budget is not None and not depth and not pricing.certified
                      and now + 1.25 * (now - round_start) - start > (1 - _FINAL_SHARE) * time_budget)
            if (proven or (added == 0 and pricing.certified) or exhausted or rounds >= max_rounds or final
                    or (out_of_time and not finish)):
                return CapacitatedAssignment(chosen, own, lower_bound, rounds)
            if depth and not pricing.certified:  # some cells were left unsettled: the next certifying search goes deeper
                certify_depth = min(4 * certify_depth, _DEEPEST_K)
            stalled = previous - total < _STALL * total
            previous = total
            if stalled and certifying_before and state is None:
                # A floor's bound stays weak on large instances (the tiles held at their floor take deep negative
                # prices the bands bound loosely): more certifying searches would not close it, so when the edges
                # one found gain little, the search ends.
                return CapacitatedAssignment(chosen, own, lower_bound, rounds)
            certifying_before = bool(depth)
            depth = certify_depth if added == 0 or stalled else 0
            if finish:
                depth, final = max(depth, certify_depth), True
