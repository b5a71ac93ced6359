"""Writing a mosaic to disk strip by strip, so no output size needs it whole in memory.

A PNG, and a JPEG, tiled TIFF or Deep Zoom pyramid whose bands were encoded
apart (:mod:`pipeline._jpeg_bands`, :mod:`pipeline._tiff_bands`,
:mod:`pipeline._dz_bands`), are written here: their strips come compressed, as
separate segments of one stream or as tiles. libvips encodes the rest (JPEG, TIFF
and Deep Zoom from plain arrays) from a sequential source. The strips reach it
as an uncompressed PNG byte stream through a socket: PNG is the one sequential raw-ish format every libvips build
(including pyvips-binary's) can load from a stream (pyvips-binary has no PPM or
raw loader for streams). "Stored" deflate blocks cost only the checksums, which
zlib-ng computes at ~30 GB/s; the pixels are copied once on their way, into the
socket.
"""
from __future__ import annotations

import contextlib
import html
import itertools
import json
import os
import secrets
import shutil
import socket
import struct
import threading
from importlib import resources
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import pyvips
from zlib_ng import zlib_ng as _checksums

from ._errors import MosaicError
from ._dz_bands import DZ_OVERLAP, DZ_TILE, DeepZoomBand, DeepZoomWriter
from ._files import write_all
from ._jpeg_bands import JpegBand, jpeg_pieces
from ._tiff_bands import PyramidTiffWriter, TiffBand

__all__ = ["OUTPUT_FORMATS", "DeflatedRows", "EncodedRows", "check_output", "deflate_rows", "encode_rows", "png_rows",
           "save_options", "write_image", "write_strips"]

OUTPUT_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dzi": "dz"}
JPEG_MAX_SIDE = 65500
_STORED_BLOCK = 65535  # the most one uncompressed deflate block may hold
PNG_LEVEL = 1  # zlib level 1: a few percent larger than 6, several times faster


def check_output(path: str, width: int, height: int) -> str:
    """The output format for ``path``; a :class:`MosaicError` if it cannot hold ``width`` x ``height``."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in OUTPUT_FORMATS:
        raise MosaicError(f"cannot write {path}: output must end in one of {', '.join(sorted(OUTPUT_FORMATS))}")
    if OUTPUT_FORMATS[extension] == "jpeg" and max(width, height) > JPEG_MAX_SIDE:
        raise MosaicError(f"{width}x{height} px is over JPEG's {JPEG_MAX_SIDE} px limit; write .tif (BigTIFF pyramid), "
                          ".dzi (Deep Zoom) or .png instead, or use a smaller --tile-px")
    return OUTPUT_FORMATS[extension]


def save_options(kind: str, quality: int = 90) -> dict:
    """libvips save options per format, shared by the streamed writer and the benchmark's in-memory floor."""
    return {
        # No optimize_coding: libjpeg would hold every coefficient of the image to build its Huffman tables.
        # No metadata: libvips's EXIF block would carry one band's height when bands are encoded apart.
        "jpeg": {"Q": quality, "keep": "none"},
        "png": {"compression": PNG_LEVEL},
        "tiff": {"tile": True, "pyramid": True, "bigtiff": True, "compression": "jpeg", "Q": quality,
                 "tile_width": 256, "tile_height": 256},
        "dz": {"suffix": f".jpg[Q={quality}]", "overlap": 1, "tile_size": 254, "layout": "dz"},
    }[kind]


def _chunk(kind: bytes, *parts: bytes) -> list[bytes]:
    crc = _checksums.crc32(kind)
    for part in parts:
        crc = _checksums.crc32(part, crc)
    return [struct.pack(">I", sum(len(p) for p in parts)) + kind, *parts, struct.pack(">I", crc)]


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """Adler-32 of two byte strings joined, from theirs (zlib's adler32_combine, which Python does not expose)."""
    base = 65521
    remainder = second_length % base
    low = (first & 0xFFFF) + (second & 0xFFFF) + base - 1
    high = (remainder * (first & 0xFFFF)) % base + ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + base - remainder
    return (low % base) | ((high % base) << 16)


