"""Price-out for the capped assignment: edges that undercut the tile prices, searched in the whole library.

Tiles are grouped by price level, a KD-tree per group, and the groups are
independent: on a Dask client each is a task (the cells, tiles and pair cost are
scattered to the workers once per assignment, and every task builds its own tree,
as pykdtree trees cannot be pickled); without one, threads overlap one group's
numpy work with another's KD-tree queries.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from distributed import Client
from pykdtree.kdtree import KDTree

from ._scoring import PairCost
from ._transport import _kd_query

_PRICE_LEVELS = 8  # KD-trees over full tiles, one per band of price
_TOLERANCE = 1e-4


class _Pricing(NamedTuple):
    cells: np.ndarray  # cells and tiles of the edges that violate the prices
    tiles: np.ndarray
    best: np.ndarray  # (n_cells,) a lower bound of min over all tiles of cost + price
    certified: bool  # every cell's search covered the whole library


class _GroupPricing(NamedTuple):
    cells: list[np.ndarray]  # violating edges found, in pieces
    tiles: list[np.ndarray]
    gains: list[np.ndarray]
    best: np.ndarray  # each cell's lowest cost + price over the group (or a bound on it)
    certified: bool


def _price_group(members: np.ndarray, cell_keys: np.ndarray, queries: np.ndarray, tile_keys: np.ndarray,
                 cost: PairCost, mirror_keys: np.ndarray | None, prices: np.ndarray, u: np.ndarray, k: int, max_k: int,
                 eps: float) -> _GroupPricing:
    """:func:`_price_out` over one group of tiles (one KD-tree); ``queries`` are the cells' lifted keys.

    With ``mirror_keys`` (tiles that may be used mirrored, the cost the better way round) the tree
    holds every member twice, once each way: a tile neither of whose points is returned is no
    nearer either way round than the last one returned.
    """
    n_cells = len(cell_keys)
    best = u.copy()
    found_cells, found_tiles, found_gain = [], [], []
    certified = True
    floor = prices[members].min()
    # One more coordinate, the price above the group's floor: tiles that are near *and*
    # cheap come first, and as sqrt(d^2 + z^2) <= d + z, the k-th lifted distance plus
    # the floor still bounds every tile not returned.
    ways = [tile_keys] if mirror_keys is None else [tile_keys, mirror_keys]
    lifted = np.vstack([np.hstack([keys[members], (prices[members] - floor)[:, None]]) for keys in ways])
    tree = KDTree(np.ascontiguousarray(lifted, dtype=np.float32))
    points = lifted.shape[0]
    todo, kk = np.arange(n_cells), min(k, points)
    while todo.size:
        lifted_dist, local = _kd_query(tree, queries[todo], kk, eps)
        tiles = members[local % members.size]
        dist = np.min([np.linalg.norm(cell_keys[todo, None, :] - keys[tiles], axis=2) for keys in ways], axis=0)
        # Keys bound the cost from below: only pairs that might violate are costed.
        maybe = dist + prices[tiles] < u[todo, None] - _TOLERANCE
        rows, cols = np.nonzero(maybe)
        if rows.size:
            pair_cells, pair_tiles = todo[rows], tiles[rows, cols]
            value = cost(pair_cells, pair_tiles) + prices[pair_tiles]
            np.minimum.at(best, pair_cells, value)
            violating = value < u[pair_cells] - _TOLERANCE
            found_cells.append(pair_cells[violating])
            found_tiles.append(pair_tiles[violating])
            found_gain.append((u[pair_cells] - value)[violating])
        # Tiles not returned are no nearer than the k-th (divided by 1 + eps, the search's
        # slack) and cost at least this group's floor.
        beyond = lifted_dist[:, -1] / (1 + eps) + floor
        open_ = (beyond < u[todo] - _TOLERANCE) & (kk < points)
        if not open_.any():
            break
        if kk >= max_k:
            certified = False
            best[todo[open_]] = np.minimum(best[todo[open_]], beyond[open_])
            break
        todo, kk = todo[open_], min(kk * 4, max_k, points)
    return _GroupPricing(found_cells, found_tiles, found_gain, best, certified)


def _price_out(data: "PricingData", prices: np.ndarray, u: np.ndarray, k: int, per_cell: int,
               max_k: int, eps: float) -> _Pricing:
    """Find edges with ``cost + price < u`` anywhere in the library, with a bound for every cell.

    The tiles at price 0 (those with uses to spare) are one group; the priced ones,
    dear (full) or cheap (held at a floor of uses), are banded by price.
    """
    groups = [np.flatnonzero(prices == 0)]
    priced = np.flatnonzero(prices != 0)
    if priced.size:
        levels = np.quantile(prices[priced], np.linspace(0, 1, _PRICE_LEVELS + 1)[1:-1])
        level_of = np.searchsorted(levels, prices[priced], side="right")
        groups += [priced[level_of == b] for b in range(_PRICE_LEVELS)]
    groups = [members for members in groups if members.size]
    parts = data.map_groups(groups, prices, u, k, max_k, eps)
    best = np.minimum.reduce([part.best for part in parts]) if parts else u.copy()
    certified = all(part.certified for part in parts)
    found_cells = [piece for part in parts for piece in part.cells]
    found_tiles = [piece for part in parts for piece in part.tiles]
    found_gain = [piece for part in parts for piece in part.gains]
    if not found_cells:
        return _Pricing(np.empty(0, np.int64), np.empty(0, np.int64), best, certified)
    cells, tiles, gain = (np.concatenate(parts) for parts in (found_cells, found_tiles, found_gain))
    # Only each cell's most violating edges: the rest mostly stop violating once prices move.
    order = np.lexsort((-gain, cells))
    cells, tiles = cells[order], tiles[order]
    rank = np.arange(cells.size) - np.searchsorted(cells, cells)
    keep = rank < per_cell
    return _Pricing(cells[keep], tiles[keep], best, certified)


class PricingData:
    """What every price-out search needs, held here or, with a client, on the workers once.

    Parameters
    ----------
    cell_keys, tile_keys : ndarray
        The KD-tree keys.
    cost : callable
        The pair cost, never below the keys' distance (with ``mirror_keys``: the lesser of the two).
    client : distributed.Client, optional
        Run each price group as a Dask task; otherwise threads in this process.
    mirror_keys : ndarray, optional
        The keys of the tiles mirrored, for tiles that may be used either way round.
    """

    def __init__(self, cell_keys: np.ndarray, tile_keys: np.ndarray, cost: PairCost, client: Client | None = None,
                 mirror_keys: np.ndarray | None = None):
        self.client = client
        queries = np.hstack([cell_keys, np.zeros((len(cell_keys), 1), np.float32)])  # cells sit at price 0
        self._shared = (cell_keys, queries, tile_keys, cost, mirror_keys)
        if client is not None:
            # hash=False: fresh keys, as in match._scatter_tiles.
            self._shared = tuple(client.scatter(list(self._shared), broadcast=True, hash=False))

    def map_groups(self, groups: list[np.ndarray], prices: np.ndarray, u: np.ndarray, k: int, max_k: int,
                   eps: float) -> list[_GroupPricing]:
        """:func:`_price_group` over every group of tiles."""
        if self.client is None:
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                return list(pool.map(lambda members: _price_group(members, *self._shared, prices, u, k, max_k, eps),
                                     groups))
        prices_future, u_future = self.client.scatter([prices, u], broadcast=True, hash=False)
        futures = [self.client.submit(_price_group, members, *self._shared, prices_future, u_future, k, max_k, eps,
                                      pure=False) for members in self.client.scatter(groups, hash=False)]
        return self.client.gather(futures)
