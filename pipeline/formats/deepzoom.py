"""Deep Zoom pyramids compressed in parallel: bands encode their own JPEG tiles, the writer files them.

The layout is libvips's ``dzsave(layout="dz", tile_size=254, overlap=1)``, which
OpenSeadragon reads: level ``n`` (``n = ceil(log2(max(width, height)))``) is the
image, each level below it the one above halved by 2x2 means, rounding up (an odd
last row or column is repeated), down to 1x1 at level 0. Every level is cut into
254 px tiles that reach 1 px into each neighbour, stored as
``<stem>_files/<level>/<column>_<row>.jpg``.

As with the TIFF (:mod:`pipeline.formats.tiff`), a band task encodes the tiles of
the rows it holds at full size and at as many levels below as it holds whole
tile rows of (a band is ``254 * 2**(k - 1)`` rows, starting on such a multiple),
and hands the writer the next level's rows, which it carries down the small
remaining levels itself. The overlap means a band's tiles need the rows just
outside it: a band of ``k`` levels is rendered ``2**(k - 1)`` rows deeper at top
and bottom (its *margin*), which halve to the one row each level needs.
"""
from __future__ import annotations

import html
import json
import os
import secrets
import shutil
from importlib import resources
from typing import NamedTuple, Sequence

import numpy as np
import simplejpeg

from ..files import write_all
from ._geometry import pyramid_bands
from ._protocol import BandPlace, BandSource
from ._pyramid import BandTally, halve
from .jpeg import QUALITY, libvips_subsampling

__all__ = ["DEEP_ZOOM", "DZ_OVERLAP", "DZ_TILE", "DeepZoomBand", "DeepZoomFormat", "DeepZoomWriter",
           "deep_zoom_descriptor", "dz_level_sizes", "encode_dz_band", "viewer_page"]

DZ_TILE, DZ_OVERLAP = 254, 1


def dz_level_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(width, height) of each level, full size first: halved, rounding up, down to 1x1."""
    sizes = [(width, height)]
    while sizes[-1] != (1, 1):
        width, height = (width + 1) // 2, (height + 1) // 2
        sizes.append((width, height))
    return sizes


def _span(index: int, size: int) -> tuple[int, int]:
    """Pixels [start, end) of tile row or column ``index`` of a level ``size`` pixels long, overlaps included."""
    return max(0, index * DZ_TILE - DZ_OVERLAP), min(size, (index + 1) * DZ_TILE + DZ_OVERLAP)


def _encode_tile_row(rows: np.ndarray, quality: int) -> list[bytes]:
    """The JPEG tiles of one tile row, left to right, from its pixel rows (overlaps included)."""
    subsampling = libvips_subsampling(quality)
    return [simplejpeg.encode_jpeg(np.ascontiguousarray(rows[:, slice(*_span(column, rows.shape[1]))]), quality=quality,
                                   colorspace="RGB", colorsubsampling=subsampling, fastdct=False)
            for column in range(-(-rows.shape[1] // DZ_TILE))]


class DeepZoomBand(NamedTuple):
    """One band of a Deep Zoom pyramid: its encoded tile rows, and the next level's rows for the writer."""

    tiles: list[tuple[int, int, list[bytes]]]  # (level index, full size first; tile row; tiles left to right)
    carry: np.ndarray | None  # the band's rows of level index ``carry_level``; None past the 1x1 level
    carry_level: int
    rows: int  # full-size rows the band is the owner of (without its margins)
    width: int
    quality: int


