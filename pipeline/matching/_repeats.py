"""The minimum distance between repeats: the same tile never within D cells of itself."""
from __future__ import annotations

import numpy as np
from pykdtree.kdtree import KDTree

from ._scoring import PairCost

__all__ = ["spread_repeats"]


def spread_repeats(chosen: np.ndarray, costs: np.ndarray, ranked_tiles: np.ndarray, cols: int, distance: int,
                   max_uses: int | None, cost: PairCost, cell_keys: np.ndarray, tile_keys: np.ndarray,
                   min_uses: int = 0, order: np.ndarray | None = None, boxes: np.ndarray | None = None,
                   unit: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Re-choose, cell by cell, every cell whose tile already appears within ``distance`` cells.

    Parameters
    ----------
    chosen, costs : ndarray, shape (M,)
        The assignment to repair (row-major cells) and its pair costs.
    ranked_tiles : ndarray, shape (M, k)
        Each cell's candidate tiles, best first: the first that is not too near and
        has uses left replaces a conflicting tile.
    cols : int
        Cells per grid row (of a plain grid: without ``boxes``).
    distance : int
        Two uses of one tile must be more than this many grid cells apart (Chebyshev distance,
        between the nearest points of their cells).
    max_uses : int, optional
        Uses allowed per tile.
    cost : callable
        Pair cost, for cells that need candidates beyond ``ranked_tiles``.
    cell_keys, tile_keys : ndarray
        KD-tree keys, for those deeper searches.
    min_uses : int
        Uses every tile must keep: a cell is not re-chosen if that would leave its
        tile under this (it then stays nearer its twin than ``distance``).
    order : ndarray, optional
        The order cells are visited in (default: raster order): a cell visited early
        keeps its tile, and a later one near it is re-chosen.
    boxes : ndarray, shape (M, 3), optional
        Cells of several sizes (a subdivided grid): each cell's top, left and side in units
        of the smallest cells, ``unit`` of which make a grid cell's side.

    Returns
    -------
    chosen, costs : ndarray
        Every pair of equal tiles is more than ``distance`` cells apart (but where
        ``min_uses`` kept a tile in place) and no tile is used more than ``max_uses``
        times, nor fewer than ``min_uses`` if none was before.
    """
    n_cells, n_tiles = len(chosen), len(tile_keys)
    if boxes is None:
        cells = np.arange(n_cells)
        boxes, unit = np.stack([cells // cols, cells % cols, np.ones(n_cells, np.int64)], axis=1), 1
    reach = distance * unit
    placed = np.full((int((boxes[:, 0] + boxes[:, 2]).max()), int((boxes[:, 1] + boxes[:, 2]).max())), -1, np.int64)
    boxes = boxes.tolist()
    uses = np.zeros(n_tiles, np.int64)
    allowed_uses = max_uses if max_uses is not None else n_cells
    chosen, costs = chosen.copy(), costs.astype(np.float64).copy()
    planned = np.bincount(chosen, minlength=n_tiles)  # each tile's uses at the end, if no more cells change
    tree = None
    for cell in (range(n_cells) if order is None else order.tolist()):
        top, left, side = boxes[cell]
        near = placed[max(0, top - reach):top + side + reach, max(0, left - reach):left + side + reach]
        tile = chosen[cell]
        if (uses[tile] < allowed_uses and not (near == tile).any()) or planned[tile] <= min_uses:
            placed[top:top + side, left:left + side] = tile
            uses[tile] += 1
            continue
        options = ranked_tiles[cell]
        k = len(options)
        while True:
            allowed = options[(uses[options] < allowed_uses) & ~np.isin(options, near)]
            if allowed.size:
                break
            # Every candidate is too near or used up: look further out, four times as deep each time.
            if tree is None:
                tree = KDTree(tile_keys)
            k = min(4 * k, n_tiles)
            _, found = tree.query(cell_keys[cell:cell + 1], k=k)
            found = found.reshape(-1).astype(np.int64)
            options = found[np.argsort(cost(np.full(k, cell), found), kind="stable")]
        best = allowed[0]
        chosen[cell], costs[cell] = best, cost(np.array([cell]), np.array([best]))[0]
        planned[tile] -= 1
        planned[best] += 1
        placed[top:top + side, left:left + side] = best
        uses[best] += 1
    return chosen, costs
