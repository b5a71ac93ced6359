"""Reading photos: read each file once, decode it fast, return sRGB thumbnails of the tile aspect as ndarrays.

Baseline and progressive JPEGs in YCbCr or grey, the bulk of any photo library, are
decoded by libjpeg-turbo (simplejpeg) straight into numpy at the smallest DCT scale that
keeps the requested size, in strict mode so that corrupt scan data is an error rather than
garbled pixels. Every other file (CMYK JPEGs, PNG, GIF, WebP, TIFF, BMP) goes through Pillow.
Either way the EXIF orientation is applied and an embedded ICC profile is honoured.
"""
from __future__ import annotations

import io
import struct
import warnings
from functools import lru_cache

import numpy as np
import simplejpeg
from PIL import Image, ImageCms, UnidentifiedImageError

from .config import config_get
from .features import ANALYSIS_SIDE, CROP_MODES, TileAspect, crop_box, pixel_shape, salient_window_offset

__all__ = [
    "BACKGROUND_RGB",
    "PHOTO_EXTENSIONS",
    "PhotoError",
    "decode_thumbnail",
    "has_image_signature",
    "load_rgb",
    "load_thumbnail",
    "read_photo",
]

PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

# Leading bytes of the formats above, so that a photo is found whatever its name.
_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF, little endian
    b"MM\x00*",  # TIFF, big endian
    b"BM",
)

# Background that transparent pixels are composited on (documented in the README).
BACKGROUND_RGB = (255, 255, 255)

# This module applies its own limit (above) to the decoded size; Pillow's check counts
# the declared size, which would refuse a 108 MP JPEG that decodes to 1.7 MP.
Image.MAX_IMAGE_PIXELS = None

# How a viewer turns each EXIF orientation (tag 0x0112) upright; as ImageOps.exif_transpose.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_JPEG_SCALES = (8, 4, 2, 1)  # DCT scaling denominators libjpeg offers for every file
_SRGB = ImageCms.createProfile("sRGB")


class PhotoError(Exception):
    """A file that cannot be made into a tile; ``reason`` is a short category."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def has_image_signature(head: bytes) -> bool:
    """Whether the first bytes of a file look like one of the supported formats."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head.startswith(_SIGNATURES)


def _crop_box(image: Image.Image, aspect: TileAspect, crop: str) -> tuple[int, int, int, int]:
    """The ``aspect`` crop box of ``image``: centred, or (``smart``) over its most salient window."""
    width, height = image.size
    window_width, window_height = aspect.window(width, height)
    axis = 1 if width - window_width >= height - window_height else 0
    length, size = (window_width, width) if axis == 1 else (window_height, height)
    if crop == "centre" or length == size:
        return crop_box(width, height, aspect)
    scale = ANALYSIS_SIDE / min(width, height)
    small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    offset = salient_window_offset(np.asarray(small.convert("L")), round(length * scale), axis)
    return crop_box(width, height, aspect, offset)


def read_photo(path: str) -> bytes:
    """Read a file whole (it is then hashed and decoded from memory: one read per photo).

    Raises
    ------
    PhotoError
        ``missing`` (vanished), ``unreadable`` (permissions, a folder, I/O error) or ``empty``.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise PhotoError("missing", exc.strerror or str(exc)) from None
    except OSError as exc:
        raise PhotoError("unreadable", exc.strerror or str(exc)) from None
    if not data:
        raise PhotoError("empty", "0 bytes")
    return data


def _check_pixels(width: int, height: int, scale: int, max_pixels: int, min_size: int) -> None:
    if min(width, height) < min_size:
        raise PhotoError("too-small", f"{width}x{height} px, shorter side below the minimum of {min_size} px")
    decoded = -(-width // scale) * -(-height // scale)
    if decoded > max_pixels:
        raise PhotoError("too-large", f"{width}x{height} px decodes to {decoded / 1e6:.0f} MP, over the limit of {max_pixels / 1e6:.0f} MP")


def _jpeg_scale(width: int, height: int, min_side: int) -> int:
    return next(s for s in _JPEG_SCALES if s == 1 or min(width, height) // s >= min_side)


@lru_cache(maxsize=32)
def _to_srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from an embedded profile to sRGB, or None for sRGB itself or a bad profile."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if mode != "CMYK" and "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None
        return ImageCms.buildTransform(profile, _SRGB, mode, "RGB", ImageCms.Intent.PERCEPTUAL)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # an unusable profile is ignored, as viewers do


def _with_profile(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert to sRGB RGB through the embedded profile when there is one."""
    if icc and image.mode in ("RGB", "L", "CMYK"):
        transform = _to_srgb_transform(icc, image.mode)
        if transform is not None:
            return ImageCms.applyTransform(image, transform)
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, BACKGROUND_RGB)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and wider greyscale: scale to 8 bits instead of clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        grey = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGB")


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except (ValueError, TypeError, SyntaxError, struct.error, OSError):
        return 1  # unreadable EXIF: show the pixels as stored, as viewers do


