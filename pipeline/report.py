"""Pictures of a result: coverage chart, error histogram and heat map, and the HTML report (IO edge)."""
from __future__ import annotations

import base64
import html
import io
import os

import numpy as np
# Figures are built without pyplot, so that importing this module never switches the
# caller's backend (a notebook keeps its inline plots) and no global figure state is kept.
from matplotlib.figure import Figure
from PIL import Image

from .cache import TileCache
from .config import or_config
from .coverage import Coverage, colour_coverage
from .files import replaced_atomically
from .target import describe_target

__all__ = ["coverage_figure", "error_figure", "figure_png", "target_coverage", "write_report"]

# A colour to draw each hue sector's bars in (sRGB hex), in coverage.HUE_NAMES order.
_HUE_COLOURS = {
    "red": "#d62728", "orange": "#ff7f0e", "yellow": "#e6c619", "yellow-green": "#9acd32", "green": "#2ca02c",
    "cyan": "#17becf", "blue": "#1f5fd6", "purple": "#9467bd", "pink": "#e377c2", "grey": "#8c8c8c",
}


def coverage_figure(coverage: Coverage, cell_lab: np.ndarray, tile_lab: np.ndarray) -> Figure:
    """Where the target's colours fall among the library's, and the share of each hue in both."""
    fig = Figure(figsize=(12, 5))
    plane, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    plane.hexbin(tile_lab[:, 1], tile_lab[:, 2], gridsize=45, cmap="Greys", bins="log", mincnt=1, extent=(-80, 80, -80, 80))
    points = plane.scatter(cell_lab[:, 1], cell_lab[:, 2], c=coverage.nearest, cmap="RdYlGn_r", vmin=0,
                           vmax=2 * coverage.distant, s=6, alpha=0.8, linewidths=0)
    fig.colorbar(points, ax=plane, label="distance to nearest tile (delta E)")
    plane.set(xlim=(-80, 80), ylim=(-80, 80), xlabel="a* (green - red)", ylabel="b* (blue - yellow)",
              title="Target cells (dots) over the library (grey density)")
    plane.set_aspect("equal")

    y = np.arange(len(coverage.hue_names))
    colours = [_HUE_COLOURS[name] for name in coverage.hue_names]
    bars.barh(y - 0.2, coverage.target_share * 100, height=0.4, color=colours, label="target cells")
    bars.barh(y + 0.2, coverage.library_share * 100, height=0.4, color=colours, alpha=0.35, hatch="//", label="library tiles")
    bars.set_yticks(y, [f"{name}  (thin)" if name in coverage.thin else name for name in coverage.hue_names])
    bars.invert_yaxis()
    bars.set(xlabel="share (%)", title="Colour coverage by hue")
    bars.legend(loc="best")
    fig.tight_layout()
    return fig


