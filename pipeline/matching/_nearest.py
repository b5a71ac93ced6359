"""Nearest tiles by KD-tree: exact or approximate searches, split into Dask tasks, re-ranked by the pair cost."""
from __future__ import annotations

import math

import numpy as np
from distributed import Client, Future, as_completed
from pykdtree.kdtree import KDTree

from ..errors import MosaicError
from ..progress import Progress
from ._scoring import PairCost, euclidean_cost, grid_basis, grid_cost, grid_keys

__all__ = ["SEARCH_DEPTH", "SEARCH_EPS", "best_by_cost", "nearest_tiles", "pair_scoring", "ranked_candidates"]

# Structure-aware nearest scores each cell's 64 nearest tiles by key, found by a KD-tree
# search approximate by a factor of 2. In tests/benchmarks/bench_assign.py --nearest-variants
# that is 0.42 % above the best among 256 found exactly, in a tenth of the time, at 100,000 x
# 1,000,000, and 0.86 % in an eighth at 200,000 x 13,000,000.
SEARCH_DEPTH = 64
SEARCH_EPS = 1.0


def _require_tiles(n_tiles: int) -> None:
    if n_tiles == 0:
        raise MosaicError("the tile cache holds no tiles; run `mosaic index` on a photo library first")


def nearest_tiles(cells: np.ndarray, tiles: np.ndarray, k: int = 1, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest tiles of every cell in feature space.

    Parameters
    ----------
    cells : ndarray, shape (M, D)
    tiles : ndarray, shape (N, D)
    k : int
        Neighbours per cell; at most N.
    eps : float
        Approximate search: no tile left out is nearer than the k-th returned
        divided by ``1 + eps``. Much faster in many dimensions; 0 is exact.

    Returns
    -------
    distances, indices : ndarray, shape (M, k)
        Euclidean distances (float32) and tile indices (int64), nearest first.
    """
    _require_tiles(len(tiles))
    tiles = np.ascontiguousarray(tiles, dtype=np.float32)
    cells = np.ascontiguousarray(cells, dtype=np.float32)
    k = min(k, len(tiles))
    distances, indices = KDTree(tiles).query(cells, k=k, eps=eps)
    return distances.reshape(len(cells), k), indices.reshape(len(cells), k).astype(np.int64)


def _scatter_tiles(tiles: np.ndarray, client: Client) -> Future:
    # hash=False: a fresh key per call. With content-hashed keys, a second match over the
    # same tiles reuses the key while the first call's release of it is still in flight,
    # and the scheduler cancels the new tasks (FutureCancelledError, seen in test_match).
    [tiles_future] = client.scatter([tiles], broadcast=True, hash=False)
    return tiles_future


def _nearest_partitioned(
    cells: np.ndarray, tiles: np.ndarray, k: int, client: Client | None, bar: Progress | None = None, eps: float = 0.0,
    tiles_future: Future | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_tiles` with the cells split into Dask tasks, reporting chunks as they finish.

    ``tiles_future``, if given, is ``tiles`` already on the workers (:func:`_scatter_tiles`).
    """
    if client is None or len(cells) < 2048:
        result = nearest_tiles(cells, tiles, k, eps)
        if bar is not None:
            bar.update(len(cells))
        return result
    n_chunks = max(1, min(4 * sum(client.nthreads().values()), math.ceil(len(cells) / 2048)))
    if tiles_future is None:
        tiles_future = _scatter_tiles(tiles, client)
    # Each task builds its own KD-tree: pykdtree trees cannot be pickled.
    chunks = np.array_split(cells, n_chunks)
    # Scattered, not embedded in the task graph: at a million cells the graph would be
    # tens of MB, which distributed warns about on every run.
    futures = client.map(nearest_tiles, client.scatter(chunks, hash=False), tiles=tiles_future, k=k, eps=eps, pure=False)
    starts = np.cumsum([0] + [len(chunk) for chunk in chunks])
    order = {future.key: i for i, future in enumerate(futures)}
    shape = (len(cells), min(k, len(tiles)))  # what nearest_tiles returns: float32 distances, int64 rows
    distances, indices = np.empty(shape, np.float32), np.empty(shape, np.int64)
    for future, (part_distances, part_indices) in as_completed(futures, with_results=True, loop=client.loop):
        i = order[future.key]
        distances[starts[i] : starts[i + 1]], indices[starts[i] : starts[i + 1]] = part_distances, part_indices
        if bar is not None:
            bar.update(len(chunks[i]))
    return distances, indices


def pair_scoring(cells: np.ndarray, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, PairCost]:
    """KD-tree keys and the pair cost: mean colour alone (3 columns) or the structure grid (3 x blocks)."""
    cells = np.ascontiguousarray(cells, dtype=np.float32)
    tiles = np.ascontiguousarray(tiles, dtype=np.float32)
    if cells.shape[1] == 3:
        return cells, tiles, euclidean_cost(cells, tiles)
    basis = grid_basis(tiles)
    return grid_keys(cells, basis), grid_keys(tiles, basis), grid_cost(cells, tiles)


def best_by_cost(cells: np.ndarray, candidates: np.ndarray, cost: PairCost, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` lowest-cost of each cell's ``candidates`` (rows), best first, as (costs, tiles)."""
    costs = cost(np.repeat(cells, candidates.shape[1]), candidates.ravel()).reshape(candidates.shape)
    order = np.argsort(costs, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(costs, order, 1), np.take_along_axis(candidates, order, 1)


def ranked_candidates(cell_keys, tile_keys, cost, k, client, bar=None, search: int = SEARCH_DEPTH,
                       eps: float = SEARCH_EPS, block_pairs: int = 1 << 23) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's ``k`` best tiles by pair cost among its ``search`` nearest by key, best first, as (costs, tiles).

    The KD-tree search is approximate by ``eps``: a tile it passes over is at most
    ``1 + eps`` times nearer by key than the last one it returns. Cells go to the
    search a block at a time, so candidates held at once stay near ``block_pairs``.
    """
    depth = min(max(k, search), len(tile_keys))
    k = min(k, depth)
    costs, tiles = np.empty((len(cell_keys), k), np.float64), np.empty((len(cell_keys), k), np.int64)
    step = max(2048, block_pairs // depth)
    tiles_future = _scatter_tiles(tile_keys, client) if client is not None and len(cell_keys) > step else None
    for lo in range(0, len(cell_keys), step):
        cells = np.arange(lo, min(lo + step, len(cell_keys)))
        _, candidates = _nearest_partitioned(cell_keys[cells], tile_keys, depth, client, bar, eps, tiles_future)
        costs[cells], tiles[cells] = best_by_cost(cells, candidates, cost, k)
    return costs, tiles
