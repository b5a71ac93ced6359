"""Quick feasible assignments within a cap (and a floor) of uses: the capped assignment's start and baseline."""
from __future__ import annotations

import numpy as np
from pykdtree.kdtree import KDTree

from ._transport import _ROUGH, _kd_query

__all__ = ["floor_first", "greedy_assignment", "greedy_feasible"]


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


def greedy_feasible(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int,
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


def floor_first(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int, min_uses: int, k: int) -> np.ndarray:
    """Some assignment with every tile used ``min_uses`` to ``max_uses`` times.

    Each tile first claims ``min_uses`` distinct cells, nearest first (the roles of
    :func:`greedy_feasible` swapped: a tile's uses are the claimants, cells hold one
    each); the cells left then claim tiles with uses left.
    """
    n_cells, n_tiles = len(cell_keys), len(tile_keys)
    chosen = np.full(n_cells, -1, np.int64)
    slots = np.repeat(np.arange(n_tiles), min_uses)
    slot_keys = tile_keys[slots]
    nearest = _kd_query(KDTree(cell_keys), slot_keys, min(k, n_cells), _ROUGH)
    chosen[greedy_feasible(slot_keys, cell_keys, 1, nearest)] = slots
    rest = np.flatnonzero(chosen < 0)
    if rest.size:
        nearest = _kd_query(KDTree(tile_keys), cell_keys[rest], min(k, n_tiles), _ROUGH)
        chosen[rest] = greedy_feasible(cell_keys[rest], tile_keys, max_uses - min_uses, nearest)
    return chosen


def greedy_assignment(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int, k: int = 32) -> np.ndarray:
    """A quick assignment within ``max_uses``: cells claim their nearest tiles by key with uses left, nearest first.

    The start of :func:`assign_capacitated`, and the baseline it is measured against.
    """
    nearest = _kd_query(KDTree(np.ascontiguousarray(tile_keys, dtype=np.float32)), cell_keys, min(k, len(tile_keys)))
    return greedy_feasible(cell_keys, tile_keys, max_uses, nearest)
