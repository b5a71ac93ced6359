"""A tile made again from its source, whichever kind: a photo's path, or a video frame's ``path#t=SECONDS``."""
from __future__ import annotations

import numpy as np

from ..features import pixel_shape
from ..photo import load_thumbnail, thumbnail_of
from ._frames import load_frame
from ._sampling import split_source

__all__ = ["load_source_thumbnail"]


def load_source_thumbnail(source: str, size: int | tuple[int, int], *, crop: str = "centre") -> np.ndarray:
    """The thumbnail of a tile's source at ``size`` (a side or ``(height, width)``), cut as :func:`pipeline.photo.decode_thumbnail` cuts.

    Raises
    ------
    PhotoError
        The photo, or the video frame, cannot be read (``reason`` as for photos).
    """
    path, seconds = split_source(source)
    if seconds is None:
        return load_thumbnail(path, size, crop=crop)
    shape = pixel_shape(size)
    return thumbnail_of(load_frame(path, seconds, max(shape)), shape, crop=crop)