def _decode_fast_jpeg(data: bytes, min_side: int, max_pixels: int, min_size: int) -> tuple[Image.Image, int, bytes | None] | None:
    """libjpeg-turbo's path for YCbCr and grey JPEGs; None for any other file."""
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    try:
        height, width, colourspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None  # let Pillow name what is wrong
    if colourspace not in ("YCbCr", "Gray"):
        return None  # CMYK, YCCK: Pillow knows Adobe's inverted CMYK and the profile
    scale = _jpeg_scale(width, height, min_side)
    _check_pixels(width, height, scale, max_pixels, min_size)
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=min_side, min_height=min_side, strict=True)
    except ValueError as exc:
        message = str(exc)
        raise PhotoError("truncated" if "Premature end" in message else "corrupt", message) from None
    metadata = _jpeg_metadata(data)
    if metadata is None:
        with Image.open(io.BytesIO(data)) as header:  # markers only: orientation and profile
            metadata = _orientation(header), header.info.get("icc_profile")
    return Image.fromarray(pixels), *metadata


def _jpeg_metadata(data: bytes) -> tuple[int, bytes | None] | None:
    """A JPEG's EXIF orientation and ICC profile, read from its APP1/APP2 segments.

    Walking the segments costs a few microseconds; asking Pillow for the header costs
    ~80 us, 7 % of a reduced-scale decode. Anything unusual (XMP, a profile split over
    several segments, odd EXIF) returns None: Pillow then reads the header.
    """
    orientation, icc, exif_seen = 1, None, False
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xDA:  # start of scan: no more metadata
            return orientation, icc
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position + 4 : end]
        if marker == 0xE1:
            if not segment.startswith(b"Exif\0\0"):
                return None  # XMP may carry an orientation too
            if not exif_seen:  # the first EXIF segment counts, as in Pillow
                exif_seen, orientation = True, _exif_orientation(segment[6:])
                if orientation is None:
                    return None
        elif marker == 0xE2 and segment.startswith(b"ICC_PROFILE\0"):
            if segment[12:14] != b"\x01\x01" or icc is not None:
                return None  # a profile in several chunks
            icc = segment[14:]
        position = end
    return None  # malformed


def _exif_orientation(tiff: bytes) -> int | None:
    """Tag 0x0112 of a TIFF structure's first IFD (1 when absent); None when unsure."""
    order = {b"II*\0": "little", b"MM\0*": "big"}.get(tiff[:4])
    if order is None:
        return None
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    entries = tiff[ifd + 2 : ifd + 2 + 12 * count]
    if ifd < 8 or len(entries) < 12 * count:
        return None
    for k in range(0, len(entries), 12):
        if int.from_bytes(entries[k : k + 2], order) == 0x0112:
            kind, n = int.from_bytes(entries[k + 2 : k + 4], order), int.from_bytes(entries[k + 4 : k + 8], order)
            if n != 1 or kind not in (3, 4):  # SHORT or LONG, stored in the entry itself
                return None
            return int.from_bytes(entries[k + 8 : k + 8 + (2 if kind == 3 else 4)], order)
    return 1


def _decode_with_pillow(data: bytes, min_side: int, max_pixels: int, min_size: int) -> tuple[Image.Image, int, bytes | None]:
    with Image.open(io.BytesIO(data)) as image:
        scale = _jpeg_scale(*image.size, min_side) if image.format == "JPEG" else 1
        _check_pixels(*image.size, scale, max_pixels, min_size)
        if scale > 1:
            # DCT-domain downscaling: decodes a 24 MP photo at 1/8 the cost.
            image.draft(image.mode, (min_side, min_side))
        image.load()
        orientation, icc = _orientation(image), image.info.get("icc_profile")
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        reduce_by = min(image.size) // (2 * min_side)
        if reduce_by >= 2 and image.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
            # Box-reduce big non-JPEG decodes at once, so conversions below touch few pixels.
            image = image.reduce(reduce_by)
        return image, orientation, icc


