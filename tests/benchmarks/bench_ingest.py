"""Ingest speed against the JPEG decoder's floor, and ingest of a million files with bounded client memory.

On the same photos in one run, images per second per core of:

(a) naive: Pillow full decode, ``ImageOps.fit`` to the tile size, ``ImageStat`` mean;
(b) the pipeline's per-photo work with all features: ``index_batch`` (read once, xxh3
    hash, decode, orient, sRGB, crop, thumbnail, mean/dominant/grid CIELAB), one process;
    (b') the same with ``--crop smart`` (each photo's square chosen by its content);
    (b'') the same with ``--tile-aspect 3:2`` (96 x 64 thumbnails: decoded at 96 px at least);
(c) the decode floor: ``Image.open`` + ``draft`` + ``load``, nothing else;
(d) ``mosaic index`` through a LocalCluster of 2 single-threaded workers including the
    HDF5 writes, per core (total rate / 2). Reported twice: the rate inside
    ``index_library`` with the cluster up (mosaic's own ``open_cluster``), and the CLI's
    wall clock from process start (Python imports and cluster start-up included), with
    the client's peak RSS.

(a), (b) and (c) run in one process on the same photos, in slices: each slice runs
(c), (b), (a) back to back, and the printed rate is the median over slices, so that a
noisy neighbour hurts all three alike. d/b comes from rounds of (b) over every photo
then (d) over the library, back to back: the median of the per-round ratios. Files
are read once beforehand (warm page cache). (b) runs with glibc's default malloc
settings; the workers with mosaic's (``pipeline.cluster.WORKER_MALLOC``).

    python tests/benchmarks/bench_ingest.py --library /var/tmp/mosaic-corpus/pool [--tile-size 64]
    python tests/benchmarks/bench_ingest.py --million /var/tmp/mosaic-million

``--million DIR`` makes 1,000,000 small distinct JPEGs in 1,000 nested folders under DIR
once (kept for the next run), then runs ``mosaic index`` over them and prints the
throughput and the client's peak RSS (goal: under 2 GB).

``--heic DIR``, ``--raw DIR``, ``--video DIR`` make (once, from ``--library``'s photos; see
``_media.py``) a library of phone HEICs, camera DNGs, or an hour of 720p H.264 film at 25
fps, and compare, round by round, the decoder alone (pillow-heif, rawpy, PyAV decoding
every frame; one process) with ``mosaic index`` through a LocalCluster of 2 single-threaded
workers, per core: photos, or decoded video frames, per second (goal >= 0.85 of the
floor). Then ``mosaic index`` from the command line over the same files: wall time and the
client's peak RSS (for the video library: the hour's run).

    python tests/benchmarks/bench_ingest.py --library /var/tmp/mosaic-corpus/pool --video /var/tmp/media/video
"""
from __future__ import annotations

import os

# LibRaw (rawpy) runs OpenMP threads; the floor and (b) are one core's work, as each worker's is (the nanny sets
# the same). Set before anything loads libgomp.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageStat

from pipeline import index_library
from pipeline.cluster import open_cluster
from pipeline.config import config_get
from pipeline.features import TileAspect
from pipeline.ingest import FileEntry, VideoSegment, index_batch, scan_library
from pipeline.photo import PHOTO_EXTENSIONS

from _media import decode_floor, make_heic, make_raw, make_videos, media_files

MOSAIC = [sys.executable, "-m", "pipeline"]


def naive(path: str, size: int) -> None:
    with Image.open(path) as image:
        fitted = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (size, size))
        ImageStat.Stat(fitted).mean


def floor(path: str, size: int) -> None:
    with Image.open(path) as image:
        image.draft("RGB", (size, size))
        image.load()


def rate(function, items, *args) -> float:
    start = time.perf_counter()
    function(items, *args)
    return len(items) / (time.perf_counter() - start)


def each(function):
    def run(files, size):
        for entry in files:
            function(entry.path, size)
    return run


def pipeline_batches(files, size, crop="centre"):
    for i in range(0, len(files), 256):
        index_batch(files[i : i + 256], size, config_get("index.grid"), crop=crop)


def pipeline_batches_smart(files, size):
    pipeline_batches(files, size, crop="smart")


def pipeline_batches_three_two(files, size):
    pipeline_batches(files, TileAspect(3, 2).tile_shape(size))


def photo_files(library: str) -> list:
    files = [f for f in scan_library(library) if os.path.splitext(f.path)[1].lower() in PHOTO_EXTENSIONS]
    for entry in files:  # warm the page cache: every variant reads from memory
        Path(entry.path).read_bytes()
    return files


