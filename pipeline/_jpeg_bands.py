"""JPEG compressed in parallel: bands encoded apart, joined at restart markers into one baseline JPEG.

libvips's JPEG encoder runs on one thread. Here each band is encoded on its own
(by libvips, at the image's full width, with the same tables) with a restart
marker after every row of MCUs, so the entropy coder starts afresh exactly where
the next band begins. The bands' scans, with their restart markers renumbered
for their place in the image, are then one scan of the whole image: it decodes
to the same pixels as the whole image encoded at once (same blocks, same
quantisation, same Huffman tables).
"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import pyvips

__all__ = ["JpegBand", "encode_jpeg_band", "jpeg_band_rows", "jpeg_pieces"]

_SOF_BASELINE, _SOS, _EOI = 0xC0, 0xDA, b"\xff\xd9"


class JpegBand(NamedTuple):
    """One band of a JPEG: its headers (only the first band's are written) and its entropy-coded scan."""

    header: bytes  # SOI up to and including the SOS segment, for an image of this band's height
    scan: bytes  # entropy-coded data, led by the restart marker that separates it from the band above
    rows: int
    width: int


def jpeg_band_rows(quality: int) -> int:
    """Pixel rows in one row of MCUs: bands must start on a multiple of this."""
    return 8 if quality >= 90 else 16  # libvips subsamples chroma (2x2) below quality 90


def encode_jpeg_band(pixels: np.ndarray, first_row: int, options: dict) -> JpegBand:
    """Encode rows ``first_row ..`` of an image (``pixels``, (h, w, 3) uint8) as a band of it.

    ``options`` are libvips's ``jpegsave`` options (:func:`pipeline.save_options`);
    ``first_row`` must be a multiple of :func:`jpeg_band_rows`.
    """
    height, width = pixels.shape[:2]
    mcu = jpeg_band_rows(options["Q"])
    if first_row % mcu:
        raise ValueError(f"a JPEG band must start on a row of MCUs ({mcu} px), not at row {first_row}")
    image = pyvips.Image.new_from_memory(np.ascontiguousarray(pixels).data, width, height, 3, "uchar")
    data = image.jpegsave_buffer(**options, restart_interval=-(-width // mcu))
    header_end = _scan_start(data)
    scan = np.frombuffer(data, np.uint8, count=len(data) - header_end - 2, offset=header_end).copy()
    # In entropy-coded data 0xFF is followed by a stuffed 0x00 or by a marker; the only markers are RSTn.
    markers = np.flatnonzero((scan[:-1] == 0xFF) & ((scan[1:] & 0xF8) == 0xD0)) + 1
    mcu_row = first_row // mcu
    scan[markers] = 0xD0 + (mcu_row + np.arange(len(markers))) % 8
    lead = bytes([0xFF, 0xD0 + (mcu_row - 1) % 8]) if mcu_row else b""
    return JpegBand(data[:header_end], lead + scan.tobytes(), height, width)


def _segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each header segment after SOI, up to and including SOS."""
    position = 2
    while True:
        marker = data[position + 1]
        end = position + 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
        yield marker, position, end
        if marker == _SOS:
            return
        position = end


def _scan_start(data: bytes) -> int:
    return next(end for marker, _, end in _segments(data) if marker == _SOS)


def jpeg_pieces(width: int, height: int, bands: Iterable[JpegBand]) -> Iterator[bytes]:
    """The bytes of one JPEG of ``width`` x ``height`` made of ``bands``, top to bottom."""
    rows_seen = 0
    for band in bands:
        if band.width != width:
            raise ValueError(f"band {band.width} px wide does not fit a {width} px wide image")
        if rows_seen == 0:
            header = bytearray(band.header)
            sof = next(start for marker, start, _ in _segments(band.header) if marker == _SOF_BASELINE)
            header[sof + 5 : sof + 7] = struct.pack(">H", height)
            yield bytes(header)
        rows_seen += band.rows
        if rows_seen > height:
            raise ValueError(f"bands hold more than the {height} rows announced")
        yield band.scan
    if rows_seen != height:
        raise ValueError(f"bands held {rows_seen} rows, {height} were announced")
    yield _EOI
