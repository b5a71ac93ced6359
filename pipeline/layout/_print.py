"""Print sizing: a paper size and a resolution decide the output's pixels, hence the tiles' size or the grid."""
from __future__ import annotations

import math
import re
from typing import NamedTuple

from ..errors import MosaicError
from ..features import TileAspect

__all__ = ["PrintPlan", "PrintSize", "paper_size", "plan_print", "printed_size"]

_PER_INCH = {"in": 1.0, "cm": 2.54, "mm": 25.4}


class PrintSize(NamedTuple):
    """A print's width and height, in its own unit (``cm``, ``mm`` or ``in``)."""

    width: float
    height: float
    unit: str

    @classmethod
    def parse(cls, text: "str | PrintSize") -> "PrintSize":
        """``"60x40cm"``, ``"24x16in"``, ``"420 x 297 mm"`` -> a PrintSize.

        Raises
        ------
        MosaicError
            With a one-line message, for anything else.
        """
        if isinstance(text, PrintSize):
            return text
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[xX×]\s*(\d+(?:\.\d+)?)\s*(cm|mm|in)\s*", str(text))
        if not match or float(match.group(1)) <= 0 or float(match.group(2)) <= 0:
            raise MosaicError(f"a print size is WIDTHxHEIGHT with a unit, e.g. 60x40cm, 420x297mm or 24x16in, not {text!r}")
        return cls(float(match.group(1)), float(match.group(2)), match.group(3))

    def pixels(self, dpi: float) -> tuple[int, int]:
        """``(width, height)`` in pixels at ``dpi`` dots per inch."""
        per_inch = _PER_INCH[self.unit]
        return max(1, round(self.width / per_inch * dpi)), max(1, round(self.height / per_inch * dpi))

    def __str__(self) -> str:
        return f"{self.width:g}x{self.height:g}{self.unit}"


class PrintPlan(NamedTuple):
    """The grid and tile size that fill a print."""

    cols: int
    rows: int
    tile_px: int  # each tile's shorter side, px


def _widest_tile(aspect: TileAspect, most_width: float) -> int:
    """The largest shorter side whose tile is at most ``most_width`` px wide (0 if none)."""
    # From just above the estimate, down: the long side is rounded, so the estimate can fall a pixel short.
    short = math.floor(most_width * min(aspect) / aspect.width) + 1 if aspect.width >= aspect.height else math.floor(most_width)
    while short >= 1 and aspect.tile_shape(short)[1] > most_width:
        short -= 1
    return max(short, 0)


def plan_print(size: PrintSize, dpi: float, aspect: TileAspect, *, cols: int | None = None,
               tile_px: int | None = None, halves: int = 0) -> PrintPlan:
    """The grid and tile size that fill ``size`` at ``dpi`` with tiles of ``aspect``.

    Give ``cols`` (the tile size follows: the widest tile that fits) or ``tile_px``
    (the columns follow: as many as fit); rows fill the height as nearly as whole
    tiles can. With ``cols`` the tiles are the widest whole-pixel tiles that fit
    (unless so few columns would make one row taller than the paper); with
    ``tile_px``, the mosaic is less than a tile narrower than the paper. Either
    way it is at most half a tile shorter or taller. ``halves``: with ``cols``, the
    tiles chosen also halve this many times into whole pixels (for a subdivided grid),
    and as many columns as then fit are used (at least ``cols``), so the paper is still filled.

    Raises
    ------
    MosaicError
        If both or neither are given, or a tile would be under one pixel.
    """
    if (cols is None) == (tile_px is None):
        raise MosaicError("a print size takes `cols` or `tile_px`, not both: the other follows from the paper")
    if not dpi > 0:
        raise MosaicError(f"`dpi` must be above 0, got {dpi}")
    width, height = size.pixels(dpi)
    if tile_px is None:
        # The widest tile that fits `cols` across, but no taller than the paper: one row at least must fit.
        tallest = height * min(aspect) // aspect.height if aspect.width >= aspect.height else height
        tile_px = min(_widest_tile(aspect, width / cols), tallest)
        unit = 1 << halves
        while tile_px > 1 and (aspect.tile_shape(tile_px)[0] > height
                               or any(side % unit for side in aspect.tile_shape(tile_px))):
            tile_px -= 1
        if tile_px < 1:
            raise MosaicError(f"{size} at {dpi:g} dpi is {width} px across: {cols} `cols` would be under a pixel "
                              f"each; use at most {width // aspect.tile_shape(1)[1]} `cols`, or a higher `dpi`")
    tile_h, tile_w = aspect.tile_shape(tile_px)
    if cols is None or halves:  # as many columns as fit (with `halves`, at least those asked for)
        cols = max(cols or 0, width // tile_w)
    if cols < 1:
        raise MosaicError(f"{size} at {dpi:g} dpi is {width} px across, less than one tile of {tile_w} px; "
                          "use a smaller `tile_px`")
    return PrintPlan(cols, max(1, round(height / tile_h)), tile_px)


def paper_size(width_px: int, height_px: int, dpi: float, unit: str = "cm") -> str:
    """What ``width_px`` x ``height_px`` measures on paper at ``dpi``: ``"59.9 x 40.0 cm"``."""
    per_inch = _PER_INCH[unit]
    return f"{width_px / dpi * per_inch:.1f} x {height_px / dpi * per_inch:.1f} {unit}"


def printed_size(width_px: int, height_px: int, dpi: float, unit: str = "cm") -> str:
    """:func:`paper_size` with its resolution: ``"59.9 x 40.0 cm at 300 dpi"``."""
    return f"{paper_size(width_px, height_px, dpi, unit)} at {dpi:g} dpi"