def _decode_upright_srgb(data: bytes, min_side: int, max_pixels: int, min_size: int) -> tuple[Image.Image, bytes | None]:
    """Decode at the smallest scale that keeps ``min_side`` px, upright; classify every failure."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd metadata; the pixels are what count
            decoded = _decode_fast_jpeg(data, min_side, max_pixels, min_size)
            image, orientation, icc = decoded or _decode_with_pillow(data, min_side, max_pixels, min_size)
            if orientation in _UPRIGHT:
                image = image.transpose(_UPRIGHT[orientation])
            return image, icc
    except UnidentifiedImageError:
        raise PhotoError("not-an-image", f"{len(data)} bytes, no known image format") from None
    except Image.DecompressionBombError as exc:
        raise PhotoError("too-large", str(exc)) from None
    except OSError as exc:
        message = str(exc)
        raise PhotoError("truncated" if "truncated" in message else "corrupt", message) from None
    except (SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error) as exc:
        raise PhotoError("corrupt", f"{type(exc).__name__}: {exc}") from None


def _finish(image: Image.Image, icc: bytes | None, shape: tuple[int, int] | None = None, crop: str = "centre") -> np.ndarray:
    """To sRGB RGB, and to a ``shape`` (height, width) thumbnail of that aspect, cut as ``crop`` says, when given."""
    try:
        if shape is not None:
            if image.mode not in ("RGB", "L", "CMYK"):
                image = _to_rgb(image)  # alpha and wide modes before resampling
            height, width = shape
            # resize(box=...) crops and scales in one pass; reducing_gap lets Pillow
            # box-reduce first, which is much cheaper for big sources at no visible cost.
            box = _crop_box(image, TileAspect(width, height), crop)  # the thumbnail's own ratio: no stretch
            image = image.resize((width, height), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
        return np.asarray(_with_profile(image, icc))
    except (ValueError, OSError) as exc:  # a mode Pillow cannot turn into RGB (e.g. LAB TIFF)
        raise PhotoError("unsupported", f"{image.mode} pixels: {exc}") from None


def decode_thumbnail(data: bytes, size: int | tuple[int, int], *, max_pixels: int | None = None, min_size: int = 1,
                     crop: str = "centre") -> np.ndarray:
    """Decode a photo's bytes, cut the largest window of the thumbnail's aspect and shrink it to ``size``.

    Parameters
    ----------
    data : bytes
        The whole file, as :func:`read_photo` returns it.
    size : int or (int, int)
        The thumbnail: a side in pixels (square), or ``(height, width)``: a landscape
        or portrait tile, cut from any photo at that aspect
        (:meth:`pipeline.features.TileAspect.tile_shape` gives it for an aspect).
    max_pixels : int, optional
        Refuse (``too-large``) a file whose decode would exceed this many pixels (a
        decompression bomb; a JPEG counts its reduced-scale decode). Default:
        ``mosaic.index.max-pixels``.
    min_size : int, optional
        Refuse (``too-small``) a photo whose shorter side is below this many pixels.
    crop : {"centre", "smart"}
        Where the window is cut along the axis the photo has to spare: the middle,
        or the window with the most edge energy (the subject), a near tie staying
        centred (:func:`pipeline.features.salient_window_offset`).

    Returns
    -------
    ndarray of uint8, shape (height, width, 3)
        sRGB pixels, oriented as a viewer shows the photo (EXIF orientation applied).

    Raises
    ------
    PhotoError
        ``reason`` is one of ``not-an-image``, ``truncated``, ``corrupt``, ``too-large``,
        ``too-small``, ``unsupported``.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")
    shape = pixel_shape(size)
    # The window may take the tile's long side from the photo's short one: decode at least that much.
    image, icc = _decode_upright_srgb(data, max(shape), max_pixels or config_get("index.max-pixels"), min_size)
    return _finish(image, icc, shape, crop)


def load_thumbnail(path: str, size: int | tuple[int, int], *, max_pixels: int | None = None, min_size: int = 1,
                   crop: str = "centre") -> np.ndarray:
    """Read a photo and make its thumbnail: :func:`read_photo` then :func:`decode_thumbnail`."""
    return decode_thumbnail(read_photo(path), size, max_pixels=max_pixels, min_size=min_size, crop=crop)


def load_rgb(path: str, min_side: int, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode a photo, upright and in sRGB, at no less than ``min_side`` px on its short side.

    Parameters
    ----------
    path : str
        The photo's path.
    min_side : int
        The decoder may downscale (JPEG DCT scaling, box reduction of big images) as
        long as both sides stay at least this long.
    max_pixels : int, optional
        See :func:`decode_thumbnail`.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Raises
    ------
    PhotoError
        See :func:`read_photo` and :func:`decode_thumbnail`.
    """
    image, icc = _decode_upright_srgb(read_photo(path), min_side, max_pixels or config_get("index.max-pixels"), 1)
    return _finish(image, icc)
