"""Reading photos: decode once, fast, and return a square sRGB thumbnail as an ndarray."""
from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "PHOTO_EXTENSIONS",
    "PhotoError",
    "has_image_signature",
    "load_square_thumbnail",
    "load_rgb",
    "square_box",
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


def square_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The centred square crop box ``(left, top, right, bottom)`` of an image."""
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return (left, top, left + side, top + side)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, BACKGROUND_RGB)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        grey = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGB")


def _decode_upright_rgb(path: str, min_side: int) -> Image.Image:
    """Decode at the smallest scale that keeps ``min_side`` px, orient, convert to RGB."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format == "JPEG":
                    # DCT-domain downscaling: decodes a 24 MP photo at 1/8 the cost.
                    image.draft("RGB", (min_side, min_side))
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError as exc:
        raise PhotoError("missing", str(exc)) from None
    except PermissionError as exc:
        raise PhotoError("unreadable", str(exc)) from None
    except UnidentifiedImageError:
        size = os.path.getsize(path)
        raise PhotoError("empty" if size == 0 else "not-an-image", f"{size} bytes") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError("too-large", str(exc)) from None
    except OSError as exc:
        message = str(exc)
        raise PhotoError("truncated" if "truncated" in message else "corrupt", message) from None
    except (SyntaxError, ValueError, EOFError, IndexError, KeyError) as exc:
        raise PhotoError("corrupt", f"{type(exc).__name__}: {exc}") from None


def load_rgb(path: str, min_side: int) -> np.ndarray:
    """Decode a photo, upright and in RGB, at no less than ``min_side`` px on its short side.

    Parameters
    ----------
    path : str
        The photo's path.
    min_side : int
        The JPEG decoder may downscale by 1/2, 1/4 or 1/8 as long as both sides
        stay at least this long. Other formats decode at full size.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Raises
    ------
    PhotoError
        With ``reason`` one of ``missing``, ``unreadable``, ``empty``,
        ``not-an-image``, ``truncated``, ``corrupt``, ``too-large``.
    """
    return np.asarray(_decode_upright_rgb(path, min_side))


def load_square_thumbnail(path: str, size: int) -> np.ndarray:
    """Decode a photo, centre-crop it to a square and shrink it to ``size`` px.

    Parameters
    ----------
    path : str
        The photo's path.
    size : int
        Side of the returned thumbnail in pixels.

    Returns
    -------
    ndarray of uint8, shape (size, size, 3)
        sRGB pixels, oriented as a viewer shows the photo (EXIF orientation applied).

    Raises
    ------
    PhotoError
        See :func:`load_rgb`.
    """
    image = _decode_upright_rgb(path, size)
    box = square_box(*image.size)
    # resize(box=...) crops and scales in one pass; reducing_gap lets Pillow
    # box-reduce first, which is much cheaper for big sources at no visible cost.
    thumb = image.resize((size, size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    return np.asarray(thumb)
