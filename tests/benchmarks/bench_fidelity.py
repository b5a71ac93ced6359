"""Benchmark: how like the target each mosaic looks, ours against metapixel and phomo, reuse allowed and each photo once.

Fidelity is judged with scikit-image on target and mosaic both resized (box filter)
to 4 samples per cell edge (on the shorter edge of a cell that is not square):

- **CIEDE2000**: mean ``skimage.color.deltaE_ciede2000`` of the samples (colour; lower is better);
- **SSIM of L**: ``skimage.metrics.structural_similarity`` of CIELAB lightness, data range
  100 (light-and-dark structure; higher is better);
- **CIE76**: mean Euclidean CIELAB difference (the figure earlier notes used).

Every tool gets the same photos, grid and tile size: the target is first resized to
``cols * 32`` px wide and a whole number of 32 px rows (how metapixel sets its grid).
``--tile-aspect 3:2`` (with a cache indexed at that aspect and a metapixel library prepared
at 48 x 32) runs ours and metapixel with 48 x 32 tiles instead; phomo is compared at 1:1.

- metapixel (Debian's 1.0.2): ``-e local`` at its default minimum repeat distance, and
  ``-e global`` (each photo once), from a library prepared once with
  ``metapixel-prepare -r --width=32 --height=32 POOL LIB``.
- phomo (PyPI): its own tiles (``Pool.from_files(crop_ratio=1, tile_size=(32, 32))``), its
  ``norm`` distance, and its two builds: ``build_greedy`` with ``n_appearances`` as large as
  the pool (its ``--greedy -n <large>`` reuse mode) and ``build`` with ``n_appearances=1``
  (its default exact assignment). phomo computes its full-pixel distance matrix one cell at
  a time (1-2 s a cell against 12,288 tiles here); this benchmark computes the same matrix
  as one BLAS product and checks a sample of rows against ``phomo.metrics.norm`` before
  using it. phomo runs at ``--phomo-cols`` (40), where ours and metapixel run again.
- ours: ``mosaic make`` with the default rule and with ``--unique``; ``--variant
  NAME:key=value,...`` adds runs under other ``mosaic.*`` settings (e.g.
  ``make.luminance-weight=1``), side by side in the same run.

    pip install -e ".[test,bench]" phomo; apt-get install metapixel   # in a venv of its own: phomo pins pillow<11
    mosaic index /var/tmp/mosaic-corpus/pool --cache pool.h5
    metapixel-prepare -r --width=32 --height=32 /var/tmp/mosaic-corpus/pool /var/tmp/mp-lib
    python tests/benchmarks/bench_fidelity.py --cache pool.h5 --pool /var/tmp/mosaic-corpus/pool \\
        --targets /var/tmp/mosaic-corpus/targets --metapixel-library /var/tmp/mp-lib [--save docs-out/]
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import dask.config
import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from pipeline import ReuseRule, TileCache, make_mosaic, render_mosaic
from pipeline.cluster import open_cluster
from pipeline.features import SQUARE, TileAspect

SAMPLES_PER_CELL = 4
TILE_PX = 32


@dataclass
class Score:
    ciede2000: float
    ssim_l: float
    cie76: float
    most_uses: int | None
    seconds: float


def fidelity(target: Image.Image, mosaic: Image.Image, cols: int, rows: int,
             aspect: TileAspect = SQUARE) -> tuple[float, float, float]:
    """CIEDE2000 mean, SSIM of L and CIE76 mean of target and mosaic at 4 samples per (shorter) cell edge."""
    sample_h, sample_w = aspect.tile_shape(SAMPLES_PER_CELL)
    size = (cols * sample_w, rows * sample_h)
    ours = rgb2lab(np.asarray(mosaic.convert("RGB").resize(size, Image.Resampling.BOX)))
    theirs = rgb2lab(np.asarray(target.resize(size, Image.Resampling.BOX)))
    ciede = float(deltaE_ciede2000(theirs, ours).mean())
    ssim = float(structural_similarity(theirs[..., 0], ours[..., 0], data_range=100.0))
    cie76 = float(np.linalg.norm(theirs - ours, axis=-1).mean())
    return ciede, ssim, cie76


def prepared_target(path: str, cols: int, aspect: TileAspect = SQUARE) -> tuple[Image.Image, int]:
    """The target resized to ``cols`` whole cells (32 px on their shorter side) across and whole rows down, and its rows."""
    tile_h, tile_w = aspect.tile_shape(TILE_PX)
    with Image.open(path) as image:
        image = image.convert("RGB")
        width = cols * tile_w
        rows = max(1, round(image.height * width / image.width / tile_h))
        return image.resize((width, rows * tile_h), Image.Resampling.LANCZOS), rows


def run_metapixel(library: str, target_path: str, out: str, search: str, aspect: TileAspect = SQUARE) -> None:
    tile_h, tile_w = aspect.tile_shape(TILE_PX)
    subprocess.run(["metapixel", "-l", library, "-w", str(tile_w), "-h", str(tile_h), "-e", search,
                    "--metapixel", target_path, out], check=True, capture_output=True)


class Phomo:
    """phomo's pool, loaded once, and its two builds on a target."""

    def __init__(self, pool_dir: str) -> None:
        from phomo import Pool

        # from_files, not from_dir: the folder may hold files that are not photos (a manifest), which phomo cannot skip.
        photos = sorted(p for p in glob.glob(os.path.join(pool_dir, "**", "*"), recursive=True)
                        if p.lower().endswith((".jpg", ".jpeg", ".png")))
        self.pool = Pool.from_files(photos, crop_ratio=1.0, tile_size=(TILE_PX, TILE_PX))
        self.flat = self.pool.array.reshape(len(self.pool), -1).astype(np.float32)
        self.sq = np.einsum("ij,ij->i", self.flat, self.flat, dtype=np.float64)

    def distance_matrix(self, mosaic) -> np.ndarray:
        """phomo's ``norm`` matrix for ``mosaic``'s cells, as one product; sample rows checked against phomo's own."""
        from phomo.metrics import norm

        cells = np.stack([a.reshape(-1) for a in mosaic.grid.arrays]).astype(np.float32)
        cross = cells @ self.flat.T
        sq_cells = np.einsum("ij,ij->i", cells, cells, dtype=np.float64)
        d = np.sqrt(np.maximum(sq_cells[:, None] + self.sq[None, :] - 2 * cross.astype(np.float64), 0))
        for row in np.linspace(0, len(cells) - 1, 4).astype(int):
            reference = norm(mosaic.grid.arrays[row], self.pool.array)
            assert np.allclose(d[row], reference, rtol=1e-4, atol=0.5), "fast distance matrix differs from phomo's"
        return d

    def build(self, target: Image.Image, unique: bool) -> tuple[Image.Image, int]:
        """phomo's mosaic (greedy with reuse, or exact each-once) and the most uses of one tile."""
        from phomo import Master, Mosaic

        mosaic = Mosaic(Master.from_image(target), self.pool, n_appearances=1 if unique else len(self.pool))
        d = self.distance_matrix(mosaic)
        image = mosaic.build(d) if unique else mosaic.build_greedy(d)
        most = 1 if unique else int(np.bincount(d.argmin(axis=1)).max())  # greedy without a cap = each cell's nearest
        return image, most


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:key=value,key=value`` -> (NAME, {"mosaic.key": value})."""
    name, _, settings = text.partition(":")
    values = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        values[f"mosaic.{key}"] = None if value == "null" else float(value) if "." in value else int(value)
    return name, values


def our_runs(variants: list[tuple[str, dict]]) -> list[tuple[str, dict, ReuseRule | None]]:
    runs = [("ours default", {}, None), ("ours unique", {}, ReuseRule.unique())]
    for name, settings in variants:
        runs += [(f"ours {name}", settings, None), (f"ours {name} unique", settings, ReuseRule.unique())]
    return runs


def score_target(path: str, cols: int, args, work: str, client, phomo: Phomo | None, save: str | None) -> dict[str, Score]:
    name = os.path.splitext(os.path.basename(path))[0]
    target, rows = prepared_target(path, cols, args.aspect)
    target_path = os.path.join(work, f"{name}.{cols}.png")
    target.save(target_path)
    scores: dict[str, Score] = {}

    def keep(label: str, image: Image.Image, most: int | None, seconds: float) -> None:
        scores[label] = Score(*fidelity(target, image, cols, rows, args.aspect), most, seconds)
        if save:
            image.save(os.path.join(save, f"{name}.{cols}.{label.replace(' ', '_')}.jpg"), quality=90)

    if save:
        target.save(os.path.join(save, f"{name}.{cols}.target.jpg"), quality=90)
    for search in ("local", "global") if args.peers else ():
        out = os.path.join(work, f"{name}.{cols}.metapixel-{search}.png")
        t = time.perf_counter()
        run_metapixel(args.metapixel_library, target_path, out, search, args.aspect)
        with Image.open(out) as image:
            keep(f"metapixel {search}", image.convert("RGB"), 1 if search == "global" else None, time.perf_counter() - t)
    if phomo is not None:
        for unique in (False, True):
            t = time.perf_counter()
            image, most = phomo.build(target, unique)
            keep(f"phomo {'exact' if unique else 'greedy'}", image, most, time.perf_counter() - t)
    for label, settings, rule in our_runs(args.variant):
        out = os.path.join(work, f"{name}.{cols}.{label.replace(' ', '_')}.png")
        t = time.perf_counter()
        with dask.config.set(settings):
            summary = make_mosaic(target_path, args.cache, out, cols=cols, rows=rows, tile_px=TILE_PX, rule=rule,
                                  report=False, progress=False, client=client)
        with Image.open(out) as image:
            keep(label, image.convert("RGB"), summary.most_uses, time.perf_counter() - t)
    return scores


def tile_ssim(original: np.ndarray, changed: np.ndarray, aspect: TileAspect = SQUARE) -> float:
    """Mean SSIM of CIELAB lightness, tile by tile, of a changed mosaic against the untouched one: how much of each photo is kept."""
    h, w = aspect.tile_shape(TILE_PX)
    rows, cols = original.shape[0] // h, original.shape[1] // w
    l_original, l_changed = rgb2lab(original)[..., 0], rgb2lab(changed)[..., 0]
    return float(np.mean([structural_similarity(l_original[r * h:(r + 1) * h, c * w:(c + 1) * w],
                                                l_changed[r * h:(r + 1) * h, c * w:(c + 1) * w], data_range=100.0)
                          for r in range(rows) for c in range(cols)]))


def correct_against_blend(paths: list[str], cols: int, cache: str, work: str, client, aspect: TileAspect = SQUARE) -> None:
    """At the same colour gain, how much of each tile --correct keeps against --blend (tile SSIM vs the untouched mosaic)."""
    strengths, alphas = (0.3, 0.5, 1.0), np.round(np.arange(0.0, 0.95, 0.05), 2)
    rows_out = []
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        target, rows = prepared_target(path, cols, aspect)
        target_path = os.path.join(work, f"{name}.cvb.png")
        target.save(target_path)
        plain = os.path.join(work, f"{name}.plain.png")
        summary = make_mosaic(target_path, cache, plain, cols=cols, rows=rows, tile_px=TILE_PX, correct=0.0, report=False,
                              progress=False, client=client)
        original = np.asarray(Image.open(plain).convert("RGB"))
        base = fidelity(target, Image.fromarray(original), cols, rows, aspect)[0]

        def judged(**change) -> tuple[float, float]:
            out = os.path.join(work, f"{name}.changed.png")
            render_mosaic(summary.assignment_npz, cache, out, tile_px=TILE_PX, progress=False, client=client, **change)
            changed = np.asarray(Image.open(out).convert("RGB"))
            return (base - fidelity(target, Image.fromarray(changed), cols, rows, aspect)[0],
                    tile_ssim(original, changed, aspect))

        blends = [judged(blend=float(a), correct=0.0) for a in alphas]
        for strength in strengths:
            gain, kept = judged(correct=strength)
            # The blend with the same CIEDE2000 gain, interpolated between the alphas tried.
            gains, ssims = np.array([g for g, _ in blends]), np.array([k for _, k in blends])
            kept_by_blend = _at_gain(gain, gains, ssims)
            rows_out.append((name, strength, gain, kept, kept_by_blend))
            print(f"{name}: --correct {strength}: CIEDE2000 gain {gain:.2f}, tile SSIM kept {kept:.3f}; "
                  f"--blend at the same gain keeps {_kept(kept_by_blend)}", flush=True)
    print("\n--correct against --blend at the same CIEDE2000 gain: median over targets")
    for strength in strengths:
        mine = [r for r in rows_out if r[1] == strength]
        blend_kept = [r[4] for r in mine if not np.isnan(r[4])]
        print(f"  --correct {strength}: gain {np.median([r[2] for r in mine]):.2f}, tile SSIM {np.median([r[3] for r in mine]):.3f}; "
              f"--blend {_kept(np.median(blend_kept)) if blend_kept else _kept(float('nan'))} "
              f"(on {len(blend_kept)} of {len(mine)} targets a blend up to {alphas[-1]} gains as much)")


def _at_gain(gain: float, gains: np.ndarray, ssims: np.ndarray) -> float:
    """The tile SSIM of the weakest blend that gains ``gain``, interpolated from the one before it; NaN if none does.

    Blend's gain need not grow with alpha (flat cells lose the target's structure inside
    a cell), so this is the first alpha that reaches the gain, not an interpolation over all.
    """
    reached = np.flatnonzero(gains >= gain)
    if not len(reached):
        return float("nan")
    k = int(reached[0])
    if k == 0:
        return float(ssims[0])
    t = (gain - gains[k - 1]) / (gains[k] - gains[k - 1])
    return float(ssims[k - 1] + t * (ssims[k] - ssims[k - 1]))


def _kept(ssim: float) -> str:
    return f"{ssim:.3f}" if not np.isnan(ssim) else "- (no blend tried gains as much)"


def print_table(title: str, results: dict[str, dict[str, Score]]) -> None:
    labels = list(next(iter(results.values())))
    print(f"\n{title}: median over {len(results)} targets")
    print(f"  {'mosaic':30s} {'CIEDE2000':>9s} {'SSIM L':>7s} {'CIE76':>6s} {'most uses':>9s} {'seconds':>7s}")
    for label in labels:
        column = [r[label] for r in results.values()]
        most = [s.most_uses for s in column if s.most_uses is not None]
        print(f"  {label:30s} {np.median([s.ciede2000 for s in column]):9.2f} {np.median([s.ssim_l for s in column]):7.3f} "
              f"{np.median([s.cie76 for s in column]):6.2f} {max(most) if most else '-':>9} "
              f"{np.median([s.seconds for s in column]):7.1f}")
    for ours in (label for label in labels if label.startswith("ours")):
        unique = ours.endswith("unique")
        for peer in (label for label in labels if not label.startswith("ours")):
            if peer.endswith(("global", "exact")) != unique:
                continue
            ssim_wins = sum(r[ours].ssim_l >= r[peer].ssim_l for r in results.values())
            ciede_ratio = [r[ours].ciede2000 / r[peer].ciede2000 for r in results.values()]
            print(f"  {ours} vs {peer}: SSIM >= on {ssim_wins}/{len(results)} targets; "
                  f"CIEDE2000 ratio median {np.median(ciede_ratio):.3f}, worst {max(ciede_ratio):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--targets", required=True)
    parser.add_argument("--metapixel-library", required=True)
    parser.add_argument("--pool", help="the photos the cache was indexed from, for phomo (omit to leave phomo out)")
    parser.add_argument("--cols", type=int, default=80)
    parser.add_argument("--phomo-cols", type=int, default=40)
    parser.add_argument("--only", help="targets whose name contains this")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        help="NAME:key=value,...: also run ours under these mosaic.* settings")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                        help="run metapixel (and phomo, with --pool); --no-peers: ours and its variants alone, for tuning")
    parser.add_argument("--correct-vs-blend", action="store_true",
                        help="instead: at the same CIEDE2000 gain, the tile SSIM kept by --correct and by --blend")
    parser.add_argument("--save", help="keep every picture here (for docs/)")
    parser.add_argument("--tile-aspect", dest="aspect", type=TileAspect.parse, default=SQUARE,
                        help="W:H: tiles of this shape for ours (the cache's own) and metapixel (its library's)")
    args = parser.parse_args()
    with TileCache.open(args.cache) as cache:
        if cache.tile_aspect != args.aspect:
            parser.error(f"{args.cache} has tiles of aspect {cache.tile_aspect}, not {args.aspect}: give --tile-aspect")
    if args.pool and args.aspect != SQUARE:
        parser.error("phomo is compared with square tiles only: drop --pool")
    if shutil.which("metapixel") is None:
        parser.error("metapixel is not installed: apt-get install metapixel")
    if args.save:
        os.makedirs(args.save, exist_ok=True)
    paths = [p for p in sorted(glob.glob(os.path.join(args.targets, "*.jpg"))) if not args.only or args.only in p]
    if args.correct_vs_blend:
        with tempfile.TemporaryDirectory() as work, open_cluster(announce=False) as client:
            correct_against_blend(paths, args.cols, args.cache, work, client, args.aspect)
        return
    phomo = Phomo(args.pool) if args.pool else None
    tables: dict[int, dict[str, dict[str, Score]]] = {args.cols: {}, **({args.phomo_cols: {}} if phomo else {})}
    with tempfile.TemporaryDirectory() as work, open_cluster(announce=False) as client:
        for path in paths:
            name = os.path.splitext(os.path.basename(path))[0]
            for cols, table in tables.items():
                table[name] = score_target(path, cols, args, work, client, phomo if cols == args.phomo_cols else None,
                                           args.save)
                print(f"{name} @ {cols} cols: " + "; ".join(
                    f"{k} {s.ciede2000:.2f}/{s.ssim_l:.3f}/{s.most_uses or '-'}" for k, s in table[name].items()), flush=True)
    for cols, table in tables.items():
        tile_h, tile_w = args.aspect.tile_shape(TILE_PX)
        print_table(f"{cols} columns x {tile_w}x{tile_h} px (CIEDE2000 lower, SSIM of L higher is better)", table)


if __name__ == "__main__":
    main()
