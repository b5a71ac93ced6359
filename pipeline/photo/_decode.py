"""Reading photos: read each file once, decode it fast, return sRGB thumbnails of the tile aspect as ndarrays.

Baseline and progressive JPEGs in YCbCr or grey, the bulk of any photo library, are
decoded by libjpeg-turbo (simplejpeg) straight into numpy at the smallest DCT scale that
keeps the requested size, in strict mode so that corrupt scan data is an error rather than
garbled pixels. HEIF/HEIC goes through libheif (``_heif``), camera RAW through LibRaw
(``_raw``); every other file (CMYK JPEGs, PNG, GIF, WebP, TIFF, BMP, AVIF, JPEG XL) through
Pillow. Whichever decoder, the EXIF orientation is applied and an embedded ICC profile is
honoured; :mod:`._formats` says which decoder a file's bytes call for.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from functools import lru_cache

import numpy as np
import simplejpeg
from PIL import Image, ImageCms, UnidentifiedImageError

from ..config import config_get
from ..features import ANALYSIS_SIDE, CROP_MODES, TileAspect, crop_box, pixel_shape, salient_window_offset
from ._formats import SIGNATURE_BYTES, photo_kind
from ._heif import decode_heif, register_plugins
from ._jpeg_markers import jpeg_metadata
from ._raw import RawDamaged, RawUnsupported, decode_raw

__all__ = ["BACKGROUND_RGB", "PhotoError", "decode_thumbnail", "load_rgb", "load_thumbnail", "read_photo", "thumbnail_of"]

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
    metadata = jpeg_metadata(data)
    if metadata is None:
        with Image.open(io.BytesIO(data)) as header:  # markers only: orientation and profile
            metadata = _orientation(header), header.info.get("icc_profile")
    return Image.fromarray(pixels), *metadata


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


def _decode_heif(data: bytes, min_side: int, max_pixels: int, min_size: int) -> tuple[Image.Image, int, bytes | None]:
    """libheif's stored thumbnail when it is big enough, else the whole picture through Pillow (both come upright)."""
    size, thumbnail, icc = decode_heif(data, min_side)
    scale = 1 if thumbnail is None else max(1, min(size) // min(thumbnail.size))
    _check_pixels(*size, scale, max_pixels, min_size)
    if thumbnail is not None:
        return thumbnail, 1, icc
    return _decode_with_pillow(data, min_side, max_pixels, min_size)


def _decode_raw(data: bytes, min_side: int, max_pixels: int, min_size: int) -> tuple[Image.Image, int, bytes | None]:
    try:
        image, orientation = decode_raw(data, min_side, lambda w, h, scale: _check_pixels(w, h, scale, max_pixels, min_size))
    except RawUnsupported as exc:
        raise PhotoError("unsupported", f"camera RAW that LibRaw cannot read: {exc}") from None
    except RawDamaged as exc:
        raise PhotoError("corrupt", f"camera RAW: {exc}") from None
    return image, orientation, None  # LibRaw's output and the camera's preview are sRGB


_DECODERS = {"heif": _decode_heif, "raw": _decode_raw}


def _decode_upright_srgb(data: bytes, min_side: int, max_pixels: int, min_size: int,
                         extension: str = "") -> tuple[Image.Image, bytes | None]:
    """Decode at the smallest scale that keeps ``min_side`` px, upright; classify every failure."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd metadata; the pixels are what count
            register_plugins()  # HEIF and JPEG XL openers, once a process
            kind = photo_kind(data[:SIGNATURE_BYTES], extension)
            if kind in _DECODERS:
                image, orientation, icc = _DECODERS[kind](data, min_side, max_pixels, min_size)
            else:
                decoded = _decode_fast_jpeg(data, min_side, max_pixels, min_size)
                image, orientation, icc = decoded or _decode_with_pillow(data, min_side, max_pixels, min_size)
            if orientation in _UPRIGHT:
                image = image.transpose(_UPRIGHT[orientation])
            return image, icc
    except UnidentifiedImageError:
        if photo_kind(data[:SIGNATURE_BYTES]) is not None:  # its bytes name a format that then would not open
            raise PhotoError("corrupt", f"{len(data)} bytes, starts as a known image format but does not open") from None
        raise PhotoError("not-an-image", f"{len(data)} bytes, no known image format") from None
    except Image.DecompressionBombError as exc:
        raise PhotoError("too-large", str(exc)) from None
    except OSError as exc:
        message = _one_line(str(exc))
        raise PhotoError(_reason(message), message) from None
    except (SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, RuntimeError, struct.error) as exc:
        message = _one_line(f"{type(exc).__name__}: {exc}")
        raise PhotoError(_reason(message), message) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())  # plugins' messages span lines


def _reason(message: str) -> str:
    """A decoder's failure as a reason: cut short, asking for what the decoder does not do, or damaged."""
    lowered = message.lower()
    if "truncated" in lowered or "end of file" in lowered:
        return "truncated"
    return "unsupported" if "unsupported" in lowered else "corrupt"


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
                     crop: str = "centre", name: str = "") -> np.ndarray:
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
    name : str, optional
        The file's name or path: its extension picks the decoder when the bytes do not
        (a NEF or ARW is a TIFF structure; a DNG says what it is).

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
    image, icc = _decode_upright_srgb(data, max(shape), max_pixels or config_get("index.max-pixels"), min_size,
                                      _extension(name))
    return _finish(image, icc, shape, crop)


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def load_thumbnail(path: str, size: int | tuple[int, int], *, max_pixels: int | None = None, min_size: int = 1,
                   crop: str = "centre") -> np.ndarray:
    """Read a photo and make its thumbnail: :func:`read_photo` then :func:`decode_thumbnail`."""
    return decode_thumbnail(read_photo(path), size, max_pixels=max_pixels, min_size=min_size, crop=crop, name=path)


def thumbnail_of(pixels: np.ndarray, size: int | tuple[int, int], *, crop: str = "centre") -> np.ndarray:
    """The thumbnail of a decoded sRGB picture (a video frame, say), cut and shrunk as :func:`decode_thumbnail` does.

    ``pixels`` is (H, W, 3) uint8, upright; ``size`` and ``crop`` as in :func:`decode_thumbnail`.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")
    return _finish(Image.fromarray(pixels), None, pixel_shape(size), crop)


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
    image, icc = _decode_upright_srgb(read_photo(path), min_side, max_pixels or config_get("index.max-pixels"), 1,
                                      _extension(path))
    return _finish(image, icc)
