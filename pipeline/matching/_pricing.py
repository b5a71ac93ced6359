"""Price-out for the capped assignment: edges that undercut the tile prices, searched in the whole library.

Tiles at price 0 (uses to spare) are almost the whole library and the same
tiles from one round to the next, so they are searched in **one static KD-tree
over all tiles**, built once per run in each process that searches it (a worker
keeps it across rounds, :func:`_static_tree`) and queried a block of cells per
task; the priced tiles it returns are skipped, as each priced tile is searched
in its own, small tree of this round: the priced tiles banded by price, each band
a tree with the price as one more coordinate, so near *and* cheap tiles come first.
Where the priced tiles are more than :data:`_CROWDED` of the library, the cells
they crowd find few free tiles among their nearest, so the free tiles are searched
in a tree of this round's free tiles instead (built once per round and process).

Per round only the prices of the priced tiles and each cell's current cost move
to the workers; the cells, tiles and pair cost are scattered once per run.
Without a client, threads overlap one task's numpy work with another's queries.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from distributed import Client
from pykdtree.kdtree import KDTree

from ._dense import DENSE_PAIRS, DenseSweep
from ._scoring import PairCost, VectorCost
from ._transport import _kd_query

_PRICE_LEVELS = 32  # KD-trees over priced tiles, one per band of price, in a certifying search
_ROUGH_LEVELS = 2  # and in a shallow one, which only looks for edges to add
_TOLERANCE = 1e-4
_CROWDED = 0.02  # more of the library priced than this: the free tiles get a tree of their own each round
_CELL_BLOCK = 1 << 14  # cells a task searches at once: their candidates stay under ~300 MB at the deepest search

_STATIC_TREES: dict[str, KDTree] = {}  # this process's static trees, by run
_STATIC_LOCK = threading.Lock()


class _Pricing(NamedTuple):
    cells: np.ndarray  # cells and tiles of the edges that violate the prices
    tiles: np.ndarray
    best: np.ndarray  # (n_cells,) a lower bound of min over all tiles of cost + price
    certified: bool  # every cell's search covered the whole library


class _Found(NamedTuple):
    """One task's search: the violating edges it found, and a bound for each of its cells."""

    cells: np.ndarray  # the cells searched
    best: np.ndarray  # their lowest cost + price among the tiles costed (``u`` where none was lower)
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]  # violating (cells, tiles, gain)
    unsettled: np.ndarray  # positions in ``cells`` whose search stopped (at ``max_k``, or the deadline) unsettled
    beyond: np.ndarray  # for each unsettled cell, a bound on every tile its search did not return

    @property
    def certified(self) -> bool:
        """Every cell's search covered all the tiles searched."""
        return not self.unsettled.size

    def bounds(self) -> np.ndarray:
        """Each cell's lowest cost + price over the tiles searched, or a lower bound of it."""
        bounds = self.best.copy()
        bounds[self.unsettled] = np.minimum(bounds[self.unsettled], self.beyond)
        return bounds


class _Depth(NamedTuple):
    """How a search goes: ``k`` results first, four times more for cells still open, up to ``max_k``."""

    k: int
    max_k: int
    eps: float  # approximate searches: nothing left out is nearer than the last returned / (1 + eps)
    tolerance: float  # an edge must undercut a cell's cost by more than this to count
    deadline: float | None = None  # time.time() after which no search goes deeper (its bound stays valid)
    per_cell: int = 0  # only each cell's this many most violating edges are wanted (0: every one)


class _Searched(NamedTuple):
    """What a search looks in: a KD-tree over ``members`` (each ``ways`` times), at a floor of price."""

    tree: KDTree
    members: np.ndarray | None  # None: every tile
    n_members: int
    prices: np.ndarray | None  # the members' prices; None: all 0
    floor: float  # no member costs less than this
    skip: np.ndarray | None  # sorted tiles searched elsewhere


