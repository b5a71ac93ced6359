"""Quick feasible assignments within a cap (and a floor) of uses: the capped assignment's start and baseline."""
from __future__ import annotations

import numpy as np
from pykdtree.kdtree import KDTree

from ._transport import _ROUGH, _kd_query

_ROUND_CANDIDATES = 1 << 25  # (cells left x depth) a greedy round may search: 0.8 GB of candidates

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
    deep each time (up to 1,024). A round whose search would hold more than
    :data:`_ROUND_CANDIDATES` candidates does not run: the cells left are given
    tiles with uses left by lightness instead (:func:`_fill_by_lightness`).
    """
    n_tiles = len(tile_keys)
    uses = np.zeros(n_tiles, np.int64)
    dist, candidates = nearest
    chosen = _claim(candidates, np.argsort(dist[:, 0], kind="stable"), uses, max_uses)
    open_cells = np.flatnonzero(chosen < 0)
    k = candidates.shape[1]
    while open_cells.size:
        free = np.flatnonzero(uses < max_uses)
        # The cells left compete for the same crowded colours: a fixed depth took 71 rounds
        # at 100,000 cells x 1,000,000 tiles, doubling it 8.
        k = min(2 * k, 1024, free.size)
        if open_cells.size * k > _ROUND_CANDIDATES:
            chosen[open_cells] = _fill_by_lightness(cell_keys[open_cells, 0], tile_keys[free, 0], free,
                                                    max_uses - uses[free])
            break
        tree = KDTree(np.ascontiguousarray(tile_keys[free], dtype=np.float32))
        dist, local = _kd_query(tree, cell_keys[open_cells], k, _ROUGH)
        chosen[open_cells] = _claim(free[local], np.argsort(dist[:, 0], kind="stable"), uses, max_uses)
        open_cells = open_cells[chosen[open_cells] < 0]
    return chosen


def _fill_by_lightness(cell_lightness: np.ndarray, tile_lightness: np.ndarray, tiles: np.ndarray,
                       uses_left: np.ndarray) -> np.ndarray:
    """Each cell a use of ``tiles`` (``uses_left`` of each), uses nearest in lightness, none twice.

    Both sides in lightness order, each cell takes the first use at or after its own
    lightness not already taken, pushed back from the end where too few are left.
    Only feasible, not good: the auction and the price-out find the cells better tiles.
    """
    slots = np.repeat(tiles, uses_left)
    slot_lightness = np.repeat(tile_lightness, uses_left)
    by_slot = np.argsort(slot_lightness, kind="stable")
    by_cell = np.argsort(cell_lightness, kind="stable")
    n, m = by_cell.size, by_slot.size
    ranks = np.arange(n)
    target = np.searchsorted(slot_lightness[by_slot], cell_lightness[by_cell])
    position = np.minimum(np.maximum.accumulate(target - ranks) + ranks, m - n + ranks)
    chosen = np.empty(n, np.int64)
    chosen[by_cell] = slots[by_slot[position]]
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
