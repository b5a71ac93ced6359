"""How a render cuts the mosaic into bands: the rows of cells each task renders, and where its pixels go."""
from __future__ import annotations

import math
from typing import NamedTuple

from ._dz_bands import DZ_TILE, dz_level_sizes
from ._image_out import save_options
from ._jpeg_bands import jpeg_band_rows
from ._tiff_bands import TILE, pyramid_sizes, tiff_band_levels

__all__ = ["BAND_BYTES", "PYRAMID_BAND_BYTES", "BandPlace", "plan_bands"]

BAND_BYTES = 32 << 20  # pixels per task: big enough to amortise a task, small enough to keep a few in flight
PYRAMID_BAND_BYTES = 128 << 20  # a pyramid's bands are larger: each encodes the levels it holds whole tile rows of


class BandPlace(NamedTuple):
    """Where a band's pixels sit in the output, and how the band hands them over."""

    encoding: str = "stored"  # "stored", "deflate", "jpeg", "tiff" or "dz": see pipeline.render_band
    first_row: int = 0  # the band's first pixel row in the image
    skip_rows: int = 0  # rows of its cells above first_row: pyramids' bands cut through cells
    rows: int | None = None  # its pixel rows, if not all its cells'
    image_height: int = 0  # for pyramids
    levels: int = 1  # pyramid levels the band encodes itself, for pyramids
    margin: int = 0  # rows rendered beyond the band's own, above and below, for "dz": its tiles overlap


def plan_bands(kind: str, rows: int, cols: int, tile_px: int, threads: int) -> list[tuple[int, int, BandPlace]]:
    """Each band's rows of cells (first, end) and place, for output ``kind``: a few bands per thread.

    A pyramid's (``"tiff"``, ``"dz"``) bands are whole tile rows at every level
    they encode, within PYRAMID_BAND_BYTES-ish, and cut through cells; a Deep
    Zoom band's cells also cover its margins. Other bands are whole rows of cells,
    within BAND_BYTES-ish.
    """
    width, height = cols * tile_px, rows * tile_px
    if kind in ("tiff", "dz"):
        tile, sizes = (TILE, pyramid_sizes) if kind == "tiff" else (DZ_TILE, dz_level_sizes)
        levels = min(tiff_band_levels(width * 3, PYRAMID_BAND_BYTES, tile=tile), len(sizes(width, height)))
        while levels > 1 and -(-height // (tile << (levels - 1))) < 2 * threads:
            levels -= 1
        step, margin = tile << (levels - 1), (1 << (levels - 1)) if kind == "dz" else 0
        bands = []
        for top in range(0, height, step):
            start, stop = max(0, top - margin), min(height, top + step + margin)
            first_cell = start // tile_px
            bands.append((first_cell, -(-stop // tile_px), BandPlace(kind, top, top - first_cell * tile_px,
                                                                    min(height, top + step) - top, height, levels, margin)))
        return bands
    # A JPEG's bands start on rows of MCUs: their cell rows are a multiple of `step`.
    encoding = {"png": "deflate", "jpeg": "jpeg"}.get(kind, "stored")
    mcu = jpeg_band_rows(save_options("jpeg")["Q"])
    step = mcu // math.gcd(tile_px, mcu) if encoding == "jpeg" else 1
    band_rows = max(1, min(BAND_BYTES // (width * tile_px * 3), math.ceil(rows / (2 * threads))))
    # As many bands as keep every thread busy to the end (at 100 MP, 9 bands on 2 threads left one idle
    # for the last), of even size.
    bands = -(-math.ceil(rows / band_rows) // threads) * threads
    band_rows = -(-math.ceil(rows / bands) // step) * step
    return [(first, min(rows, first + band_rows), BandPlace(encoding, first * tile_px)) for first in range(0, rows, band_rows)]
