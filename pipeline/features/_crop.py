"""Where to cut a tile from a photo: its shape (the tile aspect) and its place (the centre, or the subject).

A tile has the cache's aspect, e.g. 1:1, 3:2 or portrait 2:3; every photo,
landscape or portrait, gives the largest window of that aspect it holds. The
window slides along the axis the photo has to spare: ``centre`` keeps it in the
middle; ``smart`` scores every position by its edge energy (the sum of absolute
lightness differences between neighbouring pixels: a subject has edges and
texture, sky and studio backdrops have few), weighted by a gentle preference for
the centre, and takes the best. Smart looks at a copy of the photo at most
``ANALYSIS_SIDE`` px on its short side, so it costs a few microseconds a photo
whatever its size.
"""
from __future__ import annotations

import math
import re
from typing import NamedTuple

import numpy as np

__all__ = ["ANALYSIS_SIDE", "CROP_MODES", "SQUARE", "TileAspect", "crop_box", "pixel_shape", "salient_window_offset"]

CROP_MODES = ("centre", "smart")
ANALYSIS_SIDE = 32
# A window at the photo's edge keeps this share of its edge score against one at the centre:
# a subject clearly off-centre wins, a near tie stays centred.
_EDGE_PREFERENCE = 0.8
# Beyond this a tile is a sliver, not a photo: 10:1 is already a panorama strip.
_MOST_ELONGATED = 10


class TileAspect(NamedTuple):
    """A tile's width-to-height ratio as whole numbers in lowest terms, e.g. ``TileAspect(3, 2)``."""

    width: int
    height: int

    @classmethod
    def parse(cls, text: "str | TileAspect") -> "TileAspect":
        """``"3:2"``, ``"16:9"``, ``"2:3"`` (portrait), ``"1:1"`` (or a TileAspect) -> a TileAspect in lowest terms.

        Raises
        ------
        ValueError
            With a one-line message, for anything else or a ratio beyond 10:1.
        """
        if isinstance(text, tuple):
            text = f"{text[0]}:{text[1]}"
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
        if not match or 0 in (int(match.group(1)), int(match.group(2))):
            raise ValueError(f"a tile aspect is WIDTH:HEIGHT in whole numbers, e.g. 3:2 or 2:3, not {text!r}")
        width, height = int(match.group(1)), int(match.group(2))
        if max(width, height) > _MOST_ELONGATED * min(width, height):
            raise ValueError(f"tile aspect {width}:{height} is longer than {_MOST_ELONGATED}:1")
        common = math.gcd(width, height)
        return cls(width // common, height // common)

    def __str__(self) -> str:
        return f"{self.width}:{self.height}"

    def tile_shape(self, short_side: int) -> tuple[int, int]:
        """``(height, width)`` in px of a tile of this aspect whose shorter side is ``short_side``.

        The longer side is rounded to whole pixels (4:3 at 32 px is 43 x 32: 0.8 % off the ratio).
        """
        long_side = max(1, round(short_side * max(self) / min(self)))
        return (short_side, long_side) if self.width >= self.height else (long_side, short_side)

    def window(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` of the largest window of this aspect inside a ``width`` x ``height`` image."""
        if width * self.height >= height * self.width:  # the image is wider than the aspect: full height
            return max(1, round(height * self.width / self.height)), height
        return width, max(1, round(width * self.height / self.width))


SQUARE = TileAspect(1, 1)


def pixel_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of a tile, thumbnail or patch given as one side (square) or as ``(height, width)``.

    Raises
    ------
    ValueError
        If a side is under one pixel.
    """
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    if min(height, width) < 1:
        raise ValueError(f"a tile needs at least one pixel a side, got {height}x{width}")
    return int(height), int(width)


def crop_box(width: int, height: int, aspect: TileAspect = SQUARE, offset: float = 0.5) -> tuple[int, int, int, int]:
    """The crop box ``(left, top, right, bottom)`` of the largest ``aspect`` window of an image.

    Parameters
    ----------
    width, height : int
        The image's size.
    aspect : TileAspect
        The window's shape.
    offset : float
        Where the window sits along the axis the image has to spare: 0 at the left
        or top, 1 at the right or bottom, 0.5 centred (rounded down to a whole pixel).
    """
    window_width, window_height = aspect.window(width, height)
    left, top = int((width - window_width) * offset), int((height - window_height) * offset)
    return left, top, left + window_width, top + window_height


def salient_window_offset(lightness: np.ndarray, length: int, axis: int = 1) -> float:
    """Where the most salient window of ``length`` px along ``axis`` starts, as a fraction of the slack.

    Parameters
    ----------
    lightness : ndarray, shape (H, W)
        The photo's lightness (any scale), small: see ``ANALYSIS_SIDE``.
    length : int
        The window's length along ``axis``; it spans the other axis whole.
    axis : {0, 1}
        The axis the window slides along: 1 across, 0 down.

    Returns
    -------
    float
        0: the window at the left or top; 1: at the right or bottom; 0.5: centred.
        A window as long as the photo returns 0.5.
    """
    lightness = np.asarray(lightness, dtype=np.float32)
    if lightness.ndim != 2:
        raise ValueError(f"expected a 2-D lightness array, got shape {lightness.shape}")
    if axis == 0:
        lightness = lightness.T  # the window slides along axis 1
    span, size = lightness.shape
    slack = size - length
    if slack <= 0 or length < 2:
        return 0.5
    # Inside a window [s, s + length): the differences down its columns, and those across
    # between its own neighbouring columns (not the one across its edge).
    down = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(lightness, axis=0)).sum(axis=0, dtype=np.float64))])
    across = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(lightness, axis=1)).sum(axis=0, dtype=np.float64))])
    starts_px = np.arange(slack + 1)
    window_energy = (down[starts_px + length] - down[starts_px]
                     + across[starts_px + length - 1] - across[starts_px])
    # A photo with no edges anywhere (or windows all alike) keeps the centre: ties go to the prior.
    window_energy += 1e-6 * max(1.0, float(window_energy.max()))
    starts = starts_px / slack
    score = window_energy * (1.0 - (1.0 - _EDGE_PREFERENCE) * np.abs(2.0 * starts - 1.0))
    return float(starts[int(np.argmax(score))])
