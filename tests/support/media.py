"""Real files of the formats beyond JPEG, written by the libraries that read them: HEIC, AVIF, JPEG XL, DNG, and videos.

Each writer takes a picture (an (H, W, 3) uint8 array) or a sequence of frames, so that
a test can check the tile made from the file against what went in.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from pipeline.photo import register_plugins

__all__ = ["encode_audio", "encode_video", "moving_frames", "rotate_display", "unknown_codec", "write_dng", "write_still"]


def write_still(path: Path, pixels: np.ndarray, fmt: str, orientation: int = 1, **options) -> Path:
    """Write ``pixels`` as HEIF, AVIF or JXL (``fmt`` as Pillow names it), with an EXIF orientation if not 1."""
    register_plugins()
    extra = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif.tobytes()
    Image.fromarray(pixels).save(path, fmt, quality=92, **extra, **options)
    return path


def write_dng(path: Path, pixels: np.ndarray, orientation: int = 1, preview: np.ndarray | None = None) -> Path:
    """A camera RAW file: ``pixels`` sampled through an RGGB Bayer filter at 12 bits, in a DNG.

    ``preview``, when given, is embedded as the camera's JPEG preview (a second IFD,
    NewSubFileType 1), as cameras store it; pidng writes none of its own.
    """
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    height, width = pixels.shape[:2]
    linear = (pixels.astype(np.float64) / 255.0) ** 2.2 * 4095  # the sensor counts light, not gamma-coded values
    raw = np.empty((height, width), np.uint16)
    raw[0::2, 0::2] = linear[0::2, 0::2, 0]
    raw[0::2, 1::2] = linear[0::2, 1::2, 1]
    raw[1::2, 0::2] = linear[1::2, 0::2, 1]
    raw[1::2, 1::2] = linear[1::2, 1::2, 2]
    tags = DNGTags()
    for tag, value in ((Tag.ImageWidth, width), (Tag.ImageLength, height), (Tag.TileWidth, width),
                       (Tag.TileLength, height), (Tag.Orientation, orientation),
                       (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
                       (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16), (Tag.CFARepeatPatternDim, [2, 2]),
                       (Tag.CFAPattern, CFAPattern.RGGB), (Tag.WhiteLevel, 4095), (Tag.BlackLevel, 0),
                       (Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
                       (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65), (Tag.AsShotNeutral, [[1, 1]] * 3),
                       (Tag.Make, "mosaic-tests"), (Tag.Model, "Bayer"), (Tag.DNGVersion, DNGVersion.V1_4),
                       (Tag.DNGBackwardVersion, DNGVersion.V1_2)):
        tags.set(tag, value)
    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    writer.convert(raw, filename=str(path.with_suffix("")))  # pidng adds .dng
    written = path.with_suffix(".dng")
    if written != path:
        written.rename(path)
    if preview is not None:
        path.write_bytes(_with_jpeg_preview(path.read_bytes(), preview))
    return path


def _with_jpeg_preview(tiff: bytes, preview: np.ndarray) -> bytes:
    """A little-endian TIFF/DNG with a JPEG preview IFD chained after its first IFD."""
    import io

    data = bytearray(tiff)
    first = struct.unpack_from("<I", data, 4)[0]
    next_offset = first + 2 + 12 * struct.unpack_from("<H", data, first)[0]
    buffer = io.BytesIO()
    Image.fromarray(preview).save(buffer, "JPEG", quality=95)
    jpeg = buffer.getvalue()
    data += b"\0" * (len(data) % 2)
    jpeg_at = len(data)
    data += jpeg + b"\0" * (len(jpeg) % 2)
    bits_at = len(data)
    data += struct.pack("<3H", 8, 8, 8)
    height, width = preview.shape[:2]
    short, long = 3, 4  # TIFF field types
    entries = [(254, long, 1, 1), (256, long, 1, width), (257, long, 1, height), (258, short, 3, bits_at),
               (259, short, 1, 7), (262, short, 1, 6), (273, long, 1, jpeg_at), (277, short, 1, 3),
               (278, long, 1, height), (279, long, 1, len(jpeg))]
    preview_ifd = len(data)
    data += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        data += struct.pack("<HHIHH" if kind == short and count == 1 else "<HHII", tag, kind, count,
                            *((value, 0) if kind == short and count == 1 else (value,)))
    data += struct.pack("<I", 0)
    struct.pack_into("<I", data, next_offset, preview_ifd)
    return bytes(data)


def moving_frames(count: int, height: int = 96, width: int = 160, seed: int = 0) -> Iterable[np.ndarray]:
    """Frames of a scene that changes every frame: a colour field with a bar sweeping across it."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, 3)
    for i in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = (base + np.array([7, 13, 5]) * i) % 256
        x = (i * 11) % width
        frame[:, x : x + 16] = 255 - frame[0, 0]
        yield frame


def encode_video(path: Path, frames: Iterable[np.ndarray], codec: str = "libx264", fps: int = 25,
                 container_format: str | None = None) -> Path:
    """Encode ``frames`` with PyAV (FFmpeg): ``codec`` in the container ``path``'s extension names."""
    import av

    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in [first, *frames]:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def encode_audio(path: Path, seconds: float = 1.0) -> Path:
    """A media file with a sound track and no video (a voice memo)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        samples = np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(44100 * seconds))).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[None, start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = 44100
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def rotate_display(path: Path, degrees_clockwise: int) -> Path:
    """Turn an MP4's display matrix as a phone held upright does: the coded frames stay, players turn them."""
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    version = data[box + 4]
    matrix = box + 8 + (20 if version == 0 else 32) + 8 + 8
    one, width, height = 1 << 16, *struct.unpack(">II", data[matrix + 36 : matrix + 44])
    turns = {90: (0, one, -one, 0, height, 0), 180: (-one, 0, 0, -one, width, height), 270: (0, -one, one, 0, 0, width)}
    a, b, c, d, x, y = turns[degrees_clockwise % 360]
    data[matrix : matrix + 36] = struct.pack(">9i", a, b, 0, c, d, 0, x, y, 1 << 30)
    path.write_bytes(bytes(data))
    return path


def unknown_codec(path: Path, source: Path) -> Path:
    """An AVI whose video stream names a codec no FFmpeg knows (its FourCC overwritten)."""
    data = source.read_bytes()
    for fourcc in (b"FMP4", b"XVID", b"DIVX", b"mp4v"):
        data = data.replace(fourcc, b"QQQQ")
    path.write_bytes(data)
    return path