class EncodedRows(NamedTuple):
    """Image rows as PNG image data: the raw rows plus what frames them, so nothing needs to copy the pixels.

    ``raw`` is the rows as the zlib stream carries them (a filter byte, then the
    pixels). The stream cuts it into stored deflate blocks of at most 65,535
    bytes, each in its own IDAT chunk; ``crcs`` holds each chunk's checksum.
    The stream writer sends the short headers and the slices of ``raw`` together
    (``writev``), so the pixels are copied once, into the socket. Made by
    :func:`encode_rows` where the pixels are (on a worker).
    """

    raw: np.ndarray  # uint8 (rows, 1 + 3 * width)
    crcs: np.ndarray  # uint32, one per block of _STORED_BLOCK bytes of raw
    adler32: int  # of raw, for the zlib stream's trailer

    @property
    def rows(self) -> int:
        return self.raw.shape[0]

    @property
    def width(self) -> int:
        return (self.raw.shape[1] - 1) // 3


def png_rows(rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A buffer for ``rows`` PNG rows of ``width`` RGB pixels, and a (rows, width, 3) view of its pixels.

    Draw into the view, then frame the buffer with :func:`encode_rows`: the
    pixels are then never copied on their way to the writer.
    """
    raw = np.empty((rows, 1 + 3 * width), np.uint8)
    raw[:, 0] = 0  # PNG filter type "None" for every row
    return raw, raw[:, 1:].reshape(rows, width, 3)


def _block_prefix(length: int) -> bytes:
    """An IDAT chunk's length and type, then the header of the one stored deflate block it holds."""
    return struct.pack(">I", 5 + length) + b"IDAT" + struct.pack("<BHH", 0, length, 0xFFFF ^ length)


def _as_png_rows(strip: np.ndarray) -> np.ndarray:
    """RGB rows (h, w, 3) copied into a :func:`png_rows` buffer, or such a buffer as it is."""
    if strip.dtype != np.uint8 or strip.ndim not in (2, 3) or (strip.ndim == 3 and strip.shape[2] != 3):
        raise ValueError(f"strip of shape {strip.shape} {strip.dtype} is not RGB rows")
    if strip.ndim == 2:
        if (strip.shape[1] - 1) % 3 or not strip.flags.c_contiguous:
            raise ValueError(f"a raw strip of shape {strip.shape} is not rows from png_rows")
        return strip
    raw, pixels = png_rows(*strip.shape[:2])
    pixels[...] = strip
    return raw


def encode_rows(strip: np.ndarray) -> EncodedRows:
    """Frame RGB rows as uncompressed PNG image data; see :class:`EncodedRows`.

    ``strip`` is (h, w, 3) uint8, or the buffer from :func:`png_rows` (then it is
    not copied).
    """
    raw = _as_png_rows(strip)
    data = raw.reshape(-1)
    crcs = np.empty(-(-len(data) // _STORED_BLOCK), np.uint32)
    full = _checksums.crc32(_block_prefix(_STORED_BLOCK)[4:])
    for i, start in enumerate(range(0, len(data), _STORED_BLOCK)):
        block = data[start : start + _STORED_BLOCK]
        head = full if len(block) == _STORED_BLOCK else _checksums.crc32(_block_prefix(len(block))[4:])
        crcs[i] = _checksums.crc32(block, head)
    return EncodedRows(raw, crcs, _checksums.adler32(data))


class DeflatedRows(NamedTuple):
    """Image rows as compressed PNG image data: a raw deflate segment that ends on a byte boundary.

    Segments compressed separately join into one valid zlib stream (pigz's way of
    compressing in parallel), so the workers, not one encoder, compress a PNG.
    Made by :func:`deflate_rows`.
    """

    data: bytes
    rows: int
    width: int
    adler32: int  # of the raw rows
    raw_length: int


def deflate_rows(strip: np.ndarray, level: int = PNG_LEVEL) -> DeflatedRows:
    """Compress RGB rows (h, w, 3), or a :func:`png_rows` buffer, as one segment of a PNG's zlib stream.

    zlib-ng at ``level`` 1, with PNG's "None" filter: what libvips writes at
    ``compression=1`` (the same size within 0.2 % on a mosaic band), at 1.3 GB/s a core.
    """
    raw = _as_png_rows(strip)
    data = raw.reshape(-1)
    compressor = _checksums.compressobj(level, _checksums.DEFLATED, -15)  # raw deflate: no header or trailer
    deflated = compressor.compress(data) + compressor.flush(_checksums.Z_SYNC_FLUSH)
    return DeflatedRows(deflated, raw.shape[0], (raw.shape[1] - 1) // 3, _checksums.adler32(data), len(data))


def _framed_pieces(encoded: EncodedRows) -> list[bytes | np.ndarray]:
    # bytes and ndarray slices, not memoryviews: the garbage collector tracks memoryviews, and
    # ~100,000 of them per gigapixel set off collections that took 7 % of a render's CPU.
    data = encoded.raw.reshape(-1)
    full = _block_prefix(_STORED_BLOCK)
    crcs = encoded.crcs.astype(">u4").tobytes()
    pieces: list[bytes | np.ndarray] = []
    for i, start in enumerate(range(0, len(data), _STORED_BLOCK)):
        block = data[start : start + _STORED_BLOCK]
        pieces += [full if len(block) == _STORED_BLOCK else _block_prefix(len(block)), block, crcs[4 * i : 4 * i + 4]]
    return pieces


def _png_stream(width: int, height: int, strips: Iterable[np.ndarray | EncodedRows | DeflatedRows], *,
                deflate: bool = False) -> Iterator[list[bytes | np.ndarray]]:
    """Pieces of an 8-bit RGB PNG whose pixel rows are the strips'; arrays are stored, or deflated if ``deflate``."""
    yield [b"\x89PNG\r\n\x1a\n", *_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
           *_chunk(b"IDAT", b"\x78\x01")]  # the zlib header; decoders join all IDAT chunks into one stream
    adler, rows_seen = 1, 0
    for strip in strips:
        if deflate and not isinstance(strip, DeflatedRows):
            strip = deflate_rows(strip.raw if isinstance(strip, EncodedRows) else strip)
        elif isinstance(strip, np.ndarray):
            strip = encode_rows(strip)
        if strip.width != width:
            raise ValueError(f"strip {strip.width} px wide does not fit a {width} px wide image")
        rows_seen += strip.rows
        if rows_seen > height:
            raise ValueError(f"strips hold more than the {height} rows announced")
        if isinstance(strip, DeflatedRows):
            adler = _adler32_combine(adler, strip.adler32, strip.raw_length)
            yield [piece for start in range(0, len(strip.data), 1 << 30)  # a chunk holds < 2 GiB
                   for piece in _chunk(b"IDAT", strip.data[start : start + (1 << 30)])]
        else:
            adler = _adler32_combine(adler, strip.adler32, strip.raw.size)
            yield _framed_pieces(strip)
    if rows_seen != height:
        raise ValueError(f"strips held {rows_seen} rows, {height} were announced")
    yield [*_chunk(b"IDAT", b"\x01\x00\x00\xff\xff", struct.pack(">I", adler)), *_chunk(b"IEND")]


@contextlib.contextmanager
def _streamed_image(width: int, height: int, strips: Iterable[np.ndarray | EncodedRows]) -> Iterator[pyvips.Image]:
    """A sequential pyvips image fed from ``strips`` by a thread; re-raises the feeder's error, if any."""
    # A Unix socket pair, not a pipe: libvips reads 4 KiB at a time, and a full pipe wakes its
    # writer for every page read, so each 4 KiB cost two context switches; a socket's writer
    # sleeps until a quarter of its buffer is free. Streaming 1 GP into jpegsave took 16.0
    # CPU-s through a pipe, 11.4 through a socket pair (floor 9.5).
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for end in (reader, writer):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    read_end, write_end = reader.detach(), writer.detach()
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            for parts in _png_stream(width, height, strips):
                write_all(write_end, parts)
        except (BrokenPipeError, ConnectionResetError):
            pass  # libvips stopped reading: its own error is the one to report
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            failure.append(exc)
        finally:
            os.close(write_end)

    feeder = threading.Thread(target=feed, name="mosaic-strip-feeder", daemon=True)
    feeder.start()
    try:
        source = pyvips.Source.new_from_descriptor(read_end)
        image = pyvips.Image.new_from_source(source, "", access="sequential")
        yield image
    except pyvips.Error:
        if not failure:
            raise
    finally:
        os.close(read_end)  # unblocks a feeder still writing
        feeder.join()
    if failure:
        raise failure[0]


def _viewer_page(title: str, dzi_name: str, width: int, height: int, tile_size: int, overlap: int, tile_format: str) -> str:
    script = resources.files("pipeline").joinpath("data/viewer/openseadragon.min.js").read_text(encoding="utf-8")
    # The Deep Zoom descriptor is inlined, so the page also works from file:// (tiles load as plain <img>).
    source = {"Image": {"xmlns": "http://schemas.microsoft.com/deepzoom/2008", "Url": dzi_name[:-4] + "_files/",
                        "Format": tile_format, "Overlap": str(overlap), "TileSize": str(tile_size),
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


def _publish_deep_zoom(folder: str, stem: str, final_dir: str, page: str) -> None:
    """Move a finished Deep Zoom pyramid into place: tiles first, the .dzi and page last."""
    files_final = os.path.join(final_dir, stem + "_files")
    old = None
    if os.path.exists(files_final):
        old = os.path.join(final_dir, f".{stem}_files.{secrets.token_hex(4)}.old")
        os.rename(files_final, old)
    os.rename(os.path.join(folder, stem + "_files"), files_final)
    with open(os.path.join(folder, stem + ".html"), "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(os.path.join(folder, stem + ".html"), os.path.join(final_dir, stem + ".html"))
    os.replace(os.path.join(folder, stem + ".dzi"), os.path.join(final_dir, stem + ".dzi"))
    if old:
        shutil.rmtree(old, ignore_errors=True)


def write_strips(path: str | os.PathLike, width: int, height: int, strips: Iterable[np.ndarray | EncodedRows],
                 quality: int = 90) -> None:
    """Write an RGB image from horizontal strips, holding only a strip or two at a time.

    The format follows the extension: ``.jpg``, ``.png``, ``.tif`` (tiled BigTIFF
    with a pyramid, JPEG-compressed) or ``.dzi`` (a Deep Zoom pyramid: ``<stem>.dzi``,
    ``<stem>_files/`` and ``<stem>.html``, a zoomable viewer page). Everything is
    written under temporary names and renamed into place only when complete.

    Parameters
    ----------
    path : path
        Output file.
    width, height : int
        Size of the whole image.
    strips : iterable of ndarray of uint8, shape (h_i, width, 3), EncodedRows, DeflatedRows, JpegBand, TiffBand or DeepZoomBand
        The image's rows, top to bottom; their heights must add up to ``height``.
        Rows framed by :func:`encode_rows` or, for ``.png``, compressed by
        :func:`deflate_rows`, for ``.jpg`` encoded by :func:`encode_jpeg_band`,
        for ``.tif`` by :func:`encode_tiff_band` or for ``.dzi`` by
        :func:`encode_dz_band` (for example on a Dask worker), are written as
        they are. A ``.png``, and a ``.jpg``, ``.tif`` or ``.dzi`` of such bands,
        are written here, not by libvips: their strips, compressed separately,
        are joined into one file or pyramid, so several processes or threads
        share the compression.
    quality : int
        JPEG quality, for JPEG output and JPEG-compressed tiles (bands already
        encoded keep theirs).
    """
    path = os.path.abspath(os.fspath(path))
    kind = check_output(path, width, height)
    folder, name = os.path.split(path)
    work = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    os.mkdir(work)
    try:
        strips = iter(strips)
        first = next(strips, None)
        strips = itertools.chain([first] if first is not None else [], strips)
        temporary = os.path.join(work, "image" + os.path.splitext(name)[1])
        if isinstance(first, DeepZoomBand):
            stem = os.path.splitext(name)[0]
            pyramid = DeepZoomWriter(work, stem, width, height)
            for band in strips:
                pyramid.add(band)
            pyramid.finish()
            _publish_deep_zoom(work, stem, folder, _viewer_page(name, name, width, height, DZ_TILE, DZ_OVERLAP, "jpg"))
            return
        if isinstance(first, TiffBand):
            with open(temporary, "wb") as f:
                pyramid = PyramidTiffWriter(f.fileno(), width, height)
                for band in strips:
                    pyramid.add(band)
                pyramid.finish()
            os.replace(temporary, path)
            return
        if kind == "png" or isinstance(first, JpegBand):  # written here, from strips compressed apart
            pieces = ([piece] for piece in jpeg_pieces(width, height, strips)) if kind == "jpeg" else \
                _png_stream(width, height, strips, deflate=True)
            with open(temporary, "wb") as f:
                for parts in pieces:
                    write_all(f.fileno(), parts)
            os.replace(temporary, path)
            return
        with _streamed_image(width, height, strips) as image:
            if kind == "dz":
                stem = os.path.splitext(name)[0]
                options = save_options(kind, quality)
                image.dzsave(os.path.join(work, stem), **options)
                page = _viewer_page(name, name, width, height, options["tile_size"], options["overlap"], "jpg")
            else:
                getattr(image, f"{kind}save")(temporary, **save_options(kind, quality))
        if kind == "dz":
            _publish_deep_zoom(work, stem, folder, page)
        else:
            os.replace(temporary, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_image(pixels: np.ndarray, path: str | os.PathLike, quality: int = 90) -> None:
    """Write an in-memory RGB image (H, W, 3) uint8, by extension, atomically: see :func:`write_strips`."""
    write_strips(path, pixels.shape[1], pixels.shape[0], [pixels], quality)