def single_process(files: list, size: int, slices: int) -> dict[str, float]:
    rates = {"a": [], "b": [], "b'": [], "b''": [], "c": []}
    step = -(-len(files) // slices)
    for k in range(slices):
        part = files[k * step : (k + 1) * step]
        rates["c"].append(rate(each(floor), part, size))
        rates["b"].append(rate(pipeline_batches, part, size))
        rates["b'"].append(rate(pipeline_batches_smart, part, size))
        rates["b''"].append(rate(pipeline_batches_three_two, part, size))
        rates["a"].append(rate(each(naive), part, size))
    print(f"{len(files)} files in {slices} slices; per-slice rates (images/s, one core):")
    for name, values in rates.items():
        print(f"  ({name}) " + " ".join(f"{v:.0f}" for v in values))
    return {name: statistics.median(values) for name, values in rates.items()}


def interleaved_with_cluster(library: str, files: list, size: int, folder: str, rounds: int) -> tuple[list, list]:
    """(b) over every file in this process, then (d) over the library through the cluster, ``rounds`` times.

    This machine's speed drifts by 10-20 % over minutes; measuring (b) and (d) back to
    back in each round and taking the median of the per-round ratios keeps that drift
    out of d/b. The cluster is mosaic's own LocalCluster (``open_cluster``), started once.
    """
    b_rates, d_rates = [], []
    with open_cluster(workers=2, threads=1, dashboard_address=":0", announce=False) as client:
        for round_ in range(rounds):
            b_rates.append(rate(pipeline_batches, files, size))
            start = time.perf_counter()
            summary = index_library(library, os.path.join(folder, f"round{round_}.h5"), tile_size=size, client=client,
                                    progress=False)
            seconds = time.perf_counter() - start
            d_rates.append((summary.added + summary.aliases + sum(summary.failures.values())) / seconds / 2)
            print(f"  round {round_}: (b) {b_rates[-1]:.0f}, (d) {d_rates[-1]:.0f} images/s/core, "
                  f"d/b {d_rates[-1] / b_rates[-1]:.2f}", flush=True)
    return b_rates, d_rates


def run_cli_measured(command: list[str]) -> tuple[float, int]:
    """Wall seconds of ``command`` and its own (client) peak RSS, read from /proc as it runs."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak = max(peak, int(re.search(r"VmHWM:\s*(\d+)", status)[1]) * 1024)
        except (OSError, TypeError):
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{err}")
    print("  " + out.strip())
    return wall, peak


def media_batches(kind: str, files: list[Path], size: int, frames: str) -> None:
    """(b) for media: ``index_batch`` in this process, photos in batches of 256, each video whole."""
    entries = [FileEntry(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    if kind == "video":
        for entry in entries:
            index_batch([VideoSegment(entry, 0, 1)], size, config_get("index.grid"), frames=frames)
    else:
        pipeline_batches(entries, size)


def media_mode(kind: str, folder: Path, args) -> None:
    """Rounds of the decoder alone, the pipeline in this process and ``mosaic index`` through the cluster; then the CLI."""
    if not args.library:
        sys.exit("--heic, --raw and --video make their files from --library's photos")
    {"heic": make_heic, "raw": make_raw, "video": make_videos}[kind](args.library, folder)
    files = media_files(folder)
    frames = ["--frames", args.frames] if kind == "video" else []
    unit = "frames" if kind == "video" else "photos"
    print(f"{kind}: {len(files)} files, {sum(f.stat().st_size for f in files) / 2**20:.0f} MiB, {args.tile_size} px tiles; "
          f"{args.rounds} rounds of the decoder alone (c), index_batch in this process (b) and mosaic index through "
          f"2 workers x 1 thread (d), {unit} decoded per s per core:", flush=True)
    rates: dict[str, list[float]] = {"c": [], "b": [], "d": []}
    with open_cluster(workers=2, threads=1, dashboard_address=":0", announce=False) as client, \
            tempfile.TemporaryDirectory(dir="/var/tmp") as scratch:
        for round_ in range(args.rounds):
            seconds, items = decode_floor(kind, files, args.tile_size)
            rates["c"].append(items / seconds)
            start = time.perf_counter()
            media_batches(kind, files, args.tile_size, args.frames)
            rates["b"].append(items / (time.perf_counter() - start))
            start = time.perf_counter()
            summary = index_library(folder, os.path.join(scratch, f"r{round_}.h5"), tile_size=args.tile_size, client=client,
                                    progress=False, frames=args.frames if kind == "video" else None)
            rates["d"].append(items / (time.perf_counter() - start) / 2)
            print(f"  round {round_}: (c) {rates['c'][-1]:.0f} (b) {rates['b'][-1]:.0f} (d) {rates['d'][-1]:.0f}; "
                  f"b/c {rates['b'][-1] / rates['c'][-1]:.2f}, d/c {rates['d'][-1] / rates['c'][-1]:.2f}; {summary}", flush=True)
        wall, peak = run_cli_measured([*MOSAIC, "index", str(folder), "--cache", os.path.join(scratch, "cli.h5"), "--quiet",
                                       "--workers", "2", "--threads", "1", "--tile-size", str(args.tile_size),
                                       "--dashboard-address", ":0", *frames])
    ratio = {name: statistics.median(r / c for r, c in zip(rates[name], rates["c"])) for name in ("b", "d")}
    print(f"{kind} ({unit}/s/core, medians): (c) decoder alone {statistics.median(rates['c']):.0f}; "
          f"(b) index_batch {statistics.median(rates['b']):.0f}, b/c {ratio['b']:.2f}; "
          f"(d) mosaic index {statistics.median(rates['d']):.0f}, d/c {ratio['d']:.2f} (goal >= 0.85; median of per-round "
          f"ratios). CLI: {wall:.1f} s wall from process start for {items} {unit}, client peak RSS {peak / 2**20:.0f} MiB")


def make_million(root: Path, count: int = 1_000_000, per_folder: int = 1000) -> None:
    """``count`` distinct 64x48 JPEGs, ``per_folder`` per folder, two levels deep; made once."""
    marker = root / f".complete-{count}-v2"
    if marker.exists():
        return
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    start = time.perf_counter()
    for i in range(count):
        folder = root / f"{i // (per_folder * 100):03d}" / f"{(i // per_folder) % 100:02d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        pixels = np.roll(base, i % 64, axis=1)
        # i in base 16 as five 16x16 grey blocks 16 levels apart: JPEG quantisation cannot
        # merge two of them, so every file has distinct bytes (no aliases).
        for k in range(5):
            row, col = divmod(k, 4)
            pixels[16 * row : 16 * row + 16, 16 * col : 16 * col + 16] = (i >> (4 * k) & 15) * 16 + 8
        Image.fromarray(pixels).save(folder / f"{i:07d}.jpg", quality=85)
        if i % 100_000 == 0 and i:
            print(f"  made {i} files ({time.perf_counter() - start:.0f} s)", flush=True)
    marker.touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", help="photo folder for (a)-(d), e.g. /var/tmp/mosaic-corpus/pool")
    parser.add_argument("--tile-size", type=int, default=64)
    parser.add_argument("--slices", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (b) then (d) for d/b")
    parser.add_argument("--million", metavar="DIR", help="make (once) and index 1,000,000 small JPEGs under DIR")
    for kind in ("heic", "raw", "video"):
        parser.add_argument(f"--{kind}", metavar="DIR", help=f"make (once, from --library) and index a {kind} library in DIR")
    parser.add_argument("--frames", default="every:1s", help="--frames of the video runs (default every:1s)")
    args = parser.parse_args()
    media = [(kind, getattr(args, kind)) for kind in ("heic", "raw", "video") if getattr(args, kind)]
    for kind, folder in media:
        media_mode(kind, Path(folder), args)
    if args.library and not media:
        files = photo_files(args.library)
        medians = single_process(files, args.tile_size, args.slices)
        with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
            print(f"(b) then (d) over all {len(files)} photos, {args.rounds} rounds, cluster up:")
            b_rounds, d_rounds = interleaved_with_cluster(args.library, files, args.tile_size, folder, args.rounds)
            wall, peak = run_cli_measured([*MOSAIC, "index", args.library, "--cache", os.path.join(folder, "cli.h5"), "--quiet",
                                           "--workers", "2", "--threads", "1", "--tile-size", str(args.tile_size),
                                           "--dashboard-address", ":0"])
        a, b, c = medians["a"], medians["b"], medians["c"]
        d = statistics.median(d_rounds)
        d_over_b = statistics.median(d / b for d, b in zip(d_rounds, b_rounds))
        wall_rate = len(files) / wall
        print(f"\nimages/s/core at {args.tile_size} px (medians over slices for a-c):")
        print(f"  (a) naive full decode + fit + ImageStat   {a:7.0f}   a/c {a / c:.2f}")
        print(f"  (b) pipeline per-photo, all features      {b:7.0f}   b/c {b / c:.2f}  (goal >= 0.90)")
        smart = medians["b'"]
        print(f"  (b') the same with --crop smart           {smart:7.0f}   b'/c {smart / c:.2f}  (goal >= 0.80), b'/b {smart / b:.2f}")
        three_two = medians["b''"]
        print(f"  (b'') the same with --tile-aspect 3:2     {three_two:7.0f}   b''/c {three_two / c:.2f}, b''/b {three_two / b:.2f}")
        print(f"  (c) decode floor: draft + load            {c:7.0f}")
        print(f"  (d) mosaic index, 2 workers, cluster up   {d:7.0f}   d/b {d_over_b:.2f}  (goal >= 0.85; median of per-round ratios)")
        print(f"  (d') mosaic index CLI wall, start-up incl {wall_rate / 2:7.0f}   d'/b {wall_rate / 2 / b:.2f}; "
              f"client peak RSS {peak / 2**20:.0f} MiB")
    if args.million:
        root = Path(args.million)
        print(f"making 1,000,000 JPEGs under {root} (once)", flush=True)
        make_million(root / "library")
        cache = root / "million.h5"
        if cache.exists():
            cache.unlink()
        wall, peak = run_cli_measured([*MOSAIC, "index", str(root / "library"), "--cache", str(cache), "--quiet"])
        print(f"1,000,000 files: {wall:.0f} s wall, {1e6 / wall:.0f} files/s ({1e6 / wall / os.cpu_count():.0f} per core); "
              f"client peak RSS {peak / 2**20:.0f} MiB (goal < 2048)")


if __name__ == "__main__":
    main()
