"""`mosaic make`: target photo -> cell features -> match -> assemble, with the assignment record."""
from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from distributed import Client
from PIL import Image

from ._cache import TileCache
from ._cluster import dask_client
from ._errors import MosaicError
from ._features import TileFeatures, compute_features
from ._files import replaced_atomically
from ._photo import PhotoError, load_rgb
from ._progress import Progress
from .assemble import resize_tiles, tile_canvas, write_image
from .coverage import colour_coverage
from .match import Assignment, match_cells

__all__ = ["cell_patches", "describe_target", "grid_shape", "make_mosaic", "MosaicSummary", "TargetCells", "CELL_SAMPLE_PX"]

# Each target cell is sampled at this many pixels a side to compute its features.
CELL_SAMPLE_PX = 16


def grid_shape(width: int, height: int, cols: int, rows: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` of the cell grid; rows follow the target's aspect ratio unless given."""
    if cols < 1 or (rows is not None and rows < 1):
        raise MosaicError("--cols and --rows must be at least 1")
    return (rows if rows is not None else max(1, round(cols * height / width)), cols)


def cell_patches(target: np.ndarray, rows: int, cols: int, cell_px: int = CELL_SAMPLE_PX) -> np.ndarray:
    """Cut a target image into square cells.

    The target is centre-cropped to the grid's aspect ratio (losing less than a
    cell) and resampled so that every cell is ``cell_px`` square.

    Parameters
    ----------
    target : ndarray of uint8, shape (H, W, 3)
    rows, cols : int
        The cell grid.
    cell_px : int
        Side of each returned patch.

    Returns
    -------
    ndarray of uint8, shape (rows * cols, cell_px, cell_px, 3), row-major.
    """
    height, width = target.shape[:2]
    scale = min(width / cols, height / rows)
    crop_w, crop_h = cols * scale, rows * scale
    box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
    image = Image.fromarray(target).resize((cols * cell_px, rows * cell_px), Image.Resampling.LANCZOS, box=box)
    pixels = np.asarray(image).reshape(rows, cell_px, cols, cell_px, 3)
    return pixels.transpose(0, 2, 1, 3, 4).reshape(rows * cols, cell_px, cell_px, 3)


@dataclass
class MosaicSummary:
    """What :func:`make_mosaic` made and how well it matched."""

    output: str
    assignment_csv: str
    rows: int
    cols: int
    tile_px: int
    tiles_in_cache: int
    distinct_tiles: int
    most_uses: int
    mean_distance: float
    p95_distance: float
    seconds: dict[str, float] = field(default_factory=dict)
    report: str | None = None

    def __str__(self) -> str:
        h, w = self.rows * self.tile_px, self.cols * self.tile_px
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return (
            f"{self.output}: {w}x{h} px, {self.cols}x{self.rows} cells of {self.tile_px} px; "
            f"{self.distinct_tiles} distinct tiles of {self.tiles_in_cache} (most uses of one: {self.most_uses}); "
            f"colour distance mean {self.mean_distance:.1f}, 95th percentile {self.p95_distance:.1f} (CIE76); {stages}\n"
            f"assignment: {self.assignment_csv}" + (f"\nreport: {self.report}" if self.report else "")
        )


def _write_assignment_csv(path: str, assignment: Assignment, cols: int, tile_paths: list[str]) -> None:
    with replaced_atomically(path, binary=False, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "col", "tile", "tile_path", "distance"])
        for cell, (tile, distance) in enumerate(zip(assignment.tiles, assignment.distances)):
            writer.writerow([cell // cols, cell % cols, int(tile), tile_paths[tile], f"{distance:.3f}"])


class TargetCells(NamedTuple):
    """A target photo cut into cells: its pixels, the grid and each cell's features."""

    pixels: np.ndarray  # (H, W, 3) uint8, upright
    rows: int
    cols: int
    features: TileFeatures  # of the rows * cols cells, row-major


def describe_target(target: str | os.PathLike, cols: int, rows: int | None = None, grid: int = 3) -> TargetCells:
    """Read a target photo and compute the features of its cells, as the tiles' are computed.

    Raises
    ------
    MosaicError
        If the target cannot be read as a photo.
    """
    try:
        pixels = load_rgb(os.fspath(target), min_side=max(cols, rows or 0) * CELL_SAMPLE_PX)
    except PhotoError as exc:
        raise MosaicError(f"cannot read target {os.fspath(target)}: {exc}") from None
    n_rows, n_cols = grid_shape(pixels.shape[1], pixels.shape[0], cols, rows)
    return TargetCells(pixels, n_rows, n_cols, compute_features(cell_patches(pixels, n_rows, n_cols), grid))


def _read_resized_tiles(cache: TileCache, rows: np.ndarray, tile_px: int, progress: bool, chunk: int = 512) -> np.ndarray:
    bar = Progress("assemble", len(rows), "tiles", enabled=progress)
    parts = []
    for start in range(0, len(rows), chunk):
        parts.append(resize_tiles(cache.thumbnails(rows[start : start + chunk]), tile_px))
        bar.update(len(parts[-1]))
    bar.close()
    return np.concatenate(parts)


def _stage_line(enabled: bool, line: str) -> None:
    if enabled:
        print(line, file=sys.stderr, flush=True)


def _check_output(out: str, target: str, cache_path: str) -> None:
    for precious in (target, cache_path):
        if os.path.exists(out) and os.path.samefile(out, precious):
            raise MosaicError(f"refusing to write the mosaic over {precious}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise MosaicError(f"output folder does not exist: {os.path.dirname(os.path.abspath(out))}")


def make_mosaic(
    target: str | os.PathLike,
    cache_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    cols: int = 80,
    rows: int | None = None,
    tile_px: int = 32,
    max_uses: int | None = None,
    report: bool = True,
    progress: bool = True,
    client: Client | None = None,
    **cluster_options,
) -> MosaicSummary:
    """Make a photomosaic of ``target`` from the tiles in a cache.

    Parameters
    ----------
    target : path
        The picture to reproduce.
    cache_path : path
        A tile cache made by :func:`pipeline.index_library`.
    out : path
        Output image (.jpg, .png or .tif). The assignment CSV is written beside
        it as ``<out stem>.assignment.csv``.
    cols, rows : int
        Cells across; rows default to the target's aspect ratio.
    tile_px : int
        Side of each tile in the output, in pixels.
    max_uses : int, optional
        Use no tile more often than this.
    report : bool
        Also write ``<out stem>.report.html``: previews, numbers, colour
        coverage, and the per-cell colour error.
    progress : bool
        Print the dashboard link and each stage's progress to stderr.
    client : distributed.Client, optional
        Run on this client's cluster.
    **cluster_options
        Otherwise, how to find or start a cluster: see :func:`pipeline.dask_client`.

    Returns
    -------
    MosaicSummary
    """
    target, cache_path, out = os.fspath(target), os.fspath(cache_path), os.fspath(out)
    if tile_px < 1:
        raise MosaicError("--tile-px must be at least 1")
    _check_output(out, target, cache_path)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with TileCache.open(cache_path) as cache:
        tile_features, tile_paths = cache.features(), cache.paths()
        target_pixels, n_rows, n_cols, cells = describe_target(target, cols, rows, cache.grid)
        seconds["features"] = time.perf_counter() - start
        _stage_line(progress, f"make: {n_cols}x{n_rows} cells described ({seconds['features']:.1f} s)")

        with dask_client(client, announce=progress, **cluster_options) as dask:
            t = time.perf_counter()
            assignment = match_cells(cells.mean_lab, tile_features.mean_lab, max_uses=max_uses, client=dask, progress=progress)
            seconds["match"] = time.perf_counter() - t
        _stage_line(progress, f"make: matched {len(assignment.tiles)} cells against {len(tile_paths)} tiles ({seconds['match']:.1f} s)")

        t = time.perf_counter()
        used, layout = np.unique(assignment.tiles, return_inverse=True)
        tiles = _read_resized_tiles(cache, used, tile_px, progress)
    canvas = tile_canvas(tiles, layout.reshape(n_rows, n_cols))
    write_image(canvas, out)
    csv_path = os.path.splitext(out)[0] + ".assignment.csv"
    _write_assignment_csv(csv_path, assignment, n_cols, tile_paths)
    seconds["assemble"] = time.perf_counter() - t
    _stage_line(progress, f"make: wrote {out} and its assignment CSV ({seconds['assemble']:.1f} s)")
    summary = MosaicSummary(
        output=out,
        assignment_csv=csv_path,
        rows=n_rows,
        cols=n_cols,
        tile_px=tile_px,
        tiles_in_cache=len(tile_paths),
        distinct_tiles=len(used),
        most_uses=int(np.bincount(layout).max()),
        mean_distance=float(assignment.distances.mean()),
        p95_distance=float(np.percentile(assignment.distances, 95)),
        seconds=seconds,
    )
    if report:
        from .report import write_report  # matplotlib: imported only when drawing

        t = time.perf_counter()
        summary.report = os.path.splitext(out)[0] + ".report.html"
        coverage = colour_coverage(cells.mean_lab, tile_features.mean_lab)
        write_report(summary.report, summary, target_pixels, canvas, coverage, cells.mean_lab, tile_features.mean_lab,
                     assignment.distances)
        _stage_line(progress, f"make: wrote {summary.report} ({time.perf_counter() - t:.1f} s)")
    return summary
