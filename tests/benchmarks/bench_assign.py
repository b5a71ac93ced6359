"""Benchmark: unique assignment (each tile at most once) against its optimum, greedy and ot.emd.

Instances are built from real photo features:

- **cells** are the cells of the shared corpus's target photos, described exactly as
  `mosaic make` describes them (the cache's CIELAB grid), at as many columns as it takes to
  reach the size, taken target by target;
- **tiles** are the corpus pool's tiles from a cache made by `mosaic index`. Beyond
  the pool's size, tiles are the real ones plus jittered copies: a random real tile,
  shifted as a whole by N(0, 3 dE) per Lab channel and each block by a further
  N(0, 1.5 dE), so that the library keeps the pool's gaps and crowds of colour
  instead of filling the colour space evenly.

The cost is the product's: root-mean-square CIE76 difference of the grid blocks.
Optima of the instances small enough for a dense matrix come from
``scipy.optimize.linear_sum_assignment`` and are stored with the instance, so they
are computed once (``--optimum`` runs only that; 10,000 x 50,000 takes many minutes).

    python tests/benchmarks/bench_assign.py --cache pool.h5 --targets /var/tmp/mosaic-corpus/targets \
        [--sizes 2500x5000,10000x10000,...] [--instances /var/tmp/mosaic-bench-assign]

With ``--nearest-variants 64:1,16:0,256:0`` it only compares, per size, nearest
matching's KD-tree search: how many nearest keys it scores, found how approximately.
"""
from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
import time

import numpy as np

from pipeline import TileCache, match_cells
from pipeline.matching import (assign_capacitated, best_by_cost, greedy_assignment, nearest_tiles, pair_scoring,
                               ranked_candidates)
from pipeline.target import describe_target

SIZES = ["2500x5000", "10000x10000", "10000x50000", "100000x1000000", "200000x13000000"]
DENSE_LIMIT = 10_000 * 50_000  # instances up to this many pairs get an exact optimum


