"""The `mosaic` command line."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Sequence

from .cluster import cluster_settings
from .config import config_get
from .demo import run_demo
from .errors import MosaicError, message_with_names
from .features import TileAspect
from .formats import registered_formats
from .info import check_cache_file, describe_cache
from .ingest import index_library
from .layout import PrintSize
from .make import make_mosaic
from .matching import ReuseRule
from .photo import RAW_EXTENSIONS
from .rendering import render_mosaic
from .video import VIDEO_EXTENSIONS, FrameSampling

__all__ = ["main"]


def _int_at_least(lowest: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Dask cluster",
        "The first given of --scheduler, --scheduler-file, DASK_SCHEDULER_ADDRESS (or dask's scheduler-address "
        "setting) is used; otherwise a LocalCluster is started on this machine.",
    )
    where = group.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="address of a running scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--scheduler-file", metavar="FILE", help="scheduler file written by `dask scheduler --scheduler-file`")
    group.add_argument("--workers", type=_positive_int, metavar="N",
                       help=f"LocalCluster worker processes (default: mosaic.cluster.workers, {config_get('cluster.workers')}: one per core)")
    group.add_argument("--threads", type=_positive_int, metavar="N",
                       help=f"threads per LocalCluster worker (default: mosaic.cluster.threads, {config_get('cluster.threads')})")
    group.add_argument("--dashboard-address", metavar="HOST:PORT",
                       help=f"LocalCluster dashboard (default: mosaic.cluster.dashboard-address, {config_get('cluster.dashboard-address')})")
    group.add_argument("--performance-report", metavar="FILE.html", help="write Dask's performance report of the run (make writes matching's here and "
                       "assembly's to FILE.assemble.html)")
    parser.add_argument("--quiet", action="store_true", help="no progress or dashboard link on stderr")


_OUT_HELP = ("; ".join(f"{' '.join(f.extensions)}: {f.description}" for f in registered_formats())
             + "; written under a temporary name and renamed when complete")

# How the command line names the library's parameters in error messages.
_FLAGS = {name: "--" + name.replace("_", "-") for name in (
    "cols", "rows", "tile_px", "max_uses", "max_share", "unique", "min_repeat_distance", "blend", "correct", "tile_size", "grid", "batch_size",
    "min_size", "max_pixels", "tile_aspect", "frames", "print_size", "dpi", "subdivide")}


def _strength(text: str) -> float:
    """--blend and --correct: 0 leaves the tiles alone, 1 goes all the way."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


_PHOTO_FORMATS = ("JPEG, PNG, GIF, WebP, TIFF, BMP, AVIF, JPEG XL, HEIF/HEIC, camera RAW ("
                  + " ".join(sorted(e.lstrip(".").upper() for e in RAW_EXTENSIONS)) + ")")


def _frames(text: str) -> str:
    try:
        return str(FrameSampling.parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--frames ")) from None


def _tile_aspect(text: str) -> TileAspect:
    try:
        return TileAspect.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _float_from(lowest: float, *, above: bool = False):
    """A parser of numbers of at least ``lowest`` (``above``: more than it), as :func:`_int_at_least`."""
    def parse(text: str) -> float:
        value = float(text)
        if not (value > lowest if above else value >= lowest):
            raise argparse.ArgumentTypeError(f"must be {'above' if above else 'at least'} {lowest:g}, got {value}")
        return value
    return parse


def _print_size(text: str) -> PrintSize:
    try:
        return PrintSize.parse(text)
    except MosaicError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _uses_each(text: str) -> tuple[int, int | None]:
    """--uses-each MIN:MAX, or MIN: for no cap."""
    low, colon, high = text.partition(":")
    try:
        bounds = int(low), (int(high) if high.strip() else None)
    except ValueError:
        bounds = None
    if not colon or bounds is None or bounds[0] < 0 or (bounds[1] is not None and bounds[1] < max(1, bounds[0])):
        raise argparse.ArgumentTypeError(f"is MIN:MAX uses of every tile, e.g. 1:3, or 2: for no cap, not {text!r}")
    return bounds


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value}")
    return value


