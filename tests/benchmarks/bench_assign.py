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
        [--sizes 2500x5000,10000x10000,...] [--instances /var/tmp/mosaic-bench-assign] \
        [--before /var/tmp/old-02f419d] [--workers 0,1,2]

Each size runs the capped assignment (``--unique``) towards its goal (a proven gap
within a time), each variant in a process of its own so that its peak RSS is its own:
this code (up to 6e8 pairs its price-out costs every pair, and the KD-tree price-out
runs beside it); with ``--before``, the code of a checkout given (e.g. ``git worktree add
/var/tmp/old-02f419d 02f419d``, the code before the auction) at the same size and
budget; the lesson's ``ot.emd`` at 10,000 x 10,000. ``--workers 1,2`` runs this code
again with its price-out on a LocalCluster of that many single-threaded workers, and
prints each round's split of solve, price-out and bytes sent.

With ``--nearest-variants 64:1,16:0,256:0`` it only compares, per size, nearest
matching's KD-tree search: how many nearest keys it scores, found how approximately.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

import pipeline

# A --one run of a checkout from before the matching package (--before) needs none of these; and there,
# an editable install of this code would answer `import pipeline.matching` with this code's.
THIS_CODE = os.path.isdir(os.path.join(os.path.dirname(pipeline.__file__), "matching"))
if THIS_CODE:
    from pipeline import TileCache
    from pipeline.matching import best_by_cost, greedy_assignment, nearest_tiles, pair_scoring, ranked_candidates
    from pipeline.target import describe_target

SIZES = ["2500x5000", "10000x10000", "10000x50000", "100000x1000000", "200000x13000000", "2000000x13000000"]
DENSE_LIMIT = 10_000 * 50_000  # instances up to this many pairs get an exact optimum, and a KD-tree price-out beside


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


# Each size's goal: a proven gap within so many seconds on the 2-core machine.
GOALS = {"2500x5000": (0.0001, 1), "10000x10000": (0.001, 5), "10000x50000": (0.001, 5),
         "100000x1000000": (0.005, 30), "200000x13000000": (0.01, 120), "2000000x13000000": (0.03, 1800)}
BUDGET_FACTOR = 3  # a variant may run this many times its goal's seconds before it keeps what it has


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


def one_variant(size: str, variant: str, workers: int, args: argparse.Namespace) -> dict:
    """One variant at one size, in this process: what :func:`run_size` prints, as a dict."""
    instance = load_instance(size, args)
    gap, goal = GOALS.get(size, (0.01, 600))
    if THIS_CODE:
        from pipeline.matching import assign_capacitated, grid_basis, grid_cost, grid_keys
    else:  # a checkout from before the matching package (02f419d)
        from pipeline._assign import assign_capacitated
        from pipeline._scoring import grid_basis, grid_cost, grid_keys
    cells, tiles = instance["cells"], instance["tiles"]
    basis = grid_basis(tiles)
    cell_keys, tile_keys, cost = grid_keys(cells, basis), grid_keys(tiles, basis), grid_cost(cells, tiles)
    if variant == "emd":
        total, seconds = _lesson_ot_emd(cells, tiles, cost)
        return {"total": total, "seconds": seconds, "peak_rss": _peak_rss_gib()}
    rounds_log: list[str] = []
    client = cluster = None
    if workers:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    start = time.perf_counter()
    options = {"price_out": "kdtree"} if variant == "kdtree" else {}
    result = assign_capacitated(cell_keys, tile_keys, 1, cost, gap=gap, time_budget=BUDGET_FACTOR * goal, client=client,
                                log=rounds_log.append, **options)
    seconds = time.perf_counter() - start
    if cluster is not None:
        client.close()
        cluster.close()
    assert len(np.unique(result.tiles)) == len(cells), "a tile used twice"
    total = float(result.costs.sum())
    return {"total": total, "seconds": seconds, "rounds": result.rounds, "peak_rss": _peak_rss_gib(),
            "bound": float(result.lower_bound), "log": rounds_log}


def _spawn(size: str, variant: str, workers: int, args: argparse.Namespace, code: str | None = None) -> dict:
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code
    command = [sys.executable, os.path.abspath(__file__), "--cache", args.cache, "--targets", args.targets,
               "--instances", args.instances, "--one", f"{size}:{variant}:{workers}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd="/" if code else None)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_size(size: str, instance: dict, args: argparse.Namespace) -> None:
    cells, tiles = instance["cells"], instance["tiles"]
    n = len(cells)
    gap, goal = GOALS.get(size, (0.01, 600))
    cell_keys, tile_keys, cost = pair_scoring(cells, tiles)
    lower = nearest_bound(cell_keys, tile_keys, cost)
    greedy = float(cost(np.arange(n), greedy_assignment(cell_keys, tile_keys, 1)).sum())
    optimum = instance.get("optimum")
    runs = [("this code", _spawn(size, "auction", 0, args))]
    if n * len(tiles) <= DENSE_LIMIT:  # this code's price-out costs every pair here: the KD-trees' beside it
        runs.append(("this code, KD-tree price-out", _spawn(size, "kdtree", 0, args)))
    if args.before and n <= 100_000:
        runs.append((f"before ({os.path.basename(args.before)})", _spawn(size, "auction", 0, args, args.before)))
    for workers in args.workers:
        runs.append((f"this code, {workers} worker{'s' if workers > 1 else ''}", _spawn(size, "auction", workers, args)))
    if size == "10000x10000":
        runs.append(("lesson's ot.emd", _spawn(size, "emd", 0, args)))
    print(f"{size}: goal a proven gap <= {100 * gap:g} % in <= {goal} s (budget {BUDGET_FACTOR * goal} s); "
          f"nearest bound {lower:.0f}, greedy {greedy:.0f}" + (f", optimum {optimum:.0f}" if optimum else ""), flush=True)
    for name, run in runs:
        if "error" in run:
            print(f"  {name}: failed: {run['error']}", flush=True)
            continue
        total = run["total"]
        proven = (f"proven gap {100 * (total / run['bound'] - 1):.3f} %" if run.get("bound", 0) > 0
                  else "no proven gap" if "bound" in run else "")
        line = (f"  {name}: {run['seconds']:.1f} s" + (f", {run['rounds']} rounds" if "rounds" in run else "")
                + f", peak RSS {run['peak_rss']:.2f} GiB; {proven}"
                + (f"; / optimum {total / optimum:.5f}" if optimum else "")
                + f"; / nearest bound {total / lower:.4f}; / greedy {total / greedy:.4f}")
        print(line, flush=True)
        if "workers" in name:
            for round_line in run["log"]:
                print(f"    {round_line}", flush=True)


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
    parser.add_argument("--before", default=None, help="a checkout of earlier code to run side by side (<= 100k cells)")
    parser.add_argument("--workers", default="", help="also run with the price-out on this many Dask workers, e.g. 1,2")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # SIZE:VARIANT:WORKERS, in a process of its own
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",") if w]
    if args.one:
        size, variant, workers = args.one.split(":")
        outcome = one_variant(size, variant, int(workers), args)
        print(json.dumps(outcome))
        return
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
        run_size(size, instance, args)


if __name__ == "__main__":
    sys.exit(main())