def _cells(targets: list[str], n: int, grid: int) -> np.ndarray:
    per_target = -(-n // len(targets))
    cols = max(8, int(np.sqrt(per_target * 4 / 3)))
    parts, total = [], 0
    while True:
        parts, total = [], 0
        for target in targets:
            features = describe_target(target, cols, grid=grid).features.grid_lab
            parts.append(features.reshape(len(features), -1))
            total += len(features)
            if total >= n:
                return np.concatenate(parts)[:n]
        cols = int(cols * 1.2) + 1


def _tiles(pool: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    if m <= len(pool):
        return pool[np.sort(rng.choice(len(pool), m, replace=False))]
    out = np.empty((m, pool.shape[1]), np.float32)
    out[:len(pool)] = pool
    for lo in range(len(pool), m, 1 << 20):
        hi = min(m, lo + (1 << 20))
        source = pool[rng.integers(0, len(pool), hi - lo)]
        shift = np.tile(rng.normal(0, 3.0, (hi - lo, 3)), pool.shape[1] // 3)
        out[lo:hi] = source + shift + rng.normal(0, 1.5, source.shape)
    return out


def load_instance(size: str, args: argparse.Namespace) -> dict:
    path = os.path.join(args.instances, f"{size}.npz")
    if os.path.exists(path):
        with np.load(path) as saved:
            return dict(saved)
    n, m = (int(x) for x in size.split("x"))
    with TileCache.open(args.cache) as cache:
        pool, grid = cache.features().grid_lab, cache.grid
    pool = pool.reshape(len(pool), -1).astype(np.float32)
    targets = sorted(glob.glob(os.path.join(args.targets, "*.jpg")))
    instance = {"cells": _cells(targets, n, grid).astype(np.float32), "tiles": _tiles(pool, m, np.random.default_rng(n + m))}
    os.makedirs(args.instances, exist_ok=True)
    np.savez(path, **instance)
    return instance


def dense_optimum(instance: dict) -> float:
    from scipy.optimize import linear_sum_assignment

    cells, tiles = instance["cells"].astype(np.float64), instance["tiles"].astype(np.float64)
    blocks = cells.shape[1] // 3
    matrix = np.empty((len(cells), len(tiles)))
    for lo in range(0, len(cells), 256):
        part = cells[lo:lo + 256]
        sq = (part**2).sum(1)[:, None] - 2 * part @ tiles.T + (tiles**2).sum(1)[None, :]
        matrix[lo:lo + 256] = np.sqrt(np.maximum(sq, 0) / blocks)
    rows, cols = linear_sum_assignment(matrix)
    return float(matrix[rows, cols].sum())


GOAL_SECONDS = {"2500x5000": 2, "10000x10000": 10, "10000x50000": 10, "100000x1000000": 60, "200000x13000000": 600}


def _lesson_ot_emd(cells: np.ndarray, tiles: np.ndarray, cost) -> tuple[float, float]:
    """The Dask lesson's way: a dense cost matrix and ``ot.emd`` at its default iteration limit."""
    import ot

    start = time.perf_counter()
    matrix = np.empty((len(cells), len(tiles)))
    all_tiles = np.arange(len(tiles))
    for row in range(len(cells)):
        matrix[row] = cost(np.full(len(tiles), row), all_tiles)
    plan = ot.emd(np.full(len(cells), 1 / len(cells)), np.full(len(tiles), 1 / len(cells)) * len(cells) / len(tiles),
                  matrix)
    chosen = plan.argmax(axis=1)
    return float(matrix[np.arange(len(cells)), chosen].sum()), time.perf_counter() - start


def run_size(size: str, instance: dict) -> None:
    cells, tiles = instance["cells"], instance["tiles"]
    n = len(cells)
    cell_keys, tile_keys, cost = pair_scoring(cells, tiles)
    t = time.perf_counter()
    match_cells(cells, tiles)
    nearest_seconds = time.perf_counter() - t
    lower = nearest_bound(cell_keys, tile_keys, cost)
    t = time.perf_counter()
    result = assign_capacitated(cell_keys, tile_keys, 1, cost, gap=0.01, time_budget=GOAL_SECONDS.get(size))
    seconds = time.perf_counter() - t
    assert len(np.unique(result.tiles)) == n
    total = float(result.costs.sum())
    greedy = float(cost(np.arange(n), greedy_assignment(cell_keys, tile_keys, 1)).sum())
    line = (f"{size}: unique cost {total:.0f} in {seconds:.1f} s ({result.rounds} rounds, goal {GOAL_SECONDS.get(size)} s), "
            f"peak RSS {_peak_rss_gib():.2f} GiB; ")
    if "optimum" in instance:
        line += f"/ optimum {total / instance['optimum']:.4f}; "
    if result.lower_bound > lower:
        line += f"/ the search's own proven bound {total / result.lower_bound:.4f}; "
    line += (f"/ nearest (lower bound) {total / lower:.3f}; / greedy {total / greedy:.3f}; "
             f"nearest with grid re-ranking {nearest_seconds:.1f} s")
    print(line, flush=True)
    if size == "10000x10000":
        emd_cost, emd_seconds = _lesson_ot_emd(cells, tiles, cost)
        print(f"{size}: lesson's ot.emd (default numItermax) cost / optimum {emd_cost / instance['optimum']:.3f} "
              f"in {emd_seconds:.1f} s", flush=True)


def nearest_bound(cell_keys: np.ndarray, tile_keys: np.ndarray, cost) -> float:
    """A proven lower bound on any assignment's cost: every cell at its best tile, or below.

    An exact search of each cell's 64 nearest keys: the best cost among them, or the
    64th key distance if that is lower (no tile beyond it costs less).
    """
    key_distances, candidates = nearest_tiles(cell_keys, tile_keys, 64)
    best = best_by_cost(np.arange(len(cell_keys)), candidates, cost, 1)[0][:, 0]
    return float(np.minimum(best, key_distances[:, -1]).sum())


def nearest_variants(size: str, instance: dict, variants: list[tuple[int, float]]) -> None:
    """Nearest with grid re-ranking at several KD-tree search depths and approximations, side by side.

    Printed: seconds, the mean best cost against the best variant's, and the share of
    cells whose tile differs from it.
    """
    cell_keys, tile_keys, cost = pair_scoring(instance["cells"], instance["tiles"])
    runs = {}
    for search, eps in variants:
        t = time.perf_counter()
        costs, tiles = ranked_candidates(cell_keys, tile_keys, cost, 16, None, search=search, eps=eps)
        runs[search, eps] = (time.perf_counter() - t, costs[:, 0], tiles[:, 0])
    best = min(runs.values(), key=lambda run: run[1].mean())
    for (search, eps), (seconds, costs, tiles) in runs.items():
        print(f"{size}: nearest scoring {search} keys found at eps {eps}: {seconds:.1f} s; mean best cost "
              f"{costs.mean() / best[1].mean():.4f} x the best variant's; "
              f"{(tiles != best[2]).mean():.4f} of cells with another tile", flush=True)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--targets", required=True)
    parser.add_argument("--instances", default="/var/tmp/mosaic-bench-assign")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--optimum", action="store_true", help="only compute and store the exact optima")
    parser.add_argument("--nearest-variants", default=None,
                        help="only compare nearest matching's KD-tree search as depth:eps pairs, e.g. 64:1,16:0,256:0")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        instance = load_instance(size, args)
        n, m = len(instance["cells"]), len(instance["tiles"])
        if args.optimum:
            if "optimum" not in instance and n * m <= DENSE_LIMIT:
                t = time.perf_counter()
                instance["optimum"] = dense_optimum(instance)
                np.savez(os.path.join(args.instances, f"{size}.npz"), **instance)
                print(f"{size}: optimum {instance['optimum']:.1f} in {time.perf_counter() - t:.0f} s", flush=True)
            continue
        if args.nearest_variants:
            variants = [(int(depth), float(eps)) for depth, eps in (v.split(":") for v in args.nearest_variants.split(","))]
            nearest_variants(size, instance, variants)
            continue
        run_size(size, instance)


if __name__ == "__main__":
    sys.exit(main())
