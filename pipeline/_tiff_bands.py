"""Tiled pyramidal BigTIFF compressed in parallel: bands encode their own JPEG tiles, the writer files them.

libvips's TIFF saver compresses tiles on its own threads, but every pixel must
first reach it through one stream. Here each band task encodes the 256 px JPEG
tiles of its rows, at full size and at as many pyramid levels as the band holds
whole tile rows of (a band is ``256 * 2**k`` rows, starting on such a multiple),
and hands back the next level's rows, which the writer carries down the small
remaining levels itself. Tiles may sit anywhere in a TIFF file: the writer
appends them as they come and writes the directories (IFDs) last.

The file is what libvips's ``tiffsave(tile=True, pyramid=True, bigtiff=True,
compression="jpeg")`` writes: the same level sizes (halved, rounded down, until
the level fits in one tile), the same 2x2 mean, and JPEG tiles with the tables
in ``JPEGTables``, RGB at quality >= 90 and YCbCr 4:2:0 below (libvips's choice).

The tiles themselves are libvips's: see :func:`encode_tiles`. The file's
pixels, at every level, are those of libvips's own pyramid of the same image.
"""
from __future__ import annotations

import os
import struct
from typing import NamedTuple, Sequence

import numpy as np
import pyvips
from PIL import Image

from ._files import write_all

__all__ = ["TILE", "PyramidTiffWriter", "TiffBand", "TiffTiles", "encode_tiff_band", "encode_tiles", "halve",
           "pyramid_sizes", "tiff_band_levels"]

TILE = 256


