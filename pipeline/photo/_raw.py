"""Camera RAW files through LibRaw (rawpy): the camera's own JPEG preview when it is big enough, else a half-size decode.

A camera embeds a full-size or near full-size JPEG preview in nearly every RAW file;
decoding it at reduced DCT scale costs milliseconds, where demosaicing the sensor data
costs a second. The preview is the camera's rendering (its white balance and curve),
which is what the photographer saw. Files without a usable preview (many DNGs written
by converters, some old cameras) are demosaiced at half size (each 2 x 2 Bayer block one
pixel: no interpolation), with the camera's white balance and an sRGB output.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image

__all__ = ["RawDamaged", "RawUnsupported", "decode_raw"]

# LibRaw's flip code -> the EXIF orientation that turns the sensor's picture upright.
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}


class RawUnsupported(Exception):
    """LibRaw does not know this file (not a RAW, or a camera it cannot read)."""


class RawDamaged(Exception):
    """LibRaw knows the file but its data is damaged or cut short."""


def decode_raw(data: bytes, min_side: int, check_size: Callable[[int, int, int], None]) -> tuple[Image.Image, int]:
    """Decode a RAW file's bytes to an sRGB picture of at least ``min_side`` px on its short side, if it has them.

    ``check_size(width, height, scale)`` is called with the sensor's picture size and the
    reduction the decode will make before anything is decoded; it raises to refuse.

    Returns
    -------
    image : PIL.Image.Image
        RGB, as the sensor is read (not yet upright), or the preview JPEG opened lazily.
    orientation : int
        The EXIF orientation that makes it upright.

    Raises
    ------
    RawUnsupported, RawDamaged
    """
    import rawpy  # imported on first use: most libraries hold no RAW files

    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            orientation = _FLIP_TO_ORIENTATION.get(raw.sizes.flip, 1)
            width, height = raw.sizes.width, raw.sizes.height
            preview = _preview(raw, min_side)
            if preview is not None:
                check_size(width, height, max(1, min(width, height) // min(preview.size)))
                return preview, orientation
            check_size(width, height, 2)
            pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, user_flip=0,
                                     output_color=rawpy.ColorSpace.sRGB)
    except (rawpy.LibRawFileUnsupportedError, rawpy.LibRawNotImplementedError) as exc:
        raise RawUnsupported(_message(exc)) from None
    except rawpy.LibRawError as exc:
        raise RawDamaged(_message(exc)) from None
    return Image.fromarray(np.ascontiguousarray(pixels)), orientation


def _message(exc: Exception) -> str:
    text = exc.args[0] if exc.args else type(exc).__name__
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _preview(raw, min_side: int) -> Image.Image | None:
    """The embedded preview, if its short side reaches ``min_side`` px."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError, rawpy.LibRawIOError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            image = Image.open(io.BytesIO(thumb.data))
            image.draft("RGB", (min_side, min_side))  # the preview's header only, yet
        except (OSError, ValueError):
            return None
    else:
        image = Image.fromarray(np.ascontiguousarray(thumb.data))
    return image if min(image.size) >= min_side else None
