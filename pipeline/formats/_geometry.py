"""Band geometry the formats share: bands of whole cell rows, and bands of whole pyramid tile rows."""
from __future__ import annotations

import math
from typing import Callable

from ._protocol import BandPlace

__all__ = ["BAND_BYTES", "PYRAMID_BAND_BYTES", "cell_row_bands", "pyramid_band_levels", "pyramid_bands"]

BAND_BYTES = 32 << 20  # pixels per task: big enough to amortise a task, small enough to keep a few in flight
PYRAMID_BAND_BYTES = 128 << 20  # a pyramid's bands are larger: each encodes the levels it holds whole tile rows of


def cell_row_bands(rows: int, cols: int, tile_shape: tuple[int, int], threads: int, band_bytes: int | None = None,
                   step: int = 1) -> list[tuple[int, int, BandPlace]]:
    """Bands of whole rows of ``tile_shape`` (height, width) cells, within ``band_bytes``-ish (default BAND_BYTES),
    each a multiple of ``step`` rows."""
    tile_h, tile_w = tile_shape
    width = cols * tile_w
    band_bytes = BAND_BYTES if band_bytes is None else band_bytes
    band_rows = max(1, min(band_bytes // (width * tile_h * 3), math.ceil(rows / (2 * threads))))
    # As many bands as keep every thread busy to the end (at 100 MP, 9 bands on 2 threads left one idle
    # for the last), of even size.
    bands = -(-math.ceil(rows / band_rows) // threads) * threads
    band_rows = -(-math.ceil(rows / bands) // step) * step
    return [(first, min(rows, first + band_rows), BandPlace(first * tile_h)) for first in range(0, rows, band_rows)]


def pyramid_band_levels(row_bytes: int, budget_bytes: int, tile: int, most: int = 3) -> int:
    """Pyramid levels a band encodes itself: bands are ``tile * 2**(levels - 1)`` rows within ``budget_bytes``."""
    levels = 1
    while levels < most and tile * 2**levels * row_bytes <= budget_bytes:
        levels += 1
    return levels


def pyramid_bands(rows: int, cols: int, tile_shape: tuple[int, int], threads: int, tile: int,
                  level_sizes: Callable[[int, int], list[tuple[int, int]]], overlapping: bool,
                  band_bytes: int | None = None) -> list[tuple[int, int, BandPlace]]:
    """Bands of whole tile rows at every level they encode, within ``band_bytes``-ish (default PYRAMID_BAND_BYTES).

    They cut through cells (``tile_shape``: each cell's height and width, px); with
    ``overlapping`` tiles (Deep Zoom's reach 1 px into their neighbours) a band's cells
    also cover its margins.
    """
    tile_h, tile_w = tile_shape
    width, height = cols * tile_w, rows * tile_h
    band_bytes = PYRAMID_BAND_BYTES if band_bytes is None else band_bytes
    levels = min(pyramid_band_levels(width * 3, band_bytes, tile), len(level_sizes(width, height)))
    while levels > 1 and -(-height // (tile << (levels - 1))) < 2 * threads:
        levels -= 1
    step, margin = tile << (levels - 1), (1 << (levels - 1)) if overlapping else 0
    bands = []
    for top in range(0, height, step):
        start, stop = max(0, top - margin), min(height, top + step + margin)
        first_cell = start // tile_h
        bands.append((first_cell, -(-stop // tile_h), BandPlace(top, top - first_cell * tile_h,
                                                                min(height, top + step) - top, height, levels, margin)))
    return bands
