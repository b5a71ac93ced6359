"""Tiled pyramidal BigTIFF compressed in parallel: bands encode their own JPEG tiles, the writer files them.

libvips's TIFF saver compresses tiles on its own threads, but every pixel must
first reach it through one stream, and on two cores the stream and the band
tasks that make the pixels leave it short of CPU. Here each band task encodes
the 256 px JPEG tiles of its rows, at full size and at as many pyramid levels as
the band holds whole tile rows of (a band is ``256 * 2**k`` rows, starting on
such a multiple), and hands back the next level's rows, which the writer carries
down the small remaining levels itself. Tiles may sit anywhere in a TIFF file:
the writer appends them as they come and writes the directories (IFDs) last.

The layout is libvips's ``tiffsave(tile=True, pyramid=True, bigtiff=True,
compression="jpeg")``: the same level sizes (halved, rounded down, until the
level fits in one tile) and the same 2x2 mean. The tiles are libjpeg-turbo's,
through simplejpeg, which lets go of the GIL: YCbCr with full-resolution chroma
at quality >= 90 and 4:2:0 below (where libvips subsamples too), the tables in
``JPEGTables`` (TIFF Technical Note 2's layout, which libtiff writes and every
TIFF reader expects).
"""
from __future__ import annotations

import os
import struct
from typing import NamedTuple, Sequence

import numpy as np
import simplejpeg

from ..files import write_all
from ._file_output import FileOutput
from ._geometry import pyramid_bands
from ._protocol import BandPlace, BandSource
from ._pyramid import BandTally, halve
from .jpeg import QUALITY, header_segments, libvips_subsampling

__all__ = ["TIFF", "TILE", "PyramidTiffWriter", "TiffBand", "TiffFormat", "TiffTiles", "encode_tiff_band",
           "encode_tiles", "pyramid_sizes", "ycbcr_quality"]

TILE = 256