def pyramid_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(width, height) of each pyramid level, as libvips makes them: halved, rounded down, until one tile holds it."""
    sizes = [(width, height)]
    while (width > TILE or height > TILE) and width >= 2 and height >= 2:
        width, height = width // 2, height // 2
        sizes.append((width, height))
    return sizes


def tiff_band_levels(row_bytes: int, budget_bytes: int, most: int = 3) -> int:
    """Pyramid levels a band encodes itself: bands are ``TILE * 2**(levels - 1)`` rows within ``budget_bytes``."""
    levels = 1
    while levels < most and TILE * 2**levels * row_bytes <= budget_bytes:
        levels += 1
    return levels


def halve(pixels: np.ndarray) -> np.ndarray:
    """Each 2x2 block's mean, rounded (libvips's pyramid reduction); an odd last row or column is dropped."""
    height, width = pixels.shape[0] // 2, pixels.shape[1] // 2
    if height == 0 or width == 0:
        return np.empty((height, width, 3), np.uint8)
    image = Image.frombuffer("RGB", pixels.shape[1::-1], np.ascontiguousarray(pixels), "raw", "RGB", 0, 1)
    return np.asarray(image.reduce(2, box=(0, 0, 2 * width, 2 * height)))


class TiffTiles(NamedTuple):
    """Encoded tiles of whole tile rows of one pyramid level, row by row, left to right."""

    level: int
    first_tile_row: int
    buffer: bytes  # holds the tiles: abbreviated JPEG streams, whose tables are the file's JPEGTables
    offsets: np.ndarray  # int64, where each tile starts in buffer
    lengths: np.ndarray  # int64, each tile's bytes


class TiffBand(NamedTuple):
    """One band of a pyramidal TIFF: its tiles at the levels it holds whole, and the rows of the next level."""

    tiles: list[TiffTiles]
    carry: np.ndarray | None  # rows of level ``carry_level``, for the writer; None past the last level
    carry_level: int
    rows: int  # full-size rows
    width: int
    quality: int
    tables: bytes  # JPEGTables: SOI, the quantisation and Huffman tables, EOI


def encode_tiles(pixels: np.ndarray, quality: int) -> tuple[bytes, np.ndarray, np.ndarray, bytes]:
    """The 256 px JPEG tiles of ``pixels`` ((h, w, 3) uint8), row by row.

    Returns a buffer, where in it each tile starts, each one's length, and
    their JPEG tables. libvips's TIFF saver encodes them, into a small
    TIFF in memory: they are the very tiles it would write for these rows of a
    whole image (its pyramids' tiles too), and pyvips lets go of the GIL while it
    works, so band threads encode in parallel.
    """
    height, width = pixels.shape[:2]
    image = pyvips.Image.new_from_memory(np.ascontiguousarray(pixels).data, width, height, 3, "uchar")
    data = image.tiffsave_buffer(tile=True, tile_width=TILE, tile_height=TILE, compression="jpeg", Q=quality)
    tags = _first_directory(data)
    return data, tags[324].astype(np.int64), tags[325].astype(np.int64), tags[347].tobytes()


def _first_directory(data: bytes) -> dict[int, np.ndarray]:
    """The values of the first IFD of a classic little-endian TIFF in memory, by tag."""
    if data[:4] != b"II*\0":
        raise ValueError("libvips did not write a little-endian classic TIFF")
    position = struct.unpack_from("<I", data, 4)[0]
    tags = {}
    for i in range(struct.unpack_from("<H", data, position)[0]):
        tag, kind, count, value = struct.unpack_from("<HHII", data, position + 2 + 12 * i)
        dtype = {1: "u1", 3: "<u2", 4: "<u4", 7: "u1", 16: "<u8"}.get(kind)
        if dtype is None:
            continue
        size = np.dtype(dtype).itemsize * count
        start = position + 2 + 12 * i + 8 if size <= 4 else value
        tags[tag] = np.frombuffer(data, dtype, count, start)
    return tags


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
            buffer, offsets, lengths, self.tables = encode_tiles(block, self.quality)
            self.made.append(TiffTiles(level, self.next_tile_row[level], buffer, offsets, lengths))
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
    fmt = {3: "H", 4: "I", 7: "B", 16: "Q"}[kind]
    data = values if isinstance(values, bytes) else struct.pack(f"<{len(values)}{fmt}", *values)
    count = len(data) // struct.calcsize(fmt)
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

    def __init__(self, fd: int, width: int, height: int) -> None:
        self._fd, self._quality, self._rows_seen = fd, None, 0
        self.sizes = pyramid_sizes(width, height)
        self._across = [-(-w // TILE) for w, _ in self.sizes]
        self._offsets = [np.zeros(a * -(-h // TILE), np.uint64) for a, (_, h) in zip(self._across, self.sizes)]
        self._counts = [np.zeros_like(o) for o in self._offsets]
        self._levels: _Levels | None = None  # the levels the bands leave to the writer
        self._tables = b""
        self._position = 16
        write_all(fd, [b"\0" * 16])  # the header, filled in by finish()

    def _write_tiles(self, parts: list[TiffTiles]) -> None:
        for level, first_tile_row, buffer, offsets, lengths in parts:
            first = first_tile_row * self._across[level]
            self._counts[level][first : first + len(lengths)] = lengths
            self._offsets[level][first : first + len(lengths)] = self._position + np.cumsum(lengths) - lengths
            view = memoryview(buffer)
            write_all(self._fd, [view[start : start + length] for start, length in zip(offsets.tolist(), lengths.tolist())])
            self._position += int(lengths.sum())
        parts.clear()

    def add(self, band: TiffBand) -> None:
        """File a band's tiles and carry its rows down the levels it did not encode."""
        width, height = self.sizes[0]
        if band.width != width:
            raise ValueError(f"band {band.width} px wide does not fit a {width} px wide image")
        if self._quality is not None and band.quality != self._quality:
            raise ValueError(f"a band encoded at quality {band.quality} follows bands at {self._quality}")
        self._rows_seen += band.rows
        if self._rows_seen > height:
            raise ValueError(f"bands hold more than the {height} rows announced")
        self._quality, self._tables = band.quality, self._tables or band.tables
        self._write_tiles(list(band.tiles))
        if band.carry is not None:
            if self._levels is None:
                self._levels = _Levels(self.sizes, band.carry_level, len(self.sizes), 0, band.quality)
            self._levels.add(band.carry_level, band.carry)
            self._write_tiles(self._levels.made)

    def finish(self) -> None:
        """Encode what the levels carried here still hold, then write the directories."""
        if self._rows_seen != self.sizes[0][1]:
            raise ValueError(f"bands held {self._rows_seen} rows, {self.sizes[0][1]} were announced")
        if self._levels is not None:
            self._levels.finish()
            self._write_tiles(self._levels.made)
        missing = [level for level, counts in enumerate(self._counts) if not counts.all()]
        if missing:
            raise ValueError(f"pyramid level {missing[0]} is missing tiles: the bands did not cover the image")
        photometric, subsampling = (2, None) if self._quality >= 90 else (6, (2, 2))
        blob: list[bytes] = []
        position = self._position + (-self._position % 8)
        first_ifd = 0
        previous_next: int | None = None  # where in blob the previous IFD's "next" pointer sits
        for level, (width, height) in enumerate(self.sizes):
            tags = [(254, 4, [1])] if level else []
            tags += [(256, 4, [width]), (257, 4, [height]), (258, 3, [8, 8, 8]), (259, 3, [7]), (262, 3, [photometric]),
                     (277, 3, [3]), (284, 3, [1]), (322, 4, [TILE]), (323, 4, [TILE]),
                     (324, 16, self._offsets[level].tolist()), (325, 16, self._counts[level].tolist()),
                     (347, 7, self._tables)]
            tags += [(530, 3, list(subsampling))] if subsampling else []
            out_of_line: list[bytes] = []
            entries = []
            for tag, kind, values in tags:
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
