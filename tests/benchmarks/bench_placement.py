"""Benchmark: what each placement rule buys and costs, every rule against the same run without it, on real photos.

Every target of the corpus is prepared as in ``bench_fidelity.py`` (``cols`` whole
32 px cells across) and judged with scikit-image: mean CIEDE2000 (lower is better) and
SSIM of CIELAB lightness (higher is better), on target and mosaic both box-resized to
4 samples per cell edge (per edge of the smallest cell, for ``--subdivide``).

- ``use-all``: ``--use-all`` against the default rule, on a grid with a cell for every
  photo: the fidelity the floor costs, every photo used (asserted), the match time.
- ``priority``: ``--unique --priority auto`` at ``--priority-strength`` 4 against 1 (the same
  regions, not weighted): CIEDE2000 inside the regions (cells of priority >= 0.5) and outside.
- ``subdivide``: ``--subdivide 2`` against the plain grid with as nearly the same number of
  tiles as a grid allows, at the same output size.
- ``flip``: ``--flip`` against without, under the default rule and under ``--unique``.
- ``print``: for paper sizes and resolutions, the grid and tile chosen and how near the
  mosaic comes to the paper.

    mosaic index /var/tmp/mosaic-corpus/pool --cache pool.h5
    python tests/benchmarks/bench_placement.py --cache pool.h5 --targets /var/tmp/mosaic-corpus/targets [--save DIR]
"""
from __future__ import annotations

import argparse
import glob
import math
import os
import tempfile
import time

import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from bench_fidelity import TILE_PX, prepared_target
from pipeline import ReuseRule, TileCache, make_mosaic
from pipeline.cluster import open_cluster
from pipeline.features import SQUARE
from pipeline.layout import PrintSize, auto_priority, cell_levels, plan_print, printed_size
from pipeline.record import read_assignment
from pipeline.target import grid_shape

SAMPLES = 4


def prepared(path: str, cols: int, work: str) -> tuple[str, Image.Image, int]:
    """``bench_fidelity``'s prepared target (``cols`` whole 32 px cells across), saved; its path, image and rows."""
    image, rows = prepared_target(path, cols)
    out = os.path.join(work, os.path.splitext(os.path.basename(path))[0] + f".{cols}.png")
    image.save(out)
    return out, image, rows