def _static_tree(run: str, tile_keys: np.ndarray, mirror_keys: np.ndarray | None) -> KDTree:
    """The KD-tree over every tile (each way round), built once per run and process."""
    with _STATIC_LOCK:
        tree = _STATIC_TREES.get(run)
        if tree is None:
            points = tile_keys if mirror_keys is None else np.vstack([tile_keys, mirror_keys])  # no copy of 13 M keys
            tree = _STATIC_TREES[run] = KDTree(np.ascontiguousarray(points, dtype=np.float32))
    return tree


def _drop_static_tree(run: str) -> None:
    with _STATIC_LOCK:
        _STATIC_TREES.pop(run, None)
        _FREE_TREES.pop(run, None)


def _search(searched: _Searched, cells: np.ndarray, queries: np.ndarray, cell_keys: np.ndarray, ways: list[np.ndarray],
            cost: PairCost, u: np.ndarray, depth: _Depth) -> _Found:
    """Edges with ``cost + price < u - tolerance`` among ``searched``'s tiles, for ``cells`` (``u`` is theirs).

    A tile neither of whose points is returned is no nearer (by key, which bounds the
    cost) than the last returned, divided by ``1 + eps``, and costs at least the floor.
    A settled cell's bound is its exact least ``cost + price`` (or ``u``, if none is lower).
    """
    best = u.copy()
    points = searched.n_members * len(ways)
    found_cells, found_tiles, found_gain = [], [], []
    k, max_k, eps, tolerance, deadline, per_cell = depth
    unsettled, unsettled_beyond = np.empty(0, np.int64), np.empty(0)
    # Each cell's lowest values so far: once the tiles not returned cannot beat its per_cell-th, it has the
    # edges the price-out keeps (and its exact least value), however many more tiles undercut it.
    lowest = np.full((cells.size, per_cell), np.inf) if per_cell else None
    costed = np.full(cells.size, -np.inf)  # a deeper search costs only the tiles past what the last one returned
    todo, kk = np.arange(cells.size), min(k, points)
    while todo.size:
        reach, local = _kd_query(searched.tree, queries[cells[todo]], kk, eps)
        local %= searched.n_members
        tiles = local if searched.members is None else searched.members[local]
        price = 0.0 if searched.prices is None else searched.prices[local]
        rows_keys = cell_keys[cells[todo], None, :]
        dist = np.min([np.linalg.norm(rows_keys - keys[tiles], axis=2) for keys in ways], axis=0)
        # Keys bound the cost: only these are costed. Those within the tolerance of u are too: they add no
        # edge, but the cell's bound must count them.
        maybe = (dist + price < u[todo, None]) & (reach >= costed[todo, None])
        if searched.skip is not None and searched.skip.size:
            at = np.minimum(np.searchsorted(searched.skip, tiles), searched.skip.size - 1)
            maybe &= searched.skip[at] != tiles
        rows, cols = np.nonzero(maybe)
        if rows.size:
            pair_tiles = tiles[rows, cols]
            value = cost(cells[todo[rows]], pair_tiles) + (0.0 if searched.prices is None
                                                            else searched.prices[local[rows, cols]])
            np.minimum.at(best, todo[rows], value)
            violating = value < u[todo[rows]] - tolerance
            found_cells.append(cells[todo[rows[violating]]])
            found_tiles.append(pair_tiles[violating])
            found_gain.append((u[todo[rows]] - value)[violating])
            if per_cell:
                values = np.full(maybe.shape, np.inf)
                values[rows, cols] = value
                merged = np.hstack([lowest[todo], values])
                lowest[todo] = np.partition(merged, per_cell - 1, axis=1)[:, :per_cell]
        costed[todo] = reach[:, -1]
        beyond = reach[:, -1] / (1 + eps) + searched.floor
        enough = u[todo]
        if per_cell:
            enough = np.minimum(enough, lowest[todo].max(axis=1))
        open_ = (beyond < enough) & (kk < points)
        if not open_.any():
            break
        if kk >= max_k or (deadline is not None and time.time() > deadline):
            unsettled, unsettled_beyond = todo[open_], beyond[open_]
            break
        todo, kk = todo[open_], min(kk * 4, max_k, points)
    edges = tuple(np.concatenate(parts) if parts else np.empty(0) for parts in (found_cells, found_tiles, found_gain))
    return _Found(cells, best, edges, unsettled, unsettled_beyond)


