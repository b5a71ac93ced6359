"""What formats share: the pyramids' 2x2 halving, and the tally of the bands a writer has taken."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

__all__ = ["BandTally", "halve"]


def halve(pixels: np.ndarray, repeat_odd: bool = False) -> np.ndarray:
    """Each 2x2 block's mean, rounded (libvips's pyramid reduction).

    An odd last row or column is dropped (libvips's TIFF pyramid), or with
    ``repeat_odd`` averaged with a copy of itself (its Deep Zoom pyramid).
    """
    if repeat_odd and (pixels.shape[0] % 2 or pixels.shape[1] % 2):
        pixels = np.pad(pixels, ((0, pixels.shape[0] % 2), (0, pixels.shape[1] % 2), (0, 0)), mode="edge")
    height, width = pixels.shape[0] // 2, pixels.shape[1] // 2
    if height == 0 or width == 0:
        return np.empty((height, width, 3), np.uint8)
    image = Image.frombuffer("RGB", pixels.shape[1::-1], np.ascontiguousarray(pixels), "raw", "RGB", 0, 1)
    return np.asarray(image.reduce(2, box=(0, 0, 2 * width, 2 * height)))


class BandTally:
    """The bands a writer has taken so far: each must fit the image and match the quality of those before."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height, self.rows, self.quality = width, height, 0, None

    def admit(self, band: Any) -> None:
        """Count ``band`` (with ``width``, ``rows`` and, if encoded lossily, ``quality``) in, or raise ValueError if it does not fit."""
        if band.width != self.width:
            raise ValueError(f"band {band.width} px wide does not fit a {self.width} px wide image")
        quality = getattr(band, "quality", None)
        if self.quality is not None and quality != self.quality:
            raise ValueError(f"a band encoded at quality {quality} follows bands at {self.quality}")
        if self.rows + band.rows > self.height:
            raise ValueError(f"bands hold more than the {self.height} rows announced")
        self.rows, self.quality = self.rows + band.rows, quality

    def check_complete(self) -> None:
        """Raise ValueError unless the bands taken hold every row of the image."""
        if self.rows != self.height:
            raise ValueError(f"bands held {self.rows} rows, {self.height} were announced")
