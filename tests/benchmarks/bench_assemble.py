"""Streamed assembly against the encoder's own floor, at 0.1, 0.5 and 1 gigapixel, in every output format.

For each size: ``mosaic make`` writes the assignment record once (its peak RSS is
reported for the largest size, whole process tree: client plus workers); then for
each format ``mosaic render`` writes the mosaic from the record, and the same
libvips saver, with the same options, writes the same pixels from one in-memory
array (the floor), back to back, ``--rounds`` times. Printed, as medians over
the rounds: megapixels per second of the assembly (from the
record read and the cluster up to the file complete, as ``mosaic render``
reports it), of the whole command (Python and cluster start-up included) and of
the floor; the medians of each round's ratio to the floor; and the highest peak RSS of the whole
``mosaic render`` process tree. For the lossy formats, whose encoder differs from
the floor's (JPEG bands, TIFF and Deep Zoom tiles), the first round also prints
both outputs' size and mean absolute difference from the pixels (a Deep Zoom's:
all its tiles, and its full-size level), to show that like is compared with like.

    python tests/benchmarks/bench_assemble.py --cache pool.h5 \\
        --target /var/tmp/mosaic-corpus/targets/01_cat_kitten.jpg [--sizes 0.1 0.5 1] [--formats jpg png tif dzi]

The cache comes from ``mosaic index /var/tmp/mosaic-corpus/pool --cache pool.h5``
(the shared corpus: ``bash ../shared/corpus/build_corpus.sh /var/tmp/mosaic-corpus``).
Each output is deleted once measured; the largest PNG needs ~3 GB of free disk.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil
import pyvips
import simplejpeg

from pipeline.formats import format_for
from pipeline.formats.deepzoom import DZ_TILE
from pipeline.formats.jpeg import JPEG_MAX_SIDE

MOSAIC = [sys.executable, "-m", "pipeline"]
KIND = {"jpg": "jpeg", "png": "png", "tif": "tiff", "dzi": "dz"}


def run_measured(command: list[str]) -> tuple[float, int, str]:
    """Run ``command``; return wall seconds, the peak RSS summed over it and all its descendants, and its output."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{stderr}")
    return time.perf_counter() - start, peak, stdout


def size_and_error(path: str, pixels: pyvips.Image) -> tuple[float, float]:
    """An output's size in MB and its mean absolute difference (0..255, per channel) from ``pixels`` (in memory).

    For a Deep Zoom pyramid: the size of all its tiles, and the difference of its full-size level.
    """
    if path.endswith(".dzi"):
        return deep_zoom_size_and_error(path[:-4] + "_files", pixels)
    ours = pyvips.Image.new_from_file(path, access="sequential")
    return os.path.getsize(path) / 1e6, (ours.cast("short") - pixels.cast("short")).abs().avg()