def _search_free(run: str, cells: np.ndarray, cell_keys: np.ndarray, tile_keys: np.ndarray,
                 mirror_keys: np.ndarray | None, cost: PairCost, priced: np.ndarray, u: np.ndarray,
                 depth: _Depth) -> _Found:
    """A block of cells searched among the tiles at price 0, all but ``priced`` (sorted).

    First in the static tree, passing over the priced tiles; where they crowd a cell's
    neighbourhood so that ``4 * k`` tiles do not settle it, an exact search goes on in
    a tree of this round's free tiles alone (built once per round and process). Where
    they are more than :data:`_CROWDED` of the library, that tree is searched from the
    start: at 20,000 x 200,000 (10 % priced) the shallow rounds passing over them
    stalled 0.84 % above the least cost any run found, where a certifying search then
    found 95,000 better edges; searching the free tiles' tree, 0.46 %.
    """
    ways = _ways(tile_keys, mirror_keys)
    if priced.size > _CROWDED * len(tile_keys):
        free = _free_tiles(run, priced, len(tile_keys), tile_keys, mirror_keys)
        return _search(free, cells, cell_keys, cell_keys, ways, cost, u, depth)
    searched = _Searched(_static_tree(run, tile_keys, mirror_keys), None, len(tile_keys), None, 0.0, priced)
    exact = depth.eps == 0 and depth.max_k > depth.k
    found = _search(searched, cells, cell_keys, cell_keys, ways, cost, u,
                    depth._replace(max_k=min(depth.max_k, 4 * depth.k)) if exact else depth)
    if not exact or found.certified:
        return found
    # The static search's bound on these cells counts priced tiles as free: the free tree's replaces it.
    free = _free_tiles(run, priced, len(tile_keys), tile_keys, mirror_keys)
    rest = _search(free, cells[found.unsettled], cell_keys, cell_keys, ways, cost, u[found.unsettled], depth)
    best = found.best.copy()
    best[found.unsettled] = np.minimum(best[found.unsettled], rest.best)
    edges = tuple(np.concatenate([a, b]) for a, b in zip(found.edges, rest.edges))
    return _Found(cells, best, edges, found.unsettled[rest.unsettled], rest.beyond)


def _ways(tile_keys: np.ndarray, mirror_keys: np.ndarray | None) -> list[np.ndarray]:
    """The tiles' keys each way round they may be used."""
    return [tile_keys] if mirror_keys is None else [tile_keys, mirror_keys]


# This process's tree of the free tiles, by run: (the priced tiles' signature, the tree).
_FREE_TREES: dict[str, tuple[int, _Searched]] = {}


def _free_tiles(run: str, priced: np.ndarray, n_tiles: int, tile_keys: np.ndarray,
                mirror_keys: np.ndarray | None) -> _Searched:
    """A tree of the tiles not ``priced``, built once per round (``priced`` tells the round) and process."""
    signature = hash(priced.tobytes())
    with _STATIC_LOCK:
        held = _FREE_TREES.get(run)
        if held is None or held[0] != signature:
            members = np.setdiff1d(np.arange(n_tiles), priced, assume_unique=True)
            points = np.vstack([keys[members] for keys in _ways(tile_keys, mirror_keys)])
            held = _FREE_TREES[run] = (signature, _Searched(KDTree(np.ascontiguousarray(points, dtype=np.float32)),
                                                            members, members.size, None, 0.0, None))
    return held[1]