def _render_options(parser: argparse.ArgumentParser) -> None:
    """The output options `make` and `render` share."""
    parser.add_argument("--out", required=True, help=_OUT_HELP)
    parser.add_argument("--tile-px", type=_positive_int,
                        help="each tile's shorter side in the output, px; tiles have the cache's aspect "
                             f"(default: mosaic.make.tile-px, {config_get('make.tile-px')})")
    parser.add_argument("--blend", type=_strength, default=0.0, metavar="A",
                        help="0..1: pull each tile toward its cell's colour by alpha overlay (default 0: tiles untouched)")
    parser.add_argument("--correct", type=_strength, metavar="S",
                        help="0..1: move each tile's colours toward its cell's, block by block, keeping its detail "
                             f"(make's default: mosaic.make.correct, {config_get('make.correct')}; render's: the record's)")
    parser.add_argument("--from-originals", action="store_true",
                        help="re-read the original photos for the tiles: sharp tiles larger than the cached thumbnails")
    parser.add_argument("--dpi", type=_float_from(0, above=True), metavar="N",
                        help="print resolution written into JPEG, PNG and TIFF outputs and stated in the report (make's "
                             f"default: mosaic.make.dpi, {config_get('make.dpi')}, with --print-size, else none; render's: "
                             "the record's)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mosaic", description="Photomosaics from photo libraries of any size, on Dask.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="make a mosaic from the bundled demo photos")
    demo.add_argument("--out-dir", default="mosaic-demo", help="where to write the mosaic (default: ./mosaic-demo)")
    _cluster_options(demo)

    index = commands.add_parser("index", help="index a photo library (photos and videos) into an HDF5 tile cache",
                                description="Index a photo library into an HDF5 tile cache. Photos: " + _PHOTO_FORMATS
                                + ". Videos (" + " ".join(sorted(VIDEO_EXTENSIONS)) + ", or any file FFmpeg reads "
                                "as one): their frames, as --frames says. Files are recognised by their bytes, "
                                "whatever their names.")
    index.add_argument("library", help="folder of photos and videos, scanned recursively")
    index.add_argument("--cache", required=True, help="HDF5 tile cache to create or update")
    index.add_argument("--tile-size", type=_positive_int,
                       help="thumbnails' shorter side in px for a new cache "
                            f"(default: mosaic.index.tile-size, {config_get('index.tile-size')})")
    index.add_argument("--tile-aspect", type=_tile_aspect, metavar="W:H",
                       help="tile shape for a new cache, e.g. 3:2, 4:3, 16:9, portrait 2:3: landscape and portrait photos "
                            "alike are cropped to it, and mosaics made from the cache have cells of that shape "
                            f"(default: mosaic.index.tile-aspect, {config_get('index.tile-aspect')})")
    index.add_argument("--grid", type=_positive_int,
                       help=f"feature grid per side for a new cache (default: mosaic.index.grid, {config_get('index.grid')})")
    index.add_argument("--crop", choices=["centre", "smart"],
                       help="where each photo's tile is cut along the side it has to spare, for a new cache: centre, or smart "
                            f"(the window holding the subject) (default: mosaic.index.crop, {config_get('index.crop')})")
    index.add_argument("--batch-size", type=_positive_int, help="files per Dask task (default: mosaic.index.batch-size, or automatic)")
    index.add_argument("--min-size", type=_positive_int, metavar="PX",
                       help="skip photos whose shorter side is below PX as too-small; longer ones, panoramas included, "
                            f"are cropped to the tile aspect (default: mosaic.index.min-size, {config_get('index.min-size')})")
    index.add_argument("--max-pixels", type=_positive_int, metavar="N",
                       help="refuse files whose decode exceeds N pixels as too-large (decompression bombs); JPEGs count their "
                            f"reduced-scale decode (default: mosaic.index.max-pixels, {config_get('index.max-pixels')})")
    index.add_argument("--frames", type=_frames, metavar="RULE",
                       help="which frames of each video become tiles, for a new cache: every:1s (one a second; every:0.5s...), "
                            "every:N (every Nth frame), scenes (one each time the picture changes) or all; consecutive "
                            "near-identical frames are skipped. A frame's source reads video.mp4#t=SECONDS "
                            f"(default: mosaic.index.frames, {config_get('index.frames')})")
    index.add_argument("--prune", action="store_true",
                       help="afterwards remove the tiles, aliases and failures of files below LIBRARY that are gone, "
                            "and tiles whose file no longer decodes (rewrites the cache)")
    _cluster_options(index)

    make = commands.add_parser("make", help="make a mosaic of a target photo from a tile cache")
    make.add_argument("target", help="the picture to reproduce")
    make.add_argument("--cache", required=True, help="HDF5 tile cache made by `mosaic index`")
    make.add_argument("--cols", type=_positive_int,
                      help=f"cells across (default: mosaic.make.cols, {config_get('make.cols')})")
    make.add_argument("--rows", type=_positive_int, help="cells down (default: from the target's aspect ratio)")
    make.add_argument("--reuse", choices=["spread", "nearest", "unique"], default="spread",
                      help="spread (default): each cell its best tile, but no tile on more than --max-share of the cells "
                           "nor within --min-repeat-distance cells of itself; "
                           "nearest: every cell its best tile, however often it is used; "
                           "unique: each tile at most once, proven within 1%% of the least total cost")
    make.add_argument("--unique", dest="reuse", action="store_const", const="unique", help="same as --reuse unique")
    make.add_argument("--max-uses", type=_positive_int,
                      help=f"use no tile more often than this (default: mosaic.make.max-uses, {config_get('make.max-uses')}: "
                           "no fixed number)")
    make.add_argument("--max-share", type=_share, metavar="F",
                      help="spread: no tile on more than this share of the cells, or than the fewest uses that fill the "
                           f"grid (default: mosaic.make.max-share, {config_get('make.max-share')})")
    floor = make.add_mutually_exclusive_group()
    floor.add_argument("--use-all", action="store_true",
                       help="every photo in the cache at least once (an event mosaic: every guest's photo appears), "
                            "at as little total colour distance as the capped assignment finds; the grid needs a cell "
                            "for each")
    floor.add_argument("--uses-each", type=_uses_each, metavar="MIN:MAX",
                       help="every photo between MIN and MAX times (MIN: for no cap), as --use-all")
    make.add_argument("--priority", metavar="MASK|auto",
                      help="give the important regions the better tiles when tiles are scarce (with a cap, --unique or "
                           "--use-all): a grey mask of the target's shape, white most important, or auto (faces and "
                           "salient regions); the summary states the colour distance inside and outside them")
    make.add_argument("--priority-strength", type=_float_from(1), metavar="S",
                      help="a fully important cell counts its colour error S times, against 1 for the rest (default: "
                           f"mosaic.make.priority-strength, {config_get('make.priority-strength')})")
    make.add_argument("--subdivide", type=_non_negative_int, default=0, metavar="LEVELS",
                      help="tiles of several sizes: where the target has detail, a cell splits into 2x2 smaller cells, up "
                           "to LEVELS times (mosaic.make.subdivide-share of the cells at each level, "
                           f"{config_get('make.subdivide-share')}); --tile-px is the largest tiles' and must halve evenly "
                           "(default 0: one size)")
    make.add_argument("--flip", action="store_true",
                      help="a tile may also be used mirrored left to right where that matches its cell better (either "
                           "way is one use); off by default, as mirrored text and faces can look wrong")
    make.add_argument("--min-repeat-distance", type=_non_negative_int, metavar="D",
                      help="the same tile never within D cells of itself (default: mosaic.make.min-repeat-distance, "
                           f"{config_get('make.min-repeat-distance')}, with spread; 0 with nearest and unique; 0: no limit)")
    _render_options(make)
    make.add_argument("--print-size", type=_print_size, metavar="WxH{cm,mm,in}",
                      help="fill a print of this size, e.g. 60x40cm or 24x16in, at --dpi: the tile size follows from "
                           "--cols (or the columns from --tile-px), the rows fill the height; the summary and report "
                           "state the printed size and each tile's size on paper")
    make.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                      help="write <out stem>.report.html beside the mosaic (default: yes)")
    _cluster_options(make)

    render = commands.add_parser("render", help="render a mosaic again from its assignment record, without matching")
    render.add_argument("assignment", help="<stem>.assignment.npz (or .csv) written by `mosaic make`")
    render.add_argument("--cache", required=True, help="the tile cache the mosaic was made from")
    _render_options(render)
    _cluster_options(render)

    coverage = commands.add_parser("coverage", help="how well a library covers a target's colours, before making a mosaic")
    coverage.add_argument("target", help="the picture to reproduce")
    coverage.add_argument("--cache", required=True, help="HDF5 tile cache made by `mosaic index`")
    coverage.add_argument("--cols", type=_positive_int, help=f"cells across (default: mosaic.make.cols, {config_get('make.cols')})")
    coverage.add_argument("--rows", type=_positive_int, help="cells down (default: from the target's aspect ratio)")
    coverage.add_argument("--chart", help="where to write the chart (default: <target stem>.coverage.png here)")

    info = commands.add_parser("info", help="describe a tile cache")
    info.add_argument("cache", help="HDF5 tile cache")
    info.add_argument("--failures", action="store_true", help="list every file that could not be indexed, with its reason")
    info.add_argument("--videos", action="store_true", help="list every video with its frames kept and near-identical frames skipped")
    info.add_argument("--check", action="store_true",
                      help="verify the cache (columns, paths, aliases, features, a sample of thumbnails): "
                           "one line, exit 0 if sound, 1 if not")
    return parser


