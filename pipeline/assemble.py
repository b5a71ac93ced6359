"""Stage 3, assemble: lay the chosen tiles out on the canvas and write the image."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ._errors import MosaicError
from ._files import replaced_atomically

__all__ = ["resize_tiles", "tile_canvas", "write_image", "IMAGE_FORMATS"]

IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}
_JPEG_MAX_SIDE = 65500


def resize_tiles(thumbnails: np.ndarray, tile_px: int) -> np.ndarray:
    """Resize square thumbnails (K, s, s, 3) to (K, tile_px, tile_px, 3) with Lanczos filtering."""
    if thumbnails.shape[1] == tile_px:
        return thumbnails
    out = np.empty((len(thumbnails), tile_px, tile_px, 3), np.uint8)
    for i, thumb in enumerate(thumbnails):
        out[i] = np.asarray(Image.fromarray(thumb).resize((tile_px, tile_px), Image.Resampling.LANCZOS))
    return out


def tile_canvas(tiles: np.ndarray, layout: np.ndarray) -> np.ndarray:
    """Place tiles on a grid.

    Parameters
    ----------
    tiles : ndarray of uint8, shape (K, p, p, 3)
        The distinct tile images.
    layout : ndarray of int, shape (rows, cols)
        For each cell, the index into ``tiles`` of the image it shows.

    Returns
    -------
    ndarray of uint8, shape (rows * p, cols * p, 3)
    """
    rows, cols = layout.shape
    p = tiles.shape[1]
    return tiles[layout].transpose(0, 2, 1, 3, 4).reshape(rows * p, cols * p, 3)


def write_image(pixels: np.ndarray, path: str | os.PathLike, quality: int = 90) -> None:
    """Write an RGB image, choosing the format by extension, atomically.

    The image goes to a temporary file in the same folder and is renamed over
    ``path`` only when complete, so an interrupted write never leaves a half file.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in IMAGE_FORMATS:
        raise MosaicError(f"cannot write {path}: output must end in one of {', '.join(sorted(IMAGE_FORMATS))}")
    image_format = IMAGE_FORMATS[extension]
    height, width = pixels.shape[:2]
    if image_format == "JPEG" and max(height, width) > _JPEG_MAX_SIDE:
        raise MosaicError(f"{width}x{height} px is over JPEG's {_JPEG_MAX_SIDE} px limit; write .png or .tif instead, or use a smaller --tile-px")
    options = {"quality": quality, "optimize": True} if image_format == "JPEG" else {}
    if image_format == "TIFF":
        options = {"compression": "tiff_deflate"}
    with replaced_atomically(path) as f:
        Image.fromarray(pixels).save(f, format=image_format, **options)