def _search_band(members: np.ndarray, member_prices: np.ndarray, queries: np.ndarray, cell_keys: np.ndarray,
                 tile_keys: np.ndarray, mirror_keys: np.ndarray | None, cost: PairCost, u: np.ndarray,
                 depth: _Depth) -> list[_Found]:
    """Every cell searched in a tree of this round over one band of priced tiles, a block of cells at a time.

    One more coordinate, the price above the band's floor: tiles that are near *and*
    cheap come first, and as sqrt(d^2 + z^2) <= d + z, the k-th lifted distance plus
    the floor still bounds every tile not returned.
    """
    floor = float(member_prices.min())
    ways = _ways(tile_keys, mirror_keys)
    lifted = np.vstack([np.hstack([keys[members], (member_prices - floor)[:, None]]) for keys in ways])
    searched = _Searched(KDTree(np.ascontiguousarray(lifted, dtype=np.float32)), members, members.size, member_prices,
                         floor, None)
    return [_search(searched, cells, queries, cell_keys, ways, cost, u[cells], depth)
            for cells in np.array_split(np.arange(len(cell_keys)), max(1, -(-len(cell_keys) // _CELL_BLOCK)))]


def _price_out(data: "PricingData", prices: np.ndarray, u: np.ndarray, per_cell: int, depth: _Depth) -> _Pricing:
    """Find edges with ``cost + price < u - tolerance`` anywhere in the library, with a bound for every cell.

    Small enough, every pair is costed (:class:`DenseSweep`: exact, so certified).
    Otherwise the tiles at price 0 are searched in the static tree; the priced ones,
    dear (full) or cheap (held at a floor of uses), in bands of price.
    """
    if data.dense is not None:
        best, cells, tiles = data.dense.price_out(prices, u, depth.tolerance, per_cell)
        return _Pricing(cells, tiles, best, True)
    depth = depth._replace(per_cell=per_cell)
    priced = np.flatnonzero(prices != 0)
    bands = []
    if priced.size:
        # Narrow bands make a tight bound (a band's tiles are all charged its floor) at the price of a
        # search each: 32 of them certified 10,000 x 10,000 four times faster than 8, which a shallow
        # search, looking only for edges to add, does not need.
        n_levels = _PRICE_LEVELS if depth.eps == 0 else _ROUGH_LEVELS
        levels = np.quantile(prices[priced], np.linspace(0, 1, n_levels + 1)[1:-1])
        level_of = np.searchsorted(levels, prices[priced], side="right")
        bands = [members for b in range(n_levels) if (members := priced[level_of == b]).size]
    parts = data.search(priced, bands, prices, u, depth)
    best = u.copy()
    for part in parts:  # a part's cells are distinct
        best[part.cells] = np.minimum(best[part.cells], part.bounds())
    certified = all(part.certified for part in parts)
    cells, tiles, gain = (np.concatenate([part.edges[i] for part in parts]) for i in range(3))
    if not cells.size:
        return _Pricing(np.empty(0, np.int64), np.empty(0, np.int64), best, certified)
    # Only each cell's most violating edges: the rest mostly stop violating once prices move.
    # Searches that go deeper, or on in the free tiles' tree, may find an edge twice: once each.
    _, first = np.unique(cells.astype(np.int64) * prices.size + tiles.astype(np.int64), return_index=True)
    cells, tiles, gain = cells[first].astype(np.int64), tiles[first].astype(np.int64), gain[first]
    order = np.lexsort((-gain, cells))
    cells, tiles = cells[order], tiles[order]
    rank = np.arange(cells.size) - np.searchsorted(cells, cells)
    keep = rank < per_cell
    return _Pricing(cells[keep], tiles[keep], best, certified)


class PricingData:
    """What every price-out search needs, held here or, with a client, on the workers once per run.

    Parameters
    ----------
    cell_keys, tile_keys : ndarray
        The KD-tree keys.
    cost : callable
        The pair cost, never below the keys' distance (with ``mirror_keys``: the lesser of the two).
    client : distributed.Client, optional
        Run the searches as Dask tasks; otherwise threads in this process.
    mirror_keys : ndarray, optional
        The keys of the tiles mirrored, for tiles that may be used either way round.
    method : {"auto", "dense", "kdtree"}
        How to price out: ``"dense"`` costs every pair (:class:`DenseSweep`, exact; the
        cost must be a :class:`VectorCost`), here, as a client would only add the
        scatter; ``"kdtree"`` searches the trees; ``"auto"`` sweeps a
        :class:`VectorCost` of up to :data:`DENSE_PAIRS` pairs, and searches otherwise.

    Use it as a context manager: leaving it drops the static trees it built.
    """

    def __init__(self, cell_keys: np.ndarray, tile_keys: np.ndarray, cost: PairCost, client: Client | None = None,
                 mirror_keys: np.ndarray | None = None, method: str = "auto"):
        pairs = len(cell_keys) * len(tile_keys) * (1 if mirror_keys is None else 2)
        if method not in ("auto", "dense", "kdtree"):
            raise ValueError(f"price-out method {method!r}: use 'auto', 'dense' or 'kdtree'")
        if method == "dense" and not isinstance(cost, VectorCost):
            raise ValueError("a dense price-out needs a VectorCost")
        dense = method == "dense" or (method == "auto" and isinstance(cost, VectorCost) and pairs <= DENSE_PAIRS)
        self.dense = DenseSweep(cost) if dense else None
        self.client = None if dense else client
        self.run = uuid.uuid4().hex
        self.n_cells = len(cell_keys)
        client = self.client
        queries = np.hstack([cell_keys, np.zeros((len(cell_keys), 1), np.float32)])  # cells sit at price 0
        self._shared = (queries, cell_keys, tile_keys, mirror_keys, cost)
        if client is not None:
            # hash=False: fresh keys, as in match._scatter_tiles.
            self._shared = tuple(client.scatter(list(self._shared), broadcast=True, hash=False))
        self.sent_bytes = 0  # what the rounds sent to the workers, beyond the run's first scatter

    def __enter__(self) -> "PricingData":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.client is None:
            _drop_static_tree(self.run)
            return
        try:
            self.client.run(_drop_static_tree, self.run)
        except Exception:
            if exc_type is None:  # a failure already on its way (a lost cluster, say) is the one to report
                raise

    def search(self, priced: np.ndarray, bands: list[np.ndarray], prices: np.ndarray, u: np.ndarray,
               depth: _Depth) -> list[_Found]:
        """The free tiles' search (blocks of cells) and every band's, as tasks."""
        queries, cell_keys, tile_keys, mirror_keys, cost = self._shared
        blocks = np.array_split(np.arange(self.n_cells), max(1, -(-self.n_cells // _CELL_BLOCK)))
        band_prices = [prices[members] for members in bands]
        if self.client is None:
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                free = [pool.submit(_search_free, self.run, cells, cell_keys, tile_keys, mirror_keys, cost,
                                    priced, u[cells], depth) for cells in blocks]
                band = [pool.submit(_search_band, members, member_prices, queries, cell_keys, tile_keys, mirror_keys,
                                    cost, u, depth)
                        for members, member_prices in zip(bands, band_prices)]
                return [f.result() for f in free] + [found for f in band for found in f.result()]
        client = self.client
        priced_future, u_future = client.scatter([priced, u], broadcast=True, hash=False)
        self.sent_bytes += (priced.nbytes + u.nbytes) * len(client.scheduler_info()["workers"])
        self.sent_bytes += sum(m.nbytes + p.nbytes for m, p in zip(bands, band_prices))
        free = [client.submit(_search_free_of, self.run, cells, cell_keys, tile_keys, mirror_keys, cost,
                              priced_future, u_future, depth, pure=False) for cells in blocks]
        band = [client.submit(_search_band, members, member_prices, queries, cell_keys, tile_keys, mirror_keys, cost,
                              u_future, depth, pure=False)
                for members, member_prices in zip(client.scatter(bands, hash=False),
                                                  client.scatter(band_prices, hash=False))]
        results = client.gather(free + band)
        return results[:len(free)] + [found for part in results[len(free):] for found in part]


def _search_free_of(run, cells, cell_keys, tile_keys, mirror_keys, cost, priced, u, depth):
    """:func:`_search_free` on a worker, which holds every cell's ``u``: it takes its block's."""
    return _search_free(run, cells, cell_keys, tile_keys, mirror_keys, cost, priced, u[cells], depth)