def error_figure(distances: np.ndarray, rows: int, cols: int, cell_aspect: float = 1.0,
                 error_map: np.ndarray | None = None) -> Figure:
    """Histogram of per-cell colour error, and the same error mapped over the picture (cells ``cell_aspect`` tall per wide).

    ``error_map``: the map to draw instead of ``distances`` as a ``rows`` x ``cols`` grid, such as a
    subdivided grid's distances painted over its smallest cells (then ``cell_aspect`` is theirs too).
    """
    fig = Figure(figsize=(12, 4.5))
    hist, heat = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    hist.hist(distances, bins=40, color="#4c72b0")
    mean, p95 = float(np.mean(distances)), float(np.percentile(distances, 95))
    hist.axvline(mean, color="k", linestyle="--", label=f"mean {mean:.1f}")
    hist.axvline(p95, color="#c44e52", linestyle=":", label=f"95th percentile {p95:.1f}")
    hist.set(xlabel="colour distance of a cell to its tile (delta E)", ylabel="cells", title="Per-cell colour error")
    hist.legend()
    shown = np.asarray(distances).reshape(rows, cols) if error_map is None else error_map
    image = heat.imshow(shown, cmap="magma", interpolation="nearest", aspect=cell_aspect)
    fig.colorbar(image, ax=heat, label="delta E")
    heat.set(title="Where the error is", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def target_coverage(target: str | os.PathLike, cache_path: str | os.PathLike, cols: int | None = None,
                    rows: int | None = None, chart: str | os.PathLike | None = None) -> Coverage:
    """How well the library in a cache covers a target's colours, before making a mosaic.

    Cuts the target into cells as ``mosaic make`` would and, if ``chart`` is given,
    writes the coverage chart there as a PNG.
    """
    with TileCache.open(cache_path) as cache:
        tile_lab = cache.features().mean_lab
        grid, aspect = cache.grid, cache.tile_aspect
    cell_lab = describe_target(target, or_config(cols, "make.cols"), rows, grid, aspect).features.mean_lab
    coverage = colour_coverage(cell_lab, tile_lab)
    if chart is not None:
        with replaced_atomically(chart) as f:
            f.write(figure_png(coverage_figure(coverage, cell_lab, tile_lab)))
    return coverage


def figure_png(fig: Figure, dpi: int = 96) -> bytes:
    """A figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _jpeg_preview(pixels: np.ndarray, width: int = 640) -> bytes:
    image = Image.fromarray(pixels)
    image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.pair { display: flex; gap: 16px; flex-wrap: wrap; } .pair figure { margin: 0; }
figcaption { font-size: 0.9em; color: #555; }
table { border-collapse: collapse; } td { padding: 2px 14px 2px 0; } td:first-child { color: #555; }
img.chart { max-width: 100%; }
"""


def write_report(path: str | os.PathLike, summary, target_pixels: np.ndarray, mosaic_pixels: np.ndarray,
                 coverage: Coverage, cell_lab: np.ndarray, tile_lab: np.ndarray, distances: np.ndarray,
                 most_used: list[tuple[str, int]] = (), error_map: np.ndarray | None = None) -> None:
    """Write a self-contained HTML report of a mosaic (every image embedded).

    Parameters
    ----------
    path : path
        The HTML file to write.
    summary : MosaicSummary
        The numbers of the run.
    target_pixels, mosaic_pixels : ndarray of uint8, shape (H, W, 3)
        The target as cut to the grid, and the mosaic.
    coverage : Coverage
        The target's colours against the library's.
    cell_lab, tile_lab : ndarray, shape (M, 3) and (N, 3)
        Mean CIELAB colours of cells and tiles.
    distances : ndarray, shape (M,)
        Colour distance of each cell to the tile it got.
    most_used : list of (str, int), optional
        The most used tiles' sources (a photo's path, a video frame's ``path#t=SECONDS``)
        and their uses, most first.
    error_map : ndarray, optional
        A subdivided grid's distances painted over its smallest cells, for the error map.
    """
    numbers = [
        ("cells", f"{summary.cols} x {summary.rows} = {summary.rows * summary.cols}"
                  + (", subdivided: " + ", ".join(f"{n} of {w} px wide" for w, n in summary.cell_sizes.items())
                     if summary.cell_sizes else "")),
        ("output", f"{summary.width} x {summary.height} px, tiles of {summary.tile_shape[1]} x {summary.tile_shape[0]} px"),
        *((("printed size", summary.printed),) if summary.dpi else ()),
        *((("priority", f"{summary.priority}: mean colour distance {summary.priority_distances[0]:.2f} in the priority "
                        f"regions, {summary.priority_distances[1]:.2f} elsewhere"),) if summary.priority_distances else ()),
        ("tiles in the cache", summary.tiles_in_cache),
        ("distinct tiles used", summary.distinct_tiles),
        ("most uses of one tile", summary.most_uses),
        ("mean colour distance", f"{summary.mean_distance:.2f} delta E (CIE76)"),
        ("95th percentile colour distance", f"{summary.p95_distance:.2f} delta E"),
        *((f"time: {stage}", f"{seconds:.2f} s") for stage, seconds in summary.seconds.items()),
    ]
    rows = "\n".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in numbers)
    sources = "\n".join(f"<tr><td>{uses}</td><td>{html.escape(source)}</td></tr>" for source, uses in most_used)
    coverage_png = figure_png(coverage_figure(coverage, cell_lab, tile_lab))
    error_png = figure_png(error_figure(distances, summary.rows, summary.cols, summary.tile_shape[0] / summary.tile_shape[1],
                                        error_map))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Mosaic report: {html.escape(os.path.basename(summary.output))}</title>
<style>{_STYLE}</style></head><body>
<h1>Mosaic report: {html.escape(summary.output)}</h1>
<div class="pair">
<figure><img id="target" alt="target" src="{_data_uri(_jpeg_preview(target_pixels), 'image/jpeg')}"><figcaption>target</figcaption></figure>
<figure><img id="mosaic" alt="mosaic" src="{_data_uri(_jpeg_preview(mosaic_pixels), 'image/jpeg')}"><figcaption>mosaic</figcaption></figure>
</div>
<h2>Numbers</h2><table>{rows}</table>
<h2>Most used tiles</h2><table id="most-used"><tr><th>uses</th><th>source</th></tr>{sources}</table>
<h2>Colour coverage</h2><p id="verdict">{html.escape(coverage.verdict())}</p>
<img class="chart" id="coverage" alt="colour coverage chart" src="{_data_uri(coverage_png, 'image/png')}">
<h2>Colour error</h2>
<img class="chart" id="error" alt="per-cell colour error" src="{_data_uri(error_png, 'image/png')}">
</body></html>
"""
    with replaced_atomically(path, binary=False, encoding="utf-8") as f:
        f.write(page)
