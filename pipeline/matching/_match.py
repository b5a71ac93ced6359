"""Stage 2, match: choose a library tile for every target cell, honouring the reuse rule."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from distributed import Client

from ..config import config_get, or_config
from ..errors import MosaicError
from ..progress import Progress
from ._assign import assign_capacitated
from ._nearest import _require_tiles, pair_scoring, ranked_candidates
from ._repeats import spread_repeats
from ._rule import ReuseRule
from ._scoring import PairCost, VectorCost

__all__ = ["Assignment", "match_cells"]


class Assignment(NamedTuple):
    """The tile chosen for each cell (row-major), its cost (CIE76 colour distance) and whether it is mirrored.

    ``gap``: where a capped assignment chose the tiles, how far above the least possible total
    matching cost theirs can be at most, as a fraction (proven: see :func:`assign_capacitated`).
    """

    tiles: np.ndarray  # (M,) int64 tile rows in the cache
    distances: np.ndarray  # (M,) float32
    flipped: np.ndarray | None = None  # (M,) bool, with mirrored tiles allowed: the tile is used mirrored
    gap: float | None = None


def match_cells(
    cells: np.ndarray,
    tiles: np.ndarray,
    *,
    rule: ReuseRule | None = None,
    cols: int | None = None,
    client: Client | None = None,
    candidates: int = 16,
    time_budget: float | None = None,
    weights: np.ndarray | None = None,
    mirrored: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    box_unit: int = 1,
    progress: bool = False,
) -> Assignment:
    """Assign a tile to every cell, honouring the reuse rule.

    Parameters
    ----------
    cells : ndarray, shape (M, 3) or (M, 3 * blocks)
        Features of each target cell, row-major: mean CIELAB colour, or the
        flattened CIELAB grid for structure-aware scoring.
    tiles : ndarray, shape (N, same)
        The same features of each library tile.
    rule : ReuseRule, optional
        How often a tile may be used, and how near to itself (default:
        :meth:`ReuseRule.nearest`, every cell its best tile; :func:`pipeline.make_mosaic`
        applies the configured rule, :meth:`ReuseRule.from_config`).
    cols : int, optional
        Cells per grid row, for the rule's ``min_repeat_distance``.
    client : distributed.Client, optional
        Run the KD-tree queries, and a capped assignment's price-out searches, as Dask tasks.
    candidates : int
        Best-scoring tiles kept per cell (for ``min_repeat_distance``'s repairs).
    time_budget : float, optional
        Seconds the capped assignment may search: it keeps its best matching rather
        than start a round that would end later (default ``mosaic.make.time-budget``).
    weights : ndarray, shape (M,), optional
        Each cell's priority, at least 1: a capped assignment minimises the total of
        ``weight * cost``, so heavier cells get the better tiles when tiles are scarce,
        and the repeat-distance repair re-chooses lighter cells first.
    mirrored : ndarray, shape (N, same), optional
        The features of each tile mirrored left to right: a cell may then take a tile
        either way round, whichever matches better; either way is one use of it.
    boxes : ndarray, shape (M, 3), optional
        For cells of several sizes instead of a grid of ``cols``: each cell's top, left
        and side in units of the smallest cells, ``box_unit`` of which make a grid
        cell's side (:meth:`pipeline.layout.QuadCells.boxes`). A tile is one use whatever
        its size, and ``min_repeat_distance`` counts grid cells.
    progress : bool
        Report progress on stderr.

    Returns
    -------
    Assignment
        ``distances`` are the pair costs: CIE76 of the mean colours, or with grids
        the root mean square CIE76 over the blocks.

    Notes
    -----
    Without a cap every cell takes its best-scoring tile among its 64 nearest by
    key (an approximate KD-tree search, see ``SEARCH_EPS``); with mean colours
    alone, its exact nearest. With a cap (the rule's ``max_uses``), or a floor (``min_uses``)
    that the nearest choice leaves some tile under, the assignment minimises
    the total cost by column generation on a sparse graph, stopping when it is
    proven within ``mosaic.make.gap`` (1 %) of the optimum, or before a round that
    would end past ``time_budget`` (see :mod:`pipeline.matching._assign`); the
    result's ``gap`` says how near it was proven.
    ``min_repeat_distance`` then repairs, in raster order (with weights, heaviest first), any cell whose tile
    already appears too near, with its best-scoring tile that does not (a tile at its floor
    keeps its place: the floor is kept before the distance). With both, the
    repair runs first on the uncapped choice: if it leaves every tile within the cap,
    that is the answer and the capacitated assignment is skipped.
    """
    n_cells, n_tiles = len(cells), len(tiles)
    rule = ReuseRule.nearest() if rule is None else rule
    _require_tiles(n_tiles)
    rule = rule.for_grid(n_cells, n_tiles)
    rule.check_fits(n_cells, n_tiles)
    if rule.min_repeat_distance and not cols and boxes is None:
        raise MosaicError("`min_repeat_distance` needs the grid's `cols`")
    max_uses, min_repeat_distance, min_uses = rule.max_uses, rule.min_repeat_distance, rule.min_uses
    if mirrored is None:
        cell_keys, tile_keys, cost = pair_scoring(cells, tiles)
        search_keys, oriented, mirror_keys = tile_keys, cost, None
    else:
        # Tile t mirrored is candidate t + N: searched as a tile of its own, but a use of t.
        cell_keys, search_keys, oriented = pair_scoring(cells, np.concatenate([tiles, mirrored]))
        tile_keys, mirror_keys = search_keys[:n_tiles], search_keys[n_tiles:]
        cost = _either_way(oriented, n_tiles)
    order = None
    if weights is not None:
        weights = np.asarray(weights, np.float64)
        if weights.shape != (n_cells,) or not (weights >= 1).all():
            raise MosaicError(f"`weights` must be {n_cells} numbers of at least 1, one a cell")
        cost, oriented = _weighted(cost, weights), _weighted(oriented, weights)
        order = np.argsort(-weights, kind="stable")
    bar = Progress("match", n_cells, "cells", enabled=progress)
    if cells.shape[1] == 3:  # the key is the whole cost: an exact search needs no candidates beyond k
        k = 1 if not min_repeat_distance else candidates
        ranked_costs, ranked_tiles = ranked_candidates(cell_keys, search_keys, oriented, k, client, bar, search=k,
                                                       eps=0.0)
    else:
        ranked_costs, ranked_tiles = ranked_candidates(cell_keys, search_keys, oriented, candidates, client, bar)
    bar.close()
    ranked_tiles %= n_tiles  # a mirrored candidate is its tile
    chosen, costs = ranked_tiles[:, 0], ranked_costs[:, 0]
    uses = np.bincount(chosen, minlength=n_tiles)
    over_cap = max_uses is not None and uses.max() > max_uses
    under_floor = uses.min() < min_uses
    if over_cap and min_repeat_distance and not min_uses:
        # The repeat distance spreads a tile's uses by itself (at most one in every (D+1) x (D+1) block); on
        # a large grid that alone often keeps every tile under the cap, and the capacitated solve is not
        # needed: at 488,601 cells it took 84 of make's 112 s of matching, and 3 of its 3.9 GB.
        spread, spread_costs = spread_repeats(chosen, costs, ranked_tiles, cols, min_repeat_distance, None, cost,
                                              cell_keys, tile_keys, order=order, boxes=boxes, unit=box_unit)
        if np.bincount(spread, minlength=n_tiles).max() <= max_uses:
            return _assignment(spread, spread_costs, weights, None if mirrored is None else oriented, n_tiles)
    gap = None
    if over_cap or under_floor:
        result = assign_capacitated(cell_keys, tile_keys, n_cells if max_uses is None else max_uses, cost,
                                    min_uses=min_uses, mirror_keys=mirror_keys, neighbours=2 * candidates,
                                    gap=config_get("make.gap"),
                                    time_budget=or_config(time_budget, "make.time-budget"), client=client)
        chosen, costs, gap = result.tiles, result.costs, result.gap
    if min_repeat_distance:
        chosen, costs = spread_repeats(chosen, costs, ranked_tiles, cols, min_repeat_distance, max_uses, cost,
                                       cell_keys, tile_keys, min_uses, order, boxes, box_unit)
        gap = None  # the repair moved cells off the proven assignment
    return _assignment(chosen, costs, weights, None if mirrored is None else oriented, n_tiles)._replace(gap=gap)


def _weighted(cost: PairCost, weights: np.ndarray) -> PairCost:
    """``cost`` times each pair's cell weight: never below ``cost`` (weights >= 1), so the KD-tree bounds still hold."""
    if isinstance(cost, VectorCost):
        return cost.weighted(weights)

    def weighted(cells: np.ndarray, tiles: np.ndarray) -> np.ndarray:
        return weights[cells] * cost(cells, tiles)
    return weighted


def _either_way(oriented: PairCost, n_tiles: int) -> PairCost:
    """The cost of a tile used the better way round: ``oriented`` knows tile t mirrored as t + ``n_tiles``."""
    if isinstance(oriented, VectorCost):
        return oriented.either_way(n_tiles)

    def cost(cells: np.ndarray, tiles: np.ndarray) -> np.ndarray:
        return np.minimum(oriented(cells, tiles), oriented(cells, tiles + n_tiles))
    return cost


def _assignment(chosen: np.ndarray, costs: np.ndarray, weights: np.ndarray | None, oriented: PairCost | None = None,
                n_tiles: int = 0) -> Assignment:
    """The result, its costs unweighted (the colour distances themselves); with ``oriented``, each tile the better way round."""
    flipped = None
    if oriented is not None:
        cells = np.arange(len(chosen))
        straight, turned = oriented(cells, chosen), oriented(cells, chosen + n_tiles)
        flipped, costs = turned < straight, np.minimum(straight, turned)
    if weights is not None:
        costs = costs / weights
    return Assignment(chosen.astype(np.int64), costs.astype(np.float32), flipped)
