"""`mosaic make`: target photo -> cell features -> match -> assemble, with the assignment record."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from distributed import Client

from .cache import TileCache
from .cluster import stage_client
from .config import config_get, or_config
from .errors import MosaicError
from .files import check_not_precious, check_writable, replaced_atomically
from .formats import check_output
from .layout import PrintSize, cell_weights, check_tile_halves, lay_out_cells, paper_size, plan_print, printed_size
from .coverage import colour_coverage
from .features import matching_vectors, mirror_grids
from .matching import ReuseRule, grid_cost, match_cells
from .record import AssignmentRecord, write_assignment
from .rendering import render_assignment
from .target import describe_target, grid_shape

__all__ = ["MosaicSummary", "make_mosaic"]

@dataclass
class MosaicSummary:
    """What :func:`make_mosaic` made and how well it matched."""

    output: str
    assignment_csv: str
    rows: int
    cols: int
    tile_shape: tuple[int, int]  # (height, width) of each tile in the output, px
    tiles_in_cache: int
    distinct_tiles: int
    most_uses: int
    mean_distance: float
    p95_distance: float
    seconds: dict[str, float] = field(default_factory=dict)
    report: str | None = None
    assignment_npz: str = ""
    quality: str = ""
    grid: int = 3  # feature grid per side: the distances are RMS over grid x grid blocks
    dpi: float | None = None  # the print resolution the output carries
    print_unit: str = "cm"  # the unit the printed size is stated in
    priority: str = ""  # where the cells' priority came from, if any
    priority_distances: tuple[float, float] | None = None  # mean distance in cells of priority >= 0.5, and elsewhere
    cell_sizes: dict[int, int] = field(default_factory=dict)  # a subdivided grid's cells by tile width, px
    proven_gap: float | None = None  # a capped assignment's total matching cost is at most this fraction above the least

    @property
    def printed(self) -> str:
        """The output's size on paper, e.g. ``"60.0 x 40.0 cm at 300 dpi"`` ("" without a dpi)."""
        return printed_size(self.width, self.height, self.dpi, self.print_unit) if self.dpi else ""

    @property
    def width(self) -> int:
        """The mosaic's width, px."""
        return self.cols * self.tile_shape[1]

    @property
    def height(self) -> int:
        """The mosaic's height, px."""
        return self.rows * self.tile_shape[0]

    def __str__(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        tile_h, tile_w = self.tile_shape
        return (
            f"{self.output}: {self.width}x{self.height} px, {self.cols}x{self.rows} cells of "
            f"{tile_w if tile_w == tile_h else f'{tile_w}x{tile_h}'} px"
            + (", subdivided: " + ", ".join(f"{count} of {width} px wide" for width, count in self.cell_sizes.items())
               if self.cell_sizes else "") + "; "
            f"{self.distinct_tiles} distinct tiles of {self.tiles_in_cache} (most uses of one: {self.most_uses}); "
            f"colour distance mean {self.mean_distance:.1f}, 95th percentile {self.p95_distance:.1f} "
            f"(CIE76, RMS over each cell's {self.grid}x{self.grid} blocks); {stages}\n"
            + (f"capped assignment: {_gap_words(self.proven_gap)}\n" if self.proven_gap is not None else "")
            + (f"priority {self.priority}: colour distance mean {self.priority_distances[0]:.1f} in the priority regions, "
               f"{self.priority_distances[1]:.1f} elsewhere\n" if self.priority_distances else "")
            + (f"prints at {self.printed}, each tile {paper_size(tile_w, tile_h, self.dpi, self.print_unit)}\n" if self.dpi else "") +
            f"assignment: {self.assignment_csv}; match quality: {self.quality}" + (f"\nreport: {self.report}" if self.report else "")
        )


def _gap_words(gap: float) -> str:
    if math.isinf(gap):
        return "no lower bound proven in the time budget (mosaic.make.time-budget)"
    return f"total matching cost proven within {100 * gap:.2f} % of the least possible"


def _flat(grid: np.ndarray) -> np.ndarray:
    return grid.reshape(len(grid), -1)


def _colour_distances(cell_grid: np.ndarray, tile_grid: np.ndarray, tiles: np.ndarray,
                      flipped: np.ndarray | None = None) -> np.ndarray:
    """Each cell's RMS CIE76 over its grid blocks against its chosen tile (the matching cost weights L*; this does not).

    The grids are float32 views, not copies: the cost reads only the chosen tiles' rows (a copy of a
    13-million-tile library's grids would be 2.5 GB for a few hundred thousand rows).
    """
    distances = grid_cost(_flat(cell_grid), _flat(tile_grid))(np.arange(len(tiles)), tiles).astype(np.float32)
    if flipped is not None and flipped.any():  # those cells against their tiles mirrored
        cells = np.flatnonzero(flipped)
        pairs = np.arange(len(cells))
        distances[cells] = grid_cost(_flat(cell_grid[cells]), _flat(mirror_grids(tile_grid[tiles[cells]])))(pairs, pairs)
    return distances


def _write_quality(path: str, summary: "MosaicSummary", tiles: np.ndarray, rule: ReuseRule) -> str:
    """The match quality, beside the output, for comparing runs without opening the report."""
    quality = {
        "cells": int(tiles.size), "tiles_in_cache": summary.tiles_in_cache,
        # The rule as given, its share turned into the number of uses it allowed on this grid.
        "rule": {**rule.as_dict(), "max_uses": rule.for_grid(int(tiles.size), summary.tiles_in_cache).max_uses},
        "mean_distance": summary.mean_distance, "p95_distance": summary.p95_distance,
        "distance": f"root mean square CIE76 over the {summary.grid}x{summary.grid} CIELAB grid blocks of cell and tile",
        "distinct_tiles": summary.distinct_tiles, "most_uses": summary.most_uses,
        "proven_gap": None if summary.proven_gap is None or math.isinf(summary.proven_gap) else summary.proven_gap,
    }
    if summary.priority_distances:
        # A region with no cells (a mask dark everywhere) has no mean: null, as JSON has no NaN.
        inside, outside = (None if math.isnan(d) else d for d in summary.priority_distances)
        quality["priority"] = {"source": summary.priority, "mean_distance_inside": inside,
                               "mean_distance_outside": outside}
    with replaced_atomically(path, binary=False) as file:
        json.dump(quality, file, indent=1, allow_nan=False)
    return path


def _inside_and_out(distances: np.ndarray, levels: np.ndarray) -> tuple[float, float]:
    """Mean distance of the cells of priority 0.5 or more, and of the rest."""
    inside = levels >= 0.5
    return (float(distances[inside].mean()) if inside.any() else float("nan"),
            float(distances[~inside].mean()) if (~inside).any() else float("nan"))


def _cell_sizes(quad, tile_shape: tuple[int, int]) -> dict[int, int]:
    """A subdivided grid's number of cells of each tile width, largest first ({} for a plain grid)."""
    if quad is None:
        return {}
    counts = np.bincount(quad.level)
    return {tile_shape[1] >> level: int(count) for level, count in enumerate(counts.tolist()) if count}


def _stage_line(enabled: bool, line: str) -> None:
    if enabled:
        print(line, file=sys.stderr, flush=True)


def _most_used(tiles: np.ndarray, count: int) -> list[tuple[int, int]]:
    """The ``count`` most used tile rows and their uses, most first (ties: lower row first).

    Partitions instead of sorting every tile's count: a cache of 13 million tiles is a
    13-million-long count, and only the top few are wanted.
    """
    uses = np.bincount(tiles)
    count = min(count, len(uses))
    threshold = np.partition(uses, len(uses) - count)[len(uses) - count]
    rows = np.flatnonzero(uses >= max(threshold, 1))
    rows = rows[np.lexsort((rows, -uses[rows]))][:count]
    return [(int(row), int(uses[row])) for row in rows]


def make_mosaic(
    target: str | os.PathLike,
    cache_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    cols: int | None = None,
    rows: int | None = None,
    tile_px: int | None = None,
    rule: ReuseRule | None = None,
    blend: float = 0.0,
    correct: float | None = None,
    from_originals: bool = False,
    print_size: str | PrintSize | None = None,
    dpi: float | None = None,
    priority: str | os.PathLike | None = None,
    priority_strength: float | None = None,
    flip: bool = False,
    subdivide: int = 0,
    report: bool = True,
    progress: bool = True,
    client: Client | None = None,
) -> MosaicSummary:
    """Make a photomosaic of ``target`` from the tiles in a cache.

    Parameters
    ----------
    target : path
        The picture to reproduce.
    cache_path : path
        A tile cache made by :func:`pipeline.index_library`.
    out : path
        Output image: ``.jpg``, ``.png``, ``.tif`` (tiled pyramidal BigTIFF) or
        ``.dzi`` (Deep Zoom pyramid and a viewer page). The assignment record is
        written beside it as ``<out stem>.assignment.csv`` and ``.npz``.
    cols, rows : int, optional
        Cells across (default ``mosaic.make.cols``); rows default to the target's aspect ratio.
    tile_px : int, optional
        Each tile's shorter side in the output, in pixels (default ``mosaic.make.tile-px``);
        tiles, and cells, have the cache's tile aspect.
    rule : ReuseRule, optional
        How often one tile may be used and how near to itself (default:
        :meth:`ReuseRule.from_config`; ``ReuseRule.unique()``: each tile at most
        once, near-optimal: proven within 1 % of the least total cost;
        ``min_uses=1``: every tile at least once, by the same search, which on large
        grids stops on a stall rather than a proof).
    blend : float
        0..1: pull each tile toward its cell's colour (alpha overlay); 0 leaves tiles as they are.
    correct : float, optional
        0..1: move each tile's colours toward its cell's, block by block, keeping its
        detail (default ``mosaic.make.correct``); 0 leaves tiles as they are.
    from_originals : bool
        Re-read the original photos for the tiles, for tiles larger than the cached thumbnails.
    print_size : str or PrintSize, optional
        Fill a print of this size (``"60x40cm"``, ``"24x16in"``) at ``dpi``: the tile size
        follows from ``cols``, or the columns from ``tile_px`` (give one); rows fill the height.
    dpi : float, optional
        The print resolution, written into JPEG, PNG and TIFF outputs and stated in the
        report (default with a ``print_size``: ``mosaic.make.dpi``; without one: none).
    priority : path or "auto", optional
        Which regions of the target should get the better tiles when tiles are scarce
        (under a cap, ``unique`` or a floor): a grey mask of the target's shape (white
        most important), or ``"auto"`` (faces and salient regions,
        :func:`pipeline.layout.auto_priority`).
    priority_strength : float, optional
        How many times a fully important cell counts its colour error, against 1 for the
        rest (default ``mosaic.make.priority-strength``).
    flip : bool
        A tile may also be used mirrored left to right, where that matches its cell better
        (either way is one use of it); recorded in the assignment and rendered so.
    subdivide : int
        Split the cells where the target has detail into 2x2 smaller cells, up to this
        many times (0: a plain grid; see :func:`pipeline.layout.subdivide` and
        ``mosaic.make.subdivide-share``): tiles of several sizes, all from the cache, each
        one use whatever its size. ``tile_px`` is the largest tiles' and must halve evenly.
    report : bool
        Also write ``<out stem>.report.html``: previews, numbers, colour
        coverage, and the per-cell colour error.
    progress : bool
        Print the dashboard link and each stage's progress to stderr.
    client : distributed.Client, optional
        Run on this client's cluster. Default: dask's current client, else a
        LocalCluster of worker processes for matching and one of threads in this
        process for assembly (:func:`pipeline.cluster.stage_client`).

    Returns
    -------
    MosaicSummary
    """
    target, cache_path, out = os.fspath(target), os.fspath(cache_path), os.fspath(out)
    if print_size is not None:
        print_size, dpi = PrintSize.parse(print_size), or_config(dpi, "make.dpi")
        if rows is not None:
            raise MosaicError("a print size sets the rows: the grid fills the paper; drop `rows`")
        cols = or_config(cols, "make.cols") if tile_px is None else cols
    elif tile_px is None:
        tile_px = config_get("make.tile-px")
    if dpi is not None and not dpi > 0:
        raise MosaicError(f"`dpi` must be above 0, got {dpi}")
    correct = or_config(correct, "make.correct")
    if not 0.0 <= correct <= 1.0:
        raise MosaicError(f"`correct` must be between 0 and 1, got {correct}")
    rule = ReuseRule.from_config() if rule is None else rule
    if tile_px is not None and tile_px < 1:
        raise MosaicError("`tile_px` must be at least 1")
    check_not_precious(out, target, cache_path)
    stem = os.path.splitext(out)[0]
    # Every file this run writes, checked before any work: a folder that takes no files
    # should not cost a whole matching first.
    check_writable(*(stem + suffix for suffix in (".assignment.csv", ".assignment.npz", ".match.json")),
                   *([stem + ".report.html"] if report else []))
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with TileCache.open(cache_path) as cache:
        tile_features, tile_paths, aspect = cache.features(), cache.paths(), cache.tile_aspect
        thumbnail_side = cache.tile_size
        if print_size is not None:
            cols, rows, tile_px = plan_print(print_size, dpi, aspect, cols=cols, tile_px=tile_px, halves=subdivide)
        cols = or_config(cols, "make.cols")
        cells = describe_target(target, cols, rows, cache.grid, aspect)
    n_rows, n_cols = cells.rows, cells.cols
    tile_h, tile_w = aspect.tile_shape(tile_px)
    check_output(out, n_cols * tile_w, n_rows * tile_h)  # before any work: e.g. too large for JPEG
    if tile_px > thumbnail_side and not from_originals:
        _stage_line(progress, f"make: tiles of {tile_px} px are larger than the cache's {thumbnail_side} px thumbnails and "
                              "will be enlarged; --from-originals re-reads the photos for sharp tiles")
    if subdivide:
        check_tile_halves(aspect, tile_px, subdivide)
    laid = lay_out_cells(cells, aspect, levels=subdivide, share=config_get("make.subdivide-share"),
                         min_detail=config_get("make.subdivide-min-detail"), priority=priority)
    n_cells, quad = len(laid.grid_lab), laid.quad
    weights = None if laid.priority is None else cell_weights(laid.priority, or_config(priority_strength,
                                                                                          "make.priority-strength"))
    seconds["features"] = time.perf_counter() - start
    _stage_line(progress, f"make: {n_cells} cells described ({seconds['features']:.1f} s)")

    if rule.has_floor:  # refused now, saying how many columns would do, rather than inside matching
        needed = rule.min_uses * len(tile_paths)
        enough = cols
        height, width = cells.pixels.shape[:2]
        while math.prod(grid_shape(width, height, enough, rows, aspect)) < needed:
            enough = enough + 1 if rows is None else -(-needed // rows)
        rule.for_grid(n_cells, len(tile_paths)).check_fits(n_cells, len(tile_paths), enough)
    with stage_client(client, announce=progress) as dask:
        t = time.perf_counter()
        weight = config_get("make.luminance-weight")
        assignment = match_cells(matching_vectors(laid.grid_lab, weight),
                                 matching_vectors(tile_features.grid_lab, weight), rule=rule, cols=n_cols,
                                 client=dask, weights=weights, progress=progress,
                                 mirrored=matching_vectors(mirror_grids(tile_features.grid_lab), weight) if flip else None,
                                 boxes=None if quad is None else quad.boxes(), box_unit=1 if quad is None else 1 << quad.depth)
        assignment = assignment._replace(distances=_colour_distances(
            laid.grid_lab, tile_features.grid_lab, assignment.tiles, assignment.flipped))
        seconds["match"] = time.perf_counter() - t
        _stage_line(progress, f"make: matched {len(assignment.tiles)} cells against {len(tile_paths)} tiles ({seconds['match']:.1f} s)")

    t = time.perf_counter()
    used = np.unique(assignment.tiles)
    shape = (n_cells,) if quad is not None else (n_rows, n_cols)  # a subdivided grid's record is flat
    record = AssignmentRecord(
        tiles=assignment.tiles.reshape(shape), distances=assignment.distances.reshape(shape),
        cell_rgb=laid.mean_rgb.reshape(*shape, 3), tile_paths={r: tile_paths[r] for r in used.tolist()},
        target=os.path.abspath(target), cell_grid=laid.grid_lab.reshape(*shape, *laid.grid_lab.shape[1:]).astype(np.float16),
        correct=correct, dpi=dpi, flipped=None if assignment.flipped is None else assignment.flipped.reshape(shape),
        quad=quad)
    # Assembly's pixels are needed in this process: a LocalCluster started for it runs threads
    # here. That is a second cluster, so a second performance report.
    with stage_client(client, assembly=True, announce=False, report_suffix=".assemble") as dask:
        rendered = render_assignment(record, cache_path, out, dask, tile_px=tile_px, blend=blend,
                                     from_originals=from_originals, progress=progress, dpi=dpi)
    # The record is written only for a mosaic that was: a failed assembly leaves neither.
    csv_path, npz_path = write_assignment(record, stem)
    seconds["assemble"] = time.perf_counter() - t
    _stage_line(progress, f"make: wrote {out} and its assignment record ({seconds['assemble']:.1f} s)")
    summary = MosaicSummary(
        output=out,
        assignment_csv=csv_path,
        assignment_npz=npz_path,
        rows=n_rows,
        cols=n_cols,
        tile_shape=(tile_h, tile_w),
        tiles_in_cache=len(tile_paths),
        distinct_tiles=len(used),
        most_uses=int(np.bincount(assignment.tiles).max()),
        mean_distance=float(assignment.distances.mean()),
        p95_distance=float(np.percentile(assignment.distances, 95)),
        seconds=seconds,
        grid=cells.features.grid_lab.shape[1],
        dpi=dpi,
        print_unit=print_size.unit if print_size is not None else "cm",
        priority=laid.priority_source,
        priority_distances=None if laid.priority is None else _inside_and_out(assignment.distances, laid.priority),
        cell_sizes=_cell_sizes(quad, (tile_h, tile_w)),
        proven_gap=assignment.gap,
    )
    summary.quality = _write_quality(os.path.splitext(out)[0] + ".match.json", summary, assignment.tiles, rule)
    if rendered.fallbacks:
        _stage_line(progress, f"make: {rendered.fallbacks} original photos could not be re-read; their cached thumbnails were used")
    if report:
        from .report import write_report  # matplotlib: imported only when drawing

        t = time.perf_counter()
        summary.report = os.path.splitext(out)[0] + ".report.html"
        coverage = colour_coverage(laid.mean_lab, tile_features.mean_lab)
        most_used = [(tile_paths[row], uses) for row, uses in _most_used(assignment.tiles, 10)]
        write_report(summary.report, summary, cells.pixels, rendered.preview, coverage, laid.mean_lab,
                     tile_features.mean_lab, assignment.distances, most_used,
                     error_map=None if quad is None else quad.paint(assignment.distances))
        _stage_line(progress, f"make: wrote {summary.report} ({time.perf_counter() - t:.1f} s)")
    return summary
