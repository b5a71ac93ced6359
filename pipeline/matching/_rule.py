"""The reuse rule: how often one tile may appear, and how near to itself. Spelled one way, validated once."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import config_get
from ..errors import MosaicError

__all__ = ["ReuseRule"]


@dataclass(frozen=True)
class ReuseRule:
    """How a mosaic may reuse its tiles.

    Parameters
    ----------
    max_uses : int, optional
        No tile appears more often than this; ``None``: as often as it is the
        best (the nearest rule); 1: each tile at most once (the unique rule).
    min_repeat_distance : int
        The same tile never appears within this many cells of itself
        (Chebyshev distance on the grid); 0: no limit.
    max_share : float, optional
        No tile on more than this share of the cells (0.01: 1 %), or on more than
        the fewest uses that fill the grid from the library if that is more (see
        :meth:`for_grid`); ``None``: no such cap. It keeps one photo from paving a
        flat region (sky, water) as wallpaper.
    min_uses : int
        Every tile appears at least this often (1: every photo in the library is
        used, as an event mosaic needs); 0: no floor.

    Raises
    ------
    MosaicError
        If a value is out of range.
    """

    max_uses: int | None = None
    min_repeat_distance: int = 0
    max_share: float | None = None
    min_uses: int = 0

    def __post_init__(self) -> None:
        if self.max_share is not None and not (isinstance(self.max_share, (int, float)) and 0 < self.max_share <= 1):
            raise MosaicError(f"`max_share` must be a fraction of the cells above 0 and at most 1, got {self.max_share!r}")
        if self.max_uses is not None and (not isinstance(self.max_uses, int) or self.max_uses < 1):
            raise MosaicError(f"`max_uses` must be a whole number of at least 1, got {self.max_uses!r}")
        if not isinstance(self.min_uses, int) or self.min_uses < 0:
            raise MosaicError(f"`min_uses` must be a whole number of at least 0, got {self.min_uses!r}")
        if self.max_uses is not None and self.min_uses > self.max_uses:
            raise MosaicError(f"`min_uses` {self.min_uses} is above `max_uses` {self.max_uses}")
        if not isinstance(self.min_repeat_distance, int) or self.min_repeat_distance < 0:
            raise MosaicError(f"`min_repeat_distance` must be a whole number of at least 0, got {self.min_repeat_distance!r}")

    @classmethod
    def unique(cls, min_repeat_distance: int = 0) -> "ReuseRule":
        """Each tile at most once."""
        return cls(1, min_repeat_distance)

    @classmethod
    def nearest(cls, min_repeat_distance: int = 0) -> "ReuseRule":
        """Every cell its best tile, however often that tile is used."""
        return cls(None, min_repeat_distance)

    @classmethod
    def from_config(cls) -> "ReuseRule":
        """The configured default: ``mosaic.make.max-uses``, ``min-repeat-distance`` and ``max-share``."""
        return cls(config_get("make.max-uses"), config_get("make.min-repeat-distance"), config_get("make.max-share"))

    def for_grid(self, n_cells: int, n_tiles: int) -> "ReuseRule":
        """This rule with ``max_share`` turned into a number of uses for a grid of ``n_cells`` and ``n_tiles`` tiles.

        The share's cap is ``floor(max_share * n_cells)``, raised to
        ``ceil(n_cells / n_tiles)`` where the library is too small to fill the grid
        under it, and to ``min_uses``, and never above ``max_uses``.
        """
        if self.max_share is None:
            return self
        share_cap = max(1, math.floor(self.max_share * n_cells), math.ceil(n_cells / max(n_tiles, 1)), self.min_uses)
        cap = share_cap if self.max_uses is None else min(self.max_uses, share_cap)
        return ReuseRule(cap, self.min_repeat_distance, None, self.min_uses)

    @property
    def is_unique(self) -> bool:
        return self.max_uses == 1

    @property
    def is_capped(self) -> bool:
        return self.max_uses is not None

    @property
    def has_floor(self) -> bool:
        return self.min_uses > 0

    def check_fits(self, n_cells: int, n_tiles: int, enough_cols: int | None = None) -> None:
        """Raise :class:`MosaicError`, saying what would work, if ``n_tiles`` (> 0) cannot fill ``n_cells`` under this rule.

        ``enough_cols``: the fewest columns whose grid has a cell for every tile's ``min_uses``, to suggest.
        """
        if n_tiles * self.min_uses > n_cells:
            needed = n_tiles * self.min_uses
            wider = f"`cols` {enough_cols} or more" if enough_cols else "more `cols`"
            times = {1: "once", 2: "twice"}.get(self.min_uses, f"{self.min_uses} times")
            raise MosaicError(f"every tile at least {times} needs {needed} cells ({n_tiles} tiles x {self.min_uses}) "
                              f"but the grid has {n_cells}; use {wider}, fewer uses each, or a smaller library")
        if self.max_uses is None or n_tiles * self.max_uses >= n_cells:
            return
        smallest = math.ceil(n_cells / n_tiles)
        if self.is_unique:
            raise MosaicError(f"`unique` needs a distinct tile for each of {n_cells} cells but the cache holds {n_tiles}; "
                              f"use `max_uses` {smallest} (the smallest that works), or fewer `cols`")
        raise MosaicError(f"{n_cells} cells cannot be filled from {n_tiles} tiles used at most {self.max_uses} times each; "
                          f"use `max_uses` {smallest} or more, or fewer `cols`")

    def as_dict(self) -> dict:
        """The rule as plain values, for records such as ``match.json``."""
        return {"max_uses": self.max_uses, "min_repeat_distance": self.min_repeat_distance, "max_share": self.max_share,
                "min_uses": self.min_uses}