def lab_samples(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return rgb2lab(np.asarray(image.convert("RGB").resize(size, Image.Resampling.BOX)))


def scores(target: Image.Image, mosaic: Image.Image, size: tuple[int, int]) -> tuple[float, float, np.ndarray]:
    """Mean CIEDE2000, SSIM of L, and the CIEDE2000 map, at ``size`` samples."""
    theirs, ours = lab_samples(target, size), lab_samples(mosaic, size)
    delta = deltaE_ciede2000(theirs, ours)
    return float(delta.mean()), float(structural_similarity(theirs[..., 0], ours[..., 0], data_range=100.0)), delta


def make(target_path: str, cache: str, out: str, client, **options):
    t = time.perf_counter()
    summary = make_mosaic(target_path, cache, out, tile_px=options.pop("tile_px", TILE_PX), report=False,
                          progress=False, client=client, **options)
    return summary, time.perf_counter() - t


def use_all(paths, args, work, client) -> None:
    with TileCache.open(args.cache) as cache:
        n_tiles = len(cache)
    print(f"\nuse-all: --use-all against the default rule, a cell for every one of {n_tiles} photos")
    print(f"  {'target':28s} {'cells':>6s} {'CIEDE default':>13s} {'use-all':>7s} {'ratio':>6s} {'SSIM default':>12s} "
          f"{'use-all':>7s} {'photos used':>11s} {'s default':>9s} {'s use-all':>9s}")
    ratios = []
    for path in paths:
        with Image.open(path) as image:
            width, height = image.size
        cols = next(c for c in range(10, 1000) if math.prod(grid_shape(width, height, c)) >= n_tiles)
        target_path, target, rows = prepared(path, cols, work)
        size = (cols * SAMPLES, rows * SAMPLES)
        row = []
        for label, rule in (("default", None), ("use-all", ReuseRule(None, 2, 0.01, 1))):
            out = os.path.join(work, f"use-all.{label}.png")
            summary, seconds = make(target_path, args.cache, out, client, cols=cols, rows=rows, rule=rule)
            ciede, ssim, _ = scores(target, Image.open(out), size)
            row.append((ciede, ssim, summary.distinct_tiles, seconds))
        assert row[1][2] == n_tiles, "every photo is used"
        ratios.append(row[1][0] / row[0][0])
        print(f"  {os.path.basename(path):28s} {cols * rows:6d} {row[0][0]:13.2f} {row[1][0]:7.2f} {ratios[-1]:6.3f} "
              f"{row[0][1]:12.3f} {row[1][1]:7.3f} {row[1][2]:11d} {row[0][3]:9.1f} {row[1][3]:9.1f}")
    print(f"  median CIEDE2000 ratio use-all / default: {np.median(ratios):.3f}")


def priority(paths, args, work, client) -> None:
    cols = args.priority_cols
    print(f"\npriority: --unique --priority auto, strength 4 against 1 (the same regions unweighted), {cols} columns")
    print(f"  {'target':28s} {'share':>5s} {'inside s=1':>10s} {'s=4':>6s} {'ratio':>6s} {'outside s=1':>11s} {'s=4':>6s} "
          f"{'ratio':>6s}")
    inside_ratios, outside_ratios = [], []
    for path in paths:
        target_path, target, rows = prepared(path, cols, work)
        levels = cell_levels(auto_priority(np.asarray(target)), rows, cols, SQUARE).reshape(rows, cols)
        inside = levels >= 0.5
        if not inside.any() or inside.all():
            continue
        found = []
        for strength in (1.0, 4.0):
            out = os.path.join(work, f"priority.{strength:g}.png")
            make(target_path, args.cache, out, client, cols=cols, rows=rows, rule=ReuseRule.unique(),
                 priority="auto", priority_strength=strength)
            _, _, delta = scores(target, Image.open(out), (cols * SAMPLES, rows * SAMPLES))
            per_cell = delta.reshape(rows, SAMPLES, cols, SAMPLES).mean(axis=(1, 3))
            found.append((per_cell[inside].mean(), per_cell[~inside].mean()))
            if args.save:
                Image.open(out).save(os.path.join(args.save, f"{os.path.basename(path)}.priority{strength:g}.jpg"))
        inside_ratios.append(found[1][0] / found[0][0])
        outside_ratios.append(found[1][1] / found[0][1])
        print(f"  {os.path.basename(path):28s} {inside.mean():5.2f} {found[0][0]:10.2f} {found[1][0]:6.2f} "
              f"{inside_ratios[-1]:6.3f} {found[0][1]:11.2f} {found[1][1]:6.2f} {outside_ratios[-1]:6.3f}")
    print(f"  median CIEDE2000 ratio strength 4 / 1: inside the regions {np.median(inside_ratios):.3f}, "
          f"outside {np.median(outside_ratios):.3f}")


def subdivide(paths, args, work, client) -> None:
    cols, levels = args.subdivide_cols, 2
    print(f"\nsubdivide: --subdivide {levels} at {cols} columns against the plain grid of about as many tiles, "
          "same output size, default rule")
    print(f"  {'target':28s} {'tiles sub':>9s} {'plain':>6s} {'CIEDE sub':>9s} {'plain':>6s} {'ratio':>6s} "
          f"{'SSIM sub':>8s} {'plain':>6s}")
    ciede_ratios, ssim_wins = [], 0
    for path in paths:
        target_path, target, rows = prepared(path, cols, work)
        size = (cols * SAMPLES << levels, rows * SAMPLES << levels)  # samples per smallest cell
        out = os.path.join(work, "subdivided.png")
        summary, _ = make(target_path, args.cache, out, client, cols=cols, rows=rows, subdivide=levels)
        n = sum(summary.cell_sizes.values())
        sub = scores(target, Image.open(out), size)
        plain_cols = max(cols, round(cols * math.sqrt(n / (cols * rows))))
        plain_rows = max(1, round(plain_cols * rows / cols))
        out = os.path.join(work, "plain.png")
        make(target_path, args.cache, out, client, cols=plain_cols, rows=plain_rows,
             tile_px=max(1, round(cols * TILE_PX / plain_cols)))
        plain = scores(target, Image.open(out), size)
        ciede_ratios.append(sub[0] / plain[0])
        ssim_wins += sub[1] >= plain[1]
        print(f"  {os.path.basename(path):28s} {n:9d} {plain_cols * plain_rows:6d} {sub[0]:9.2f} {plain[0]:6.2f} "
              f"{ciede_ratios[-1]:6.3f} {sub[1]:8.3f} {plain[1]:6.3f}")
        if args.save:
            Image.open(os.path.join(work, "subdivided.png")).save(os.path.join(args.save, f"{os.path.basename(path)}.sub.jpg"))
            Image.open(out).save(os.path.join(args.save, f"{os.path.basename(path)}.plain.jpg"))
    print(f"  median CIEDE2000 ratio subdivided / plain: {np.median(ciede_ratios):.3f}; "
          f"SSIM of L >= on {ssim_wins}/{len(ciede_ratios)} targets")


def flip(paths, args, work, client) -> None:
    cols = args.cols
    print(f"\nflip: --flip against without, {cols} columns")
    for label, rule in (("default rule", None), ("--unique", ReuseRule.unique())):
        ratios, mirrored = [], []
        for path in paths:
            target_path, target, rows = prepared(path, cols, work)
            found = []
            for flipped in (False, True):
                out = os.path.join(work, f"flip.{flipped}.png")
                make(target_path, args.cache, out, client, cols=cols, rows=rows, rule=rule, flip=flipped)
                found.append(scores(target, Image.open(out), (cols * SAMPLES, rows * SAMPLES))[0])
            mirrored.append(read_assignment(os.path.join(work, "flip.True.assignment.npz")).flipped.mean())
            ratios.append(found[1] / found[0])
        print(f"  {label}: CIEDE2000 ratio with / without, median {np.median(ratios):.3f} (best {min(ratios):.3f}, "
              f"worst {max(ratios):.3f}); tiles mirrored: median {np.median(mirrored):.0%}")


def print_sizes(args, work, client) -> None:
    print("\nprint: the grid and tile each paper size gets (80 columns, or 32 px tiles), and how near it comes")
    for text, dpi in (("60x40cm", 300), ("24x16in", 300), ("420x297mm", 300), ("30x20cm", 150), ("100x70cm", 200)):
        size = PrintSize.parse(text)
        width, height = size.pixels(dpi)
        for by in ({"cols": 80}, {"tile_px": 32}):
            plan = plan_print(size, dpi, SQUARE, **by)
            got_w, got_h = plan.cols * plan.tile_px, plan.rows * plan.tile_px
            print(f"  {text:>10s} at {dpi} dpi by {next(iter(by))}={next(iter(by.values()))}: {plan.cols}x{plan.rows} "
                  f"tiles of {plan.tile_px} px; prints {printed_size(got_w, got_h, dpi, size.unit)} "
                  f"({100 * (got_w / width - 1):+.1f} % across, {100 * (got_h / height - 1):+.1f} % down)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--targets", required=True)
    parser.add_argument("--rules", default="use-all,priority,subdivide,flip,print")
    parser.add_argument("--cols", type=int, default=80)
    parser.add_argument("--priority-cols", type=int, default=100)
    parser.add_argument("--subdivide-cols", type=int, default=40)
    parser.add_argument("--only", help="targets whose name contains this")
    parser.add_argument("--save", help="keep pictures here")
    args = parser.parse_args()
    paths = [p for p in sorted(glob.glob(os.path.join(args.targets, "*.jpg"))) if not args.only or args.only in p]
    rules = args.rules.split(",")
    if args.save:
        os.makedirs(args.save, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, open_cluster(announce=False) as client:
        for rule, run in (("use-all", use_all), ("priority", priority), ("subdivide", subdivide), ("flip", flip)):
            if rule in rules:
                run(paths, args, work, client)
        if "print" in rules:
            print_sizes(args, work, client)


if __name__ == "__main__":
    main()