def deep_zoom_size_and_error(files: str, reference: pyvips.Image) -> tuple[float, float]:
    size = sum(entry.stat().st_size for level in os.scandir(files) if level.is_dir() for entry in os.scandir(level))
    top_level = os.path.join(files, str(max(int(level) for level in os.listdir(files) if level.isdigit())))
    columns = -(-reference.width // DZ_TILE)
    difference = 0
    for row in range(-(-reference.height // DZ_TILE)):  # a tile row at a time, down the reference
        top = row * DZ_TILE
        expected = reference.crop(0, top, reference.width, min(DZ_TILE, reference.height - top)).numpy().astype(np.int16)
        for column in range(columns):
            with open(os.path.join(top_level, f"{column}_{row}.jpg"), "rb") as f:
                tile = simplejpeg.decode_jpeg(f.read())[int(row > 0) :, int(column > 0) :]  # without the overlap above, left
            left = column * DZ_TILE
            own = tile[: expected.shape[0], : min(DZ_TILE, reference.width - left)]
            difference += np.abs(own - expected[:, left : left + own.shape[1]]).sum()
    return size / 1e6, difference / (reference.width * reference.height * 3)


def floor_seconds(pixels: pyvips.Image, kind: str, folder: str, judge: bool = False) -> tuple[float, tuple | None]:
    """The saver alone: write the same pixels, already in memory, with the same options.

    With ``judge``, also the written file's :func:`size_and_error`.
    """
    out = os.path.join(folder, "floor")
    start = time.perf_counter()
    if kind == "dz":
        pixels.dzsave(out, **format_for(out + ".dzi").libvips_save)
    else:
        getattr(pixels, f"{kind}save")(out + "." + kind, **format_for(out + "." + kind).libvips_save)
    seconds = time.perf_counter() - start
    judged = size_and_error(out + (".dzi" if kind == "dz" else "." + kind), pixels) if judge else None
    for name in os.listdir(folder):
        if name.startswith("floor"):
            path = os.path.join(folder, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    return seconds, judged


def remove_output(path: str) -> None:
    stem = os.path.splitext(path)[0]
    for leftover in (path, stem + ".html", stem + "_files"):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover)
        elif os.path.exists(leftover):
            os.unlink(leftover)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--tile-px", type=int, default=32)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.5, 1.0], help="gigapixels")
    parser.add_argument("--formats", nargs="+", default=["jpg", "png", "tif", "dzi"], choices=list(KIND))
    parser.add_argument("--rounds", type=int, default=3, help="render and floor back to back this many times; medians")
    parser.add_argument("--workdir", default=None, help="where outputs go (default: a temporary folder)")
    args = parser.parse_args()
    pyvips.cache_set_max(0)
    work = tempfile.mkdtemp(prefix="bench-assemble-", dir=args.workdir)
    print(f"cpus {os.cpu_count()}; tile {args.tile_px} px; cache {args.cache}; outputs in {work}")
    print(f"{'size':>8} {'format':>6} {'assembly MP/s':>13} {'command MP/s':>12} {'floor MP/s':>10} "
          f"{'ratios':>11} {'render peak RSS':>15}")
    try:
        for gigapixels in args.sizes:
            cols = round(math.sqrt(gigapixels * 1e9) / args.tile_px)
            megapixels = (cols * args.tile_px) ** 2 / 1e6
            stem = os.path.join(work, f"m{cols}")
            reference = stem + ".png"
            seconds, peak, _ = run_measured([*MOSAIC, "make", args.target, "--cache", args.cache, "--cols", str(cols),
                                          "--rows", str(cols), "--tile-px", str(args.tile_px), "--out", reference,
                                          "--no-report", "--quiet"])
            print(f"{megapixels:>6.0f}MP   make (.png, match + record + render): {seconds:.1f} s, "
                  f"peak RSS {peak / 2**30:.2f} GiB (client + workers)")
            pixels = pyvips.Image.new_from_file(reference, access="sequential").copy_memory()
            for fmt in args.formats:
                if fmt == "jpg" and cols * args.tile_px > JPEG_MAX_SIDE:
                    print(f"{megapixels:>6.0f}MP {fmt:>6}  over JPEG's limit: refused, as designed")
                    continue
                out = os.path.join(work, f"render.{fmt}")
                rounds = []  # (assembly s, command s, floor s, peak RSS) back to back: the machine's speed drifts
                judged = None  # the first round's (ours, floor's) size and error, for the formats that lose pixels
                for _ in range(args.rounds):
                    seconds, peak, said = run_measured([*MOSAIC, "render", stem + ".assignment.npz", "--cache", args.cache,
                                                        "--out", out, "--tile-px", str(args.tile_px), "--quiet"])
                    ours = size_and_error(out, pixels) if judged is None and fmt != "png" else None
                    remove_output(out)
                    floor, floors = floor_seconds(pixels, KIND[fmt], work, judge=bool(ours))
                    judged = judged or ((ours, floors) if ours else None)
                    rounds.append((float(re.search(r"px in ([0-9.]+) s", said).group(1)), seconds, floor, peak))
                assembly, command, floor, _ = (statistics.median(r[i] for r in rounds) for i in range(4))
                ratios = [statistics.median(r[2] / r[i] for r in rounds) for i in (0, 1)]
                print(f"{megapixels:>6.0f}MP {fmt:>6} {megapixels / assembly:>13.1f} {megapixels / command:>12.1f} "
                      f"{megapixels / floor:>10.1f} {ratios[0]:>5.2f} {ratios[1]:>5.2f} "
                      f"{max(r[3] for r in rounds) / 2**30:>11.2f} GiB   (assembly/floor per round: "
                      f"{' '.join(f'{r[2] / r[0]:.2f}' for r in rounds)})", flush=True)
                if judged:
                    (size, error), (floor_size, floor_error) = judged
                    print(f"{'':>15} file {size:.0f} MB, mean |difference| from the pixels {error:.3f}; "
                          f"the floor's: {floor_size:.0f} MB, {floor_error:.3f}", flush=True)
            del pixels
            os.unlink(reference)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