def pyramid_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(width, height) of each pyramid level, as libvips makes them: halved, rounded down, until one tile holds it."""
    sizes = [(width, height)]
    while (width > TILE or height > TILE) and width >= 2 and height >= 2:
        width, height = width // 2, height // 2
        sizes.append((width, height))
    return sizes


class TiffTiles(NamedTuple):
    """Encoded tiles of whole tile rows of one pyramid level, row by row, left to right."""

    level: int
    first_tile_row: int
    tiles: list[bytes]  # abbreviated JPEG streams: their tables are the file's JPEGTables


class TiffBand(NamedTuple):
    """One band of a pyramidal TIFF: its tiles at the levels it holds whole, and the rows of the next level."""

    tiles: list[TiffTiles]
    carry: np.ndarray | None  # rows of level ``carry_level``, for the writer; None past the last level
    carry_level: int
    rows: int  # full-size rows
    width: int
    quality: int
    tables: bytes  # JPEGTables: SOI, the quantisation and Huffman tables, EOI


def ycbcr_quality(quality: int) -> int:
    """The libjpeg quality of our YCbCr tiles that loses as much as libvips's TIFF tiles at ``quality``.

    At quality >= 90 libvips stores its JPEG tiles as RGB (no colour transform,
    no subsampling); on mosaic tiles, RGB at 90 has the mean error of YCbCr 4:4:4
    at 94, with 1.6 times its bytes (``tests/benchmarks/bench_assemble.py``
    prints both files' error and size). Below 90 both are YCbCr 4:2:0 at ``quality``.
    """
    return min(100, quality + 4) if quality >= 90 else quality


def encode_tiles(pixels: np.ndarray, quality: int) -> tuple[list[bytes], bytes]:
    """The 256 px JPEG tiles of ``pixels`` ((h, w, 3) uint8) at libvips's ``quality``, row by row, and their tables.

    Tiles at the right and bottom edges are padded to full size with black, as
    libvips pads them: TIFF tiles are always whole, and black blocks cost next to
    nothing (repeating the edge pixels made a narrow image's file up to 6 times
    larger). Each tile is an
    abbreviated JPEG stream (SOI, SOF, SOS, scan, EOI); the tables, the same
    for every tile of one quality, come back as a ``JPEGTables`` value.
    """
    height, width = pixels.shape[:2]
    tiles, tables = [], b""
    for top in range(0, height, TILE):
        for left in range(0, width, TILE):
            tile = pixels[top : top + TILE, left : left + TILE]
            if tile.shape[:2] != (TILE, TILE):
                padded = np.zeros((TILE, TILE, 3), np.uint8)
                padded[: tile.shape[0], : tile.shape[1]] = tile
                tile = padded
            data = simplejpeg.encode_jpeg(np.ascontiguousarray(tile), quality=ycbcr_quality(quality), colorspace="RGB",
                                          colorsubsampling=libvips_subsampling(quality))
            segments = list(header_segments(data))
            frame = next(data[start:end] for marker, start, end in segments if marker == 0xC0)
            tiles.append(b"\xff\xd8" + frame + data[segments[-1][1] :])  # SOI, SOF, then from SOS on
            tables = tables or b"".join([b"\xff\xd8", *(data[start:end] for marker, start, end in segments
                                                       if marker in (0xDB, 0xC4)), b"\xff\xd9"])
    return tiles, tables


class _Levels:
    """Rows flowing down pyramid levels ``first .. stop - 1``: each tile row is encoded once whole, then halved.

    Rows that reach level ``stop`` are kept in ``carry``. Encoded tiles collect
    in ``made``. Used by a band (levels 0 ..) and by the writer (the rest). The
    levels in ``given`` are not halved into: their rows come from elsewhere.
    """

    def __init__(self, sizes: list[tuple[int, int]], first: int, stop: int, first_row: int, quality: int,
                 given: frozenset[int] = frozenset()) -> None:
        self.sizes, self.stop, self.quality, self.given = sizes, stop, quality, given
        self.pending: dict[int, list[np.ndarray]] = {level: [] for level in range(first, stop)}
        self.next_tile_row = {level: (first_row >> (level - first)) // TILE for level in range(first, stop)}
        self.made: list[TiffTiles] = []
        self.carry: list[np.ndarray] = []
        self.tables = b""

    def add(self, level: int, rows: np.ndarray, final: bool = False) -> None:
        if level == self.stop:
            self.carry.append(rows)
            return
        pending = self.pending[level]
        if len(rows):
            pending.append(rows)
        while pending and (final or sum(len(p) for p in pending) >= TILE):
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            pending.clear()
            whole = len(joined) if final else len(joined) // TILE * TILE  # all the whole tile rows at hand
            block, rest = joined[:whole], joined[whole:]
            if len(rest):
                pending.append(rest)
            tiles, self.tables = encode_tiles(block, self.quality)
            self.made.append(TiffTiles(level, self.next_tile_row[level], tiles))
            self.next_tile_row[level] += -(-len(block) // TILE)
            if level + 1 < len(self.sizes) and level + 1 not in self.given:
                self.add(level + 1, halve(block))

    def finish(self) -> None:
        """Encode the rows each level still holds: the image's last, partial tile rows."""
        for level in self.pending:
            self.add(level, np.empty((0, self.sizes[level][0], 3), np.uint8), final=True)


def encode_tiff_band(pixels: np.ndarray, first_row: int, height: int, quality: int, levels: int,
                     reduced: Sequence[np.ndarray] = ()) -> TiffBand:
    """Encode rows ``first_row ..`` of an image ``height`` rows high as a band of its pyramidal TIFF (on a worker).

    ``pixels`` (h, w, 3) uint8 are the band's full-size rows; ``first_row`` is a
    multiple of ``256 * 2**(levels - 1)`` and ``h`` is that much too, unless the
    band is the image's last. The band encodes ``levels`` levels (fewer if the
    pyramid has fewer) and returns the next level's rows as its ``carry``.

    ``reduced`` may hold the band's rows at levels 1, 2, .. already made (each
    :func:`halve` of the one before, as a mosaic's are when the halves of its
    tiles are laid out): those levels are then not halved from the one above.
    """
    width = pixels.shape[1]
    sizes = pyramid_sizes(width, height)
    levels = min(levels, len(sizes))
    step = TILE << (levels - 1)
    if first_row % step or (pixels.shape[0] % step and first_row + pixels.shape[0] != height):
        raise ValueError(f"a band of a {levels}-level TIFF must cover whole multiples of {step} rows")
    reduced = list(reduced[: len(sizes) - 1])
    for level, rows in enumerate(reduced, 1):
        expected = (((first_row + pixels.shape[0]) >> level) - (first_row >> level), sizes[level][0], 3)
        if rows.shape != expected:
            raise ValueError(f"the band's level {level} is {rows.shape}, not {expected}")
    chain = _Levels(sizes, 0, levels, first_row, quality, frozenset(range(1, len(reduced) + 1)))
    for level, rows in enumerate([pixels, *reduced]):
        if level < levels:
            chain.add(level, rows)
        elif level == levels:
            chain.carry.append(rows)
    chain.finish()  # only the image's last band has partial tile rows left
    carry = (np.concatenate(chain.carry) if chain.carry else np.empty((0, sizes[levels][0], 3), np.uint8)) \
        if levels < len(sizes) else None
    return TiffBand(chain.made, carry, levels, pixels.shape[0], width, quality, chain.tables)


def _entry(tag: int, kind: int, values, out_of_line: list[bytes], position: int) -> tuple[bytes, int]:
    fmt = {3: "H", 4: "I", 5: "I", 7: "B", 16: "Q"}[kind]  # 5, RATIONAL: numerator and denominator
    data = values if isinstance(values, bytes) else struct.pack(f"<{len(values)}{fmt}", *values)
    count = len(data) // (8 if kind == 5 else struct.calcsize(fmt))
    if len(data) <= 8:
        return struct.pack("<HHQ", tag, kind, count) + data.ljust(8, b"\0"), position
    out_of_line.append(data + b"\0" * (-len(data) % 8))
    return struct.pack("<HHQQ", tag, kind, count, position), position + len(out_of_line[-1])


class PyramidTiffWriter:
    """Writes a tiled pyramidal BigTIFF from :class:`TiffBand` s, in image order, to a new file's descriptor.

    Call :meth:`add` for each band, top to bottom, then :meth:`finish`. Tiles are
    appended as they come; the directories go last and the header is then
    pointed at them.
    """

    def __init__(self, fd: int, width: int, height: int, dpi: float | None = None) -> None:
        self._fd, self._bands, self._dpi = fd, BandTally(width, height), dpi
        self.sizes = pyramid_sizes(width, height)
        self._across = [-(-w // TILE) for w, _ in self.sizes]
        self._offsets = [np.zeros(a * -(-h // TILE), np.uint64) for a, (_, h) in zip(self._across, self.sizes)]
        self._counts = [np.zeros_like(o) for o in self._offsets]
        self._levels: _Levels | None = None  # the levels the bands leave to the writer
        self._tables = b""
        self._position = 16
        write_all(fd, [b"\0" * 16])  # the header, filled in by finish()

    def _write_tiles(self, parts: list[TiffTiles]) -> None:
        for level, first_tile_row, tiles in parts:
            first = first_tile_row * self._across[level]
            lengths = np.fromiter(map(len, tiles), np.uint64, len(tiles))
            self._counts[level][first : first + len(tiles)] = lengths
            self._offsets[level][first : first + len(tiles)] = self._position + np.cumsum(lengths) - lengths
            write_all(self._fd, list(tiles))
            self._position += int(lengths.sum())
        parts.clear()

    def add(self, band: TiffBand) -> None:
        """File a band's tiles and carry its rows down the levels it did not encode."""
        self._bands.admit(band)
        self._tables = self._tables or band.tables
        self._write_tiles(list(band.tiles))
        if band.carry is not None:
            if self._levels is None:
                self._levels = _Levels(self.sizes, band.carry_level, len(self.sizes), 0, band.quality)
            self._levels.add(band.carry_level, band.carry)
            self._write_tiles(self._levels.made)

    def finish(self) -> None:
        """Encode what the levels carried here still hold, then write the directories."""
        self._bands.check_complete()
        if self._levels is not None:
            self._levels.finish()
            self._write_tiles(self._levels.made)
        missing = [level for level, counts in enumerate(self._counts) if not counts.all()]
        if missing:
            raise ValueError(f"pyramid level {missing[0]} is missing tiles: the bands did not cover the image")
        subsampling = (1, 1) if libvips_subsampling(self._bands.quality) == "444" else (2, 2)
        blob: list[bytes] = []
        position = self._position + (-self._position % 8)
        first_ifd = 0
        previous_next: int | None = None  # where in blob the previous IFD's "next" pointer sits
        for level, (width, height) in enumerate(self.sizes):
            tags = [(254, 4, [1])] if level else []
            tags += [(256, 4, [width]), (257, 4, [height]), (258, 3, [8, 8, 8]), (259, 3, [7]), (262, 3, [6]),
                     (277, 3, [3]), (284, 3, [1]), (322, 4, [TILE]), (323, 4, [TILE]),
                     (324, 16, self._offsets[level].tolist()), (325, 16, self._counts[level].tolist()),
                     (347, 7, self._tables)]
            if self._dpi is not None:  # X and Y resolution as hundredths of a dot per inch; unit 2: inch
                resolution = [max(1, round(self._dpi / 2**level * 100)), 100]
                tags += [(282, 5, resolution), (283, 5, resolution), (296, 3, [2])]
            tags += [(530, 3, list(subsampling))]  # YCbCr: the default would say 4:2:0
            out_of_line: list[bytes] = []
            entries = []
            for tag, kind, values in sorted(tags, key=lambda entry: entry[0]):  # a directory lists its tags in order
                entry, position = _entry(tag, kind, values, out_of_line, position)
                entries.append(entry)
            ifd_at = position
            ifd = struct.pack("<Q", len(entries)) + b"".join(entries) + b"\0" * 8
            if previous_next is None:
                first_ifd = ifd_at
            else:
                blob[previous_next] = struct.pack("<Q", ifd_at)
            blob += out_of_line
            blob.append(ifd[:-8])
            blob.append(ifd[-8:])
            previous_next = len(blob) - 1
            position = ifd_at + len(ifd)
        padding = b"\0" * (-self._position % 8)
        write_all(self._fd, [padding, *blob])
        os.pwrite(self._fd, b"II" + struct.pack("<HHHQ", 43, 8, 0, first_ifd), 0)


class _TiffOutput(FileOutput):
    """A :class:`PyramidTiffWriter` on a file of its own, renamed into place when published."""

    def __init__(self, folder: str, name: str, width: int, height: int, dpi: float | None = None) -> None:
        super().__init__(folder, name, width, height, dpi)
        self._pyramid = PyramidTiffWriter(self.fd, width, height, dpi)

    def add(self, band: TiffBand) -> None:
        self._pyramid.add(band)

    def finish(self) -> None:
        self._pyramid.finish()


class TiffFormat:
    """Tiled pyramidal BigTIFF: 256 px JPEG tiles, a pyramid of half-size pages, bands encoding their own tiles."""

    name = "tiff"
    extensions = (".tif", ".tiff")
    description = "tiled pyramidal BigTIFF, 256 px JPEG tiles"
    libvips_save = {"tile": True, "pyramid": True, "bigtiff": True, "compression": "jpeg", "Q": QUALITY,
                    "tile_width": TILE, "tile_height": TILE}

    def check_size(self, width: int, height: int) -> None:
        pass  # BigTIFF's offsets are 64-bit

    def plan_bands(self, rows: int, cols: int, tile_shape: tuple[int, int], threads: int,
                   band_bytes: int | None = None) -> list[tuple[int, int, BandPlace]]:
        return pyramid_bands(rows, cols, tile_shape, threads, TILE, pyramid_sizes, False, band_bytes)

    def encode_band(self, source: BandSource, place: BandPlace) -> TiffBand:
        """The band's levels 1, 2, .. are made here too, as the next level's rows to hand on."""
        width = source.shape[1]
        wanted = min(place.levels, len(pyramid_sizes(width, place.image_height)) - 1)
        levels = source.levels(place.skip_rows, place.rows, wanted + 1, repeat_odd=False)
        return encode_tiff_band(levels[0], place.first_row, place.image_height, QUALITY, place.levels, levels[1:])

    def open_writer(self, folder: str, name: str, width: int, height: int, dpi: float | None = None) -> _TiffOutput:
        return _TiffOutput(folder, name, width, height, dpi)


TIFF = TiffFormat()
