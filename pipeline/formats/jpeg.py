"""JPEG compressed in parallel: bands encoded apart, joined at restart markers into one baseline JPEG.

libvips's JPEG encoder runs on one thread. Here every row of MCUs (8 pixel rows,
16 when chroma is subsampled) is encoded on its own, by libjpeg-turbo through
simplejpeg (which frees the GIL, so band threads encode in parallel), as a JPEG
one MCU row high. Its entropy-coded scan is exactly what an encoder of the whole
image writes for that row after a restart marker: the same blocks (the bottom
edge is padded the same way), the same quantisation and Huffman tables, and DC
prediction starting afresh. A band's rows, with restart markers numbered for
their place in the image, are then one band of the whole image's scan; joined,
the bands decode to the same pixels as the whole image encoded at once.
"""
from __future__ import annotations

import math
import struct
from typing import Iterator, NamedTuple

import numpy as np
import simplejpeg

from ..errors import MosaicError
from ._file_output import FileOutput
from ._geometry import cell_row_bands
from ._protocol import BandPlace, BandSource

__all__ = ["JPEG", "JPEG_MAX_SIDE", "QUALITY", "JpegBand", "JpegFormat", "encode_jpeg_band", "header_segments",
           "jpeg_band_rows", "libvips_subsampling"]

QUALITY = 90  # libvips's default, and what its jpegsave writes here
JPEG_MAX_SIDE = 65500

_SOF_BASELINE, _SOS, _EOI = 0xC0, 0xDA, b"\xff\xd9"


class JpegBand(NamedTuple):
    """One band of a JPEG: its headers (only the first band's are written) and its entropy-coded scan."""

    header: bytes  # SOI up to and including the SOS segment, for an image of this band's height
    scan: bytes  # entropy-coded data, led by the restart marker that separates it from the band above
    rows: int
    width: int


def libvips_subsampling(quality: int) -> str:
    """simplejpeg's chroma subsampling for libvips's JPEG at ``quality``: 2x2 below 90, full resolution from 90 up."""
    return "444" if quality >= 90 else "420"


def jpeg_band_rows(quality: int) -> int:
    """Pixel rows in one row of MCUs: bands must start on a multiple of this."""
    return 8 if libvips_subsampling(quality) == "444" else 16


def encode_jpeg_band(pixels: np.ndarray, first_row: int, quality: int = QUALITY) -> JpegBand:
    """Encode rows ``first_row ..`` of an image (``pixels``, (h, w, 3) uint8) as a band of it.

    At libvips's ``jpegsave`` ``quality``, with chroma subsampled below 90 as
    libvips does. ``first_row`` must be a multiple of :func:`jpeg_band_rows`.
    """
    height, width = pixels.shape[:2]
    mcu = jpeg_band_rows(quality)
    if first_row % mcu:
        raise ValueError(f"a JPEG band must start on a row of MCUs ({mcu} px), not at row {first_row}")
    header, scans = b"", []
    for top in range(0, height, mcu):
        data = simplejpeg.encode_jpeg(np.ascontiguousarray(pixels[top : top + mcu]), quality=quality, colorspace="RGB",
                                      colorsubsampling=libvips_subsampling(quality), fastdct=False)
        start = _scan_start(data)
        header = header or data[:start]
        scans.append(data[start:-2])  # up to the EOI
    # The header of a JPEG one MCU row high, plus a restart interval of one row; jpeg_pieces sets the height.
    sos = next(start for marker, start, _ in header_segments(header) if marker == _SOS)
    header = header[:sos] + b"\xff\xdd" + struct.pack(">HH", 4, -(-width // mcu)) + header[sos:]
    mcu_row = first_row // mcu
    pieces = [bytes([0xFF, 0xD0 + (mcu_row - 1) % 8])] if mcu_row else []  # the marker after the band above
    for i, scan in enumerate(scans):
        pieces += [bytes([0xFF, 0xD0 + (mcu_row + i - 1) % 8]), scan] if i else [scan]
    return JpegBand(header, b"".join(pieces), height, width)


def header_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each header segment of a JPEG after SOI, up to and including SOS."""
    position = 2
    while True:
        marker = data[position + 1]
        end = position + 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
        yield marker, position, end
        if marker == _SOS:
            return
        position = end


def _set_jfif_density(header: bytearray, dpi: float) -> None:
    """Record ``dpi`` in the header's JFIF segment (APP0): units 1 (dots per inch), the same density across and down."""
    app0 = next((start for marker, start, _ in header_segments(bytes(header)) if marker == 0xE0), None)
    if app0 is None or header[app0 + 4 : app0 + 9] != b"JFIF\0":
        raise ValueError("the JPEG encoder wrote no JFIF segment to hold the resolution")
    density = max(1, min(65535, round(dpi)))
    header[app0 + 11 : app0 + 16] = struct.pack(">BHH", 1, density, density)


def _scan_start(data: bytes) -> int:
    return next(end for marker, _, end in header_segments(data) if marker == _SOS)


class JpegWriter(FileOutput):
    """Joins :class:`JpegBand` s, top to bottom, into one baseline JPEG: the first band's headers, every band's scan."""

    def add(self, band: JpegBand) -> None:
        first = self.bands.rows == 0
        self.bands.admit(band)
        if first:
            header = bytearray(band.header)
            sof = next(start for marker, start, _ in header_segments(band.header) if marker == _SOF_BASELINE)
            header[sof + 5 : sof + 7] = struct.pack(">H", self.height)
            if self.dpi is not None:
                _set_jfif_density(header, self.dpi)
            self.write([bytes(header)])
        self.write([band.scan])

    def finish(self) -> None:
        self.bands.check_complete()
        self.write([_EOI])


class JpegFormat:
    """Baseline JPEG, quality 90, no metadata: rows of MCUs encoded apart and joined at restart markers."""

    name = "jpeg"
    extensions = (".jpg", ".jpeg")
    description = "baseline JPEG, quality 90"
    # What libvips call writes the same file: the floor the benchmark measures, the reference in the tests.
    # No optimize_coding (libjpeg would hold every coefficient of the image to build its Huffman tables); no
    # metadata (libvips's EXIF block would carry one band's height when bands are encoded apart).
    libvips_save = {"Q": QUALITY, "keep": "none"}

    def check_size(self, width: int, height: int) -> None:
        if max(width, height) > JPEG_MAX_SIDE:
            raise MosaicError(f"{width}x{height} px is over JPEG's {JPEG_MAX_SIDE} px limit; write .tif (BigTIFF "
                              "pyramid), .dzi (Deep Zoom) or .png instead, or use a smaller `tile_px`")

    def plan_bands(self, rows: int, cols: int, tile_shape: tuple[int, int], threads: int,
                   band_bytes: int | None = None) -> list[tuple[int, int, BandPlace]]:
        # A JPEG's bands start on rows of MCUs: their cell rows are a multiple of `step`.
        mcu = jpeg_band_rows(QUALITY)
        return cell_row_bands(rows, cols, tile_shape, threads, band_bytes, step=mcu // math.gcd(tile_shape[0], mcu))

    def encode_band(self, source: BandSource, place: BandPlace) -> JpegBand:
        return encode_jpeg_band(source.canvas(), place.first_row)

    def open_writer(self, folder: str, name: str, width: int, height: int, dpi: float | None = None) -> JpegWriter:
        return JpegWriter(folder, name, width, height, dpi)


JPEG = JpegFormat()
