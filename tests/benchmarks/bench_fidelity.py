"""Benchmark: how like the target each mosaic looks, ours against metapixel, reuse allowed and unique.

Fidelity: target and mosaic are both resized (box filter) to 4 samples per cell
edge, and the mean CIE76 difference of the samples in CIELAB is reported (lower
is better). Every tool gets the same photos, grid and tile size: the target is
first resized to ``cols * 32`` px wide and a whole number of 32 px rows, which is
how metapixel sets its grid.

Needs Debian's metapixel and a library prepared once for it:

    metapixel-prepare -r --width=32 --height=32 /var/tmp/mosaic-corpus/pool /var/tmp/mp-lib
    python tests/benchmarks/bench_fidelity.py --cache pool.h5 --targets /var/tmp/mosaic-corpus/targets \
        --metapixel-library /var/tmp/mp-lib [--cols 80]

``--cache pool.h5,pool4.h5`` compares caches (say, indexed with ``--grid 3`` and ``--grid 4``)
side by side in one run.
"""
from __future__ import annotations

import argparse
import glob
import itertools
import os
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image

from pipeline import ReuseRule, make_mosaic
from pipeline.cluster import open_cluster
from pipeline.features import srgb_to_lab

SAMPLES_PER_CELL = 4
TILE_PX = 32


def fidelity(target: Image.Image, mosaic_path: str, cols: int, rows: int) -> float:
    """Mean CIE76 difference at 4 samples per cell edge."""
    size = (cols * SAMPLES_PER_CELL, rows * SAMPLES_PER_CELL)
    with Image.open(mosaic_path) as mosaic:
        ours = np.asarray(mosaic.convert("RGB").resize(size, Image.Resampling.BOX))
    theirs = np.asarray(target.resize(size, Image.Resampling.BOX))
    return float(np.linalg.norm(srgb_to_lab(ours) - srgb_to_lab(theirs), axis=-1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True,
                        help="a tile cache, or several separated by commas to compare them (e.g. --grid 3 and 4)")
    parser.add_argument("--targets", required=True)
    parser.add_argument("--metapixel-library", required=True)
    parser.add_argument("--cols", type=int, default=80)
    args = parser.parse_args()
    caches = args.cache.split(",")
    rows_out = []
    with tempfile.TemporaryDirectory() as work, open_cluster(announce=False) as client:
        for path in sorted(glob.glob(os.path.join(args.targets, "*.jpg"))):
            name = os.path.splitext(os.path.basename(path))[0]
            with Image.open(path) as image:
                image = image.convert("RGB")
                width = args.cols * TILE_PX
                rows = max(1, round(image.height * width / image.width / TILE_PX))
                target = image.resize((width, rows * TILE_PX), Image.Resampling.LANCZOS)
            target_path = os.path.join(work, f"{name}.png")
            target.save(target_path)
            scores, seconds = {}, {}
            for search in ("local", "global"):
                out = os.path.join(work, f"{name}.metapixel-{search}.png")
                t = time.perf_counter()
                subprocess.run(["metapixel", "-l", args.metapixel_library, "-w", str(TILE_PX), "-h", str(TILE_PX),
                                "-e", search, "--metapixel", target_path, out], check=True, capture_output=True)
                seconds[f"metapixel {search}"] = time.perf_counter() - t
                scores[f"metapixel {search}"] = fidelity(target, out, args.cols, rows)
            for cache, (mode, unique) in itertools.product(caches, (("ours nearest", False), ("ours unique", True))):
                if len(caches) > 1:
                    mode += f" {os.path.basename(cache)}"
                out = os.path.join(work, f"{name}.{mode.replace(' ', '_')}.png")
                t = time.perf_counter()
                make_mosaic(target_path, cache, out, cols=args.cols, rows=rows, tile_px=TILE_PX, rule=ReuseRule.unique() if unique else ReuseRule(),
                            report=False, progress=False, client=client)
                seconds[mode] = time.perf_counter() - t
                scores[mode] = fidelity(target, out, args.cols, rows)
            rows_out.append((name, scores, seconds))
            print(name, "  ".join(f"{k}: {v:.2f} ({seconds[k]:.1f}s)" for k, v in scores.items()), flush=True)
    names = list(rows_out[0][1])
    print("\nmean CIE76 at 4 samples per cell edge (lower is better), median over targets:")
    for key in names:
        print(f"  {key:18s} {np.median([s[key] for _, s, _ in rows_out]):6.2f}   "
              f"median time {np.median([t[key] for _, _, t in rows_out]):.1f} s")
    for ours, theirs in [(ours, theirs) for ours in names for theirs in ("metapixel local", "metapixel global")
                         if ours.startswith(("ours nearest", "ours unique")[theirs.endswith("global")])]:
        gains = [1 - s[ours] / s[theirs] for _, s, _ in rows_out]
        print(f"  {ours} vs {theirs}: {100 * np.median(gains):.1f} % lower error (median), "
              f"{100 * min(gains):.1f} % at worst")


if __name__ == "__main__":
    main()
