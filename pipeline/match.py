"""Stage 2, match: choose a library tile for every target cell, honouring the reuse rule."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from distributed import Client, as_completed
from pykdtree.kdtree import KDTree

from ._errors import MosaicError
from ._progress import Progress

__all__ = ["Assignment", "nearest_tiles", "match_cells"]


class Assignment(NamedTuple):
    """The tile chosen for each cell (row-major) and its CIE76 colour distance."""

    tiles: np.ndarray  # (M,) int64 tile rows in the cache
    distances: np.ndarray  # (M,) float32


def _require_tiles(n_tiles: int) -> None:
    if n_tiles == 0:
        raise MosaicError("the tile cache holds no tiles; run `mosaic index` on a photo library first")


def nearest_tiles(cells: np.ndarray, tiles: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest tiles of every cell in feature space.

    Parameters
    ----------
    cells : ndarray, shape (M, D)
    tiles : ndarray, shape (N, D)
    k : int
        Neighbours per cell; at most N.

    Returns
    -------
    distances, indices : ndarray, shape (M, k)
        Euclidean distances (float32) and tile indices (int64), nearest first.
    """
    _require_tiles(len(tiles))
    tiles = np.ascontiguousarray(tiles, dtype=np.float32)
    cells = np.ascontiguousarray(cells, dtype=np.float32)
    k = min(k, len(tiles))
    distances, indices = KDTree(tiles).query(cells, k=k)
    return distances.reshape(len(cells), k), indices.reshape(len(cells), k).astype(np.int64)


def _nearest_partitioned(
    cells: np.ndarray, tiles: np.ndarray, k: int, client: Client | None, bar: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_tiles` with the cells split into Dask tasks, reporting chunks as they finish."""
    if client is None or len(cells) < 2048:
        result = nearest_tiles(cells, tiles, k)
        if bar is not None:
            bar.update(len(cells))
        return result
    n_chunks = max(1, min(4 * sum(client.nthreads().values()), math.ceil(len(cells) / 2048)))
    [tiles_future] = client.scatter([tiles], broadcast=True)
    # Each task builds its own KD-tree: pykdtree trees cannot be pickled.
    chunks = np.array_split(cells, n_chunks)
    futures = client.map(nearest_tiles, chunks, tiles=tiles_future, k=k, pure=False)
    order = {future.key: i for i, future in enumerate(futures)}
    parts = [None] * n_chunks
    for future, part in as_completed(futures, with_results=True):
        parts[order[future.key]] = part
        if bar is not None:
            bar.update(len(chunks[order[future.key]]))
    return np.concatenate([d for d, _ in parts]), np.concatenate([i for _, i in parts])


def match_cells(
    cells: np.ndarray,
    tiles: np.ndarray,
    *,
    max_uses: int | None = None,
    client: Client | None = None,
    candidates: int = 8,
    progress: bool = False,
) -> Assignment:
    """Assign a tile to every cell by nearest mean colour, with an optional cap on reuse.

    Parameters
    ----------
    cells : ndarray, shape (M, 3)
        Mean CIELAB colour of each target cell.
    tiles : ndarray, shape (N, 3)
        Mean CIELAB colour of each library tile.
    max_uses : int, optional
        No tile is used more than this many times. ``None``: unlimited (plain nearest).
    client : distributed.Client, optional
        Run the KD-tree queries as Dask tasks.
    candidates : int
        Neighbours fetched per cell and round when ``max_uses`` is set.
    progress : bool
        Report matched cells on stderr.

    Returns
    -------
    Assignment

    Notes
    -----
    With ``max_uses``, cells claim tiles greedily, best match first: every round
    queries the tiles that still have uses left, each unassigned cell takes its
    nearest candidate with capacity, and cells left without one go to the next
    round. Every round assigns at least one cell, so it ends; it is not optimal.
    """
    n_cells, n_tiles = len(cells), len(tiles)
    _require_tiles(n_tiles)  # before the --max-uses arithmetic below divides by it
    if max_uses is None:
        bar = Progress("match", n_cells, "cells", enabled=progress)
        distances, indices = _nearest_partitioned(cells, tiles, 1, client, bar)
        bar.close()
        return Assignment(indices[:, 0], distances[:, 0])
    if max_uses < 1:
        raise MosaicError("--max-uses must be at least 1")
    if n_tiles * max_uses < n_cells:
        raise MosaicError(
            f"{n_cells} cells cannot be filled from {n_tiles} tiles used at most {max_uses} times each; "
            f"use --max-uses {math.ceil(n_cells / n_tiles)} or more, or fewer --cols"
        )
    assigned = np.full(n_cells, -1, dtype=np.int64)
    distances = np.zeros(n_cells, dtype=np.float32)
    uses_left = np.full(n_tiles, max_uses, dtype=np.int64)
    open_cells = np.arange(n_cells)
    bar = Progress("match", n_cells, "cells", enabled=progress)
    while open_cells.size:
        available = np.flatnonzero(uses_left > 0)
        dist, local = _nearest_partitioned(cells[open_cells], tiles[available], candidates, client)
        candidate_tiles = available[local]
        for i in np.argsort(dist[:, 0], kind="stable"):
            for tile, d in zip(candidate_tiles[i], dist[i]):
                if uses_left[tile] > 0:
                    uses_left[tile] -= 1
                    assigned[open_cells[i]] = tile
                    distances[open_cells[i]] = d
                    break
        still_open = open_cells[assigned[open_cells] < 0]
        bar.update(len(open_cells) - len(still_open))
        open_cells = still_open
    bar.close()
    return Assignment(assigned, distances)