def encode_dz_band(levels: Sequence[np.ndarray], first_row: int, rows: int, height: int, quality: int) -> DeepZoomBand:
    """Encode rows ``first_row .. first_row + rows`` of an image ``height`` rows high as a band of its Deep Zoom pyramid.

    Parameters
    ----------
    levels : sequence of k ndarrays of uint8, (h_m, w_m, 3)
        The band's rows at level indices ``0 .. k - 1`` (full size first), each
        the 2x2 halving (odd edges repeated) of the one before, with margins:
        level ``m`` holds rows ``max(0, first_row - 2**(k - 1)) >> m`` up to
        ``min(height, first_row + rows + 2**(k - 1))`` halved ``m`` times, rounding up.
    first_row, rows : int
        The band's own rows: ``first_row`` a multiple of ``254 * 2**(k - 1)``, and
        ``rows`` too unless the band is the image's last.
    height : int
        The image's height.
    quality : int
        JPEG quality (chroma at full resolution from 90 up, as libvips's jpegsave).
    """
    width = levels[0].shape[1]
    sizes = dz_level_sizes(width, height)
    count = len(levels)
    step, margin = DZ_TILE << (count - 1), 1 << (count - 1)
    end = first_row + rows
    if count > len(sizes) or first_row % step or (rows % step and end != height) or end > height:
        raise ValueError(f"a band of {count} Deep Zoom levels must own whole multiples of {step} rows")
    start, stop = max(0, first_row - margin), min(height, end + margin)
    tiles = []
    for level, pixels in enumerate(levels):
        level_width, level_height = sizes[level]
        top = start >> level
        expected = (-(-stop // (1 << level)) - top, level_width, 3)
        if pixels.shape != expected:
            raise ValueError(f"the band's level {level} is {pixels.shape}, not {expected}")
        own_end = -(-end // (1 << level))
        for tile_row in range((first_row >> level) // DZ_TILE, -(-own_end // DZ_TILE)):
            row_start, row_end = _span(tile_row, level_height)
            tiles.append((level, tile_row, _encode_tile_row(pixels[row_start - top : row_end - top], quality)))
    carry = None
    if count < len(sizes):  # the band's own rows of the last level it encodes, halved
        last = count - 1
        own = levels[last][(first_row >> last) - (start >> last) : -(-end // (1 << last)) - (start >> last)]
        carry = halve(own, repeat_odd=True)
    return DeepZoomBand(tiles, carry, count, rows, width, quality)


def deep_zoom_descriptor(width: int, height: int, tile_format: str = "jpg") -> str:
    """The ``.dzi`` XML of a pyramid written by :class:`DeepZoomWriter`."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
            f'Format="{tile_format}" Overlap="{DZ_OVERLAP}" TileSize="{DZ_TILE}">\n'
            f'  <Size Width="{width}" Height="{height}"/>\n</Image>\n')


class DeepZoomWriter:
    """Writes a Deep Zoom pyramid ``<folder>/<stem>.dzi`` and ``<stem>_files/`` from :class:`DeepZoomBand` s, in order.

    Call :meth:`add` for each band, top to bottom, then :meth:`finish`. The
    writer files the bands' tiles and carries their last rows down the levels
    they left, holding at most a tile row and a band's rows per level.
    """

    def __init__(self, folder: str, stem: str, width: int, height: int) -> None:
        self._folder_path, self._stem = folder, stem
        self.sizes = dz_level_sizes(width, height)
        self._root = os.path.join(folder, stem + "_files")
        self._descriptor = os.path.join(folder, stem + ".dzi")
        os.mkdir(self._root)
        for level in range(len(self.sizes)):
            os.mkdir(self._folder(level))
        self._tile_rows_left = [-(-h // DZ_TILE) for _, h in self.sizes]
        self._bands = BandTally(width, height)
        self._held: dict[int, np.ndarray] = {}  # per carried level: the last rows received, not yet finished with
        self._received: dict[int, int] = {}  # rows received per carried level
        self._unpaired: dict[int, np.ndarray] = {}  # a level's odd last row received, waiting to be halved with the next

    def _folder(self, level: int) -> str:
        return os.path.join(self._root, str(len(self.sizes) - 1 - level))

    def _write(self, level: int, tile_row: int, tiles: list[bytes]) -> None:
        folder = self._folder(level)
        for column, data in enumerate(tiles):
            fd = os.open(os.path.join(folder, f"{column}_{tile_row}.jpg"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                write_all(fd, [data])
            finally:
                os.close(fd)
        self._tile_rows_left[level] -= 1

    def add(self, band: DeepZoomBand) -> None:
        """File a band's tiles and carry its rows down the levels it did not encode."""
        self._bands.admit(band)
        for level, tile_row, tiles in band.tiles:
            self._write(level, tile_row, tiles)
        if band.carry is not None:
            self._carry(band.carry_level, band.carry)

    def _carry(self, level: int, rows: np.ndarray) -> None:
        """Take the next rows of a level the bands left: encode the tile rows they complete, halve them onward."""
        level_height = self.sizes[level][1]
        received = self._received.get(level, 0) + len(rows)
        self._received[level] = received
        held = rows if level not in self._held else np.concatenate([self._held[level], rows])
        held_from = received - len(held)  # the level's row the held rows start at
        tile_row = -(-level_height // DZ_TILE) - self._tile_rows_left[level]
        while self._tile_rows_left[level] and _span(tile_row, level_height)[1] <= received:
            row_start, row_end = _span(tile_row, level_height)
            self._write(level, tile_row,
                        _encode_tile_row(held[row_start - held_from : row_end - held_from], self._bands.quality))
            tile_row += 1
        keep_from = _span(tile_row, level_height)[0] if self._tile_rows_left[level] else received
        self._held[level] = held[keep_from - held_from :]
        if level + 1 < len(self.sizes):
            unpaired = self._unpaired.pop(level, None)
            pending = rows if unpaired is None else np.concatenate([unpaired, rows])
            if received < level_height and len(pending) % 2:
                self._unpaired[level], pending = pending[-1:], pending[:-1]
            if len(pending):
                self._carry(level + 1, halve(pending, repeat_odd=True))

    def finish(self) -> None:
        """Check every tile was written, then write the ``.dzi`` descriptor."""
        self._bands.check_complete()
        missing = [level for level, left in enumerate(self._tile_rows_left) if left]
        if missing:
            raise ValueError(f"level {len(self.sizes) - 1 - missing[0]} is missing tile rows: the bands did not cover it")
        with open(self._descriptor, "w", encoding="utf-8") as f:
            f.write(deep_zoom_descriptor(*self.sizes[0]))

    def publish(self, path: str) -> None:
        """Move the finished pyramid beside ``path`` (``<stem>.dzi``): tiles first, the viewer page and .dzi last."""
        final_dir, name = os.path.split(path)
        width, height = self.sizes[0]
        page = viewer_page(name, name, width, height)
        stem, folder = self._stem, self._folder_path
        files_final = os.path.join(final_dir, stem + "_files")
        old = None
        if os.path.exists(files_final):
            old = os.path.join(final_dir, f".{stem}_files.{secrets.token_hex(4)}.old")
            os.rename(files_final, old)
        os.rename(self._root, files_final)
        with open(os.path.join(folder, stem + ".html"), "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(os.path.join(folder, stem + ".html"), os.path.join(final_dir, stem + ".html"))
        os.replace(self._descriptor, os.path.join(final_dir, stem + ".dzi"))
        if old:
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        pass  # every tile file is closed as soon as it is written


def viewer_page(title: str, dzi_name: str, width: int, height: int, tile_format: str = "jpg") -> str:
    """A zoomable OpenSeadragon page of the pyramid ``dzi_name`` beside it, working from ``file://`` too."""
    script = resources.files("pipeline").joinpath("data/viewer/openseadragon.min.js").read_text(encoding="utf-8")
    # The Deep Zoom descriptor is inlined, so the page also works from file:// (tiles load as plain <img>).
    source = {"Image": {"xmlns": "http://schemas.microsoft.com/deepzoom/2008", "Url": dzi_name[:-4] + "_files/",
                        "Format": tile_format, "Overlap": str(DZ_OVERLAP), "TileSize": str(DZ_TILE),
                        "Size": {"Width": str(width), "Height": str(height)}}}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>html, body {{ margin: 0; height: 100%; background: #111; }} #viewer {{ width: 100%; height: 100%; }}</style>
<script>{script}</script></head>
<body><div id="viewer"></div>
<script>
window.viewer = OpenSeadragon({{ id: "viewer", showNavigationControl: false, maxZoomPixelRatio: 4,
  tileSources: {json.dumps(source)} }});
</script></body></html>
"""


class DeepZoomFormat:
    """A Deep Zoom pyramid in libvips's dzsave layout, with a zoomable viewer page beside it."""

    name = "deepzoom"
    extensions = (".dzi",)
    description = "Deep Zoom pyramid (<stem>.dzi, <stem>_files/) plus a zoomable <stem>.html page"
    libvips_save = {"suffix": f".jpg[Q={QUALITY}]", "overlap": DZ_OVERLAP, "tile_size": DZ_TILE, "layout": "dz"}

    def check_size(self, width: int, height: int) -> None:
        pass  # tiles of any level are small

    def plan_bands(self, rows: int, cols: int, tile_shape: tuple[int, int], threads: int,
                   band_bytes: int | None = None) -> list[tuple[int, int, BandPlace]]:
        return pyramid_bands(rows, cols, tile_shape, threads, DZ_TILE, dz_level_sizes, True, band_bytes)

    def encode_band(self, source: BandSource, place: BandPlace) -> DeepZoomBand:
        """The band is rendered with its margins: its tiles reach into its neighbours."""
        start = max(0, place.first_row - place.margin)
        stop = min(place.image_height, place.first_row + place.rows + place.margin)
        levels = source.levels(place.skip_rows - (place.first_row - start), stop - start, place.levels, repeat_odd=True)
        return encode_dz_band(levels, place.first_row, place.rows, place.image_height, QUALITY)

    def open_writer(self, folder: str, name: str, width: int, height: int, dpi: float | None = None) -> DeepZoomWriter:
        # Deep Zoom is for screens: its descriptor has no place for a print resolution.
        return DeepZoomWriter(folder, os.path.splitext(name)[0], width, height)


DEEP_ZOOM = DeepZoomFormat()