def _cluster_flags(args: argparse.Namespace) -> dict:
    return {"scheduler": args.scheduler, "scheduler_file": args.scheduler_file, "workers": args.workers,
            "threads": args.threads, "dashboard_address": args.dashboard_address,
            "performance_report": args.performance_report, "announce": not args.quiet}


def _reuse_rule(args: argparse.Namespace) -> ReuseRule:
    """The reuse flags as one rule, with --use-all's or --uses-each's floor (and cap)."""
    rule = _reuse_limits(args)
    low, high = (1, None) if args.use_all else args.uses_each or (0, None)
    if high is not None:
        if args.max_uses not in (None, high) or (rule.is_unique and high != 1):
            raise MosaicError(f"--uses-each {low}:{high} caps uses at {high}; drop --max-uses or --unique, or make them agree")
        rule = dataclasses.replace(rule, max_uses=high)
    return dataclasses.replace(rule, min_uses=low)


def _reuse_limits(args: argparse.Namespace) -> ReuseRule:
    """--reuse, --unique, --max-uses, --max-share and --min-repeat-distance as one rule; spread's absent flags take the configured default."""
    if args.reuse == "unique":
        if args.max_uses not in (None, 1):
            raise MosaicError("--unique means --max-uses 1; give one or the other")
        return ReuseRule.unique(args.min_repeat_distance or 0)
    if args.reuse == "nearest":
        if args.max_share is not None:
            raise MosaicError("--reuse nearest has no share cap; drop --max-share or use --reuse spread")
        return ReuseRule(args.max_uses, args.min_repeat_distance or 0)
    default = ReuseRule.from_config()
    return ReuseRule(default.max_uses if args.max_uses is None else args.max_uses,
                     default.min_repeat_distance if args.min_repeat_distance is None else args.min_repeat_distance,
                     default.max_share if args.max_share is None else args.max_share)


def _run(args: argparse.Namespace) -> int:
    quiet = {"progress": not args.quiet} if hasattr(args, "quiet") else {}
    if args.command == "demo":
        summary = run_demo(args.out_dir, **quiet)
        print(f"demo mosaic: {os.path.abspath(summary.output)}\n{summary}")
    elif args.command == "index":
        print(index_library(args.library, args.cache, tile_size=args.tile_size, grid=args.grid, crop=args.crop,
                            tile_aspect=args.tile_aspect, frames=args.frames,
                            batch_size=args.batch_size,
                            min_size=args.min_size, max_pixels=args.max_pixels, prune=args.prune, **quiet))
    elif args.command == "make":
        print(make_mosaic(args.target, args.cache, args.out, cols=args.cols, rows=args.rows, tile_px=args.tile_px,
                          rule=_reuse_rule(args), blend=args.blend, correct=args.correct, from_originals=args.from_originals,
                          print_size=args.print_size, dpi=args.dpi, priority=args.priority,
                          priority_strength=args.priority_strength, flip=args.flip, subdivide=args.subdivide,
                          report=args.report, **quiet))
    elif args.command == "render":
        result = render_mosaic(args.assignment, args.cache, args.out, tile_px=args.tile_px, blend=args.blend,
                               correct=args.correct, from_originals=args.from_originals, dpi=args.dpi, **quiet)
        print(f"{result.output}: {result.width}x{result.height} px in {result.seconds:.2f} s")
    elif args.command == "coverage":
        from .report import target_coverage  # matplotlib: imported only when drawing

        chart = args.chart or os.path.splitext(os.path.basename(args.target))[0] + ".coverage.png"
        print(target_coverage(args.target, args.cache, args.cols, args.rows, chart=chart).verdict())
        print(f"chart: {os.path.abspath(chart)}")
    elif args.command == "info" and args.check:
        sound, verdict = check_cache_file(args.cache)
        print(verdict)
        return 0 if sound else 1
    elif args.command == "info":
        print(describe_cache(args.cache, list_failures=args.failures, list_videos=args.videos))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `mosaic` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if hasattr(args, "scheduler"):  # a command that computes: the cluster flags are in force while it runs
            with cluster_settings(**_cluster_flags(args)):
                status = _run(args)
        else:
            status = _run(args)
        sys.stdout.flush()  # here, where a reader that went away is caught, not at interpreter exit
        return status
    except MosaicError as exc:
        print(f"mosaic: error: {message_with_names(exc, _FLAGS)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`mosaic info CACHE | head -3`): stop quietly, as a filter does, and keep
        # Python's exit-time flush of stdout from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a filter its reader left
    except OSError as exc:  # a full disk, an I/O error, a folder that vanished: what and where, in one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mosaic: error: {where}{(exc.strerror or str(exc)).lower()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mosaic: interrupted", file=sys.stderr)
        return 130
