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

    Raises
    ------
    MosaicError
        If a value is out of range.
    """

    max_uses: int | None = None
    min_repeat_distance: int = 0

    def __post_init__(self) -> None:
        if self.max_uses is not None and (not isinstance(self.max_uses, int) or self.max_uses < 1):
            raise MosaicError(f"`max_uses` must be a whole number of at least 1, got {self.max_uses!r}")
        if not isinstance(self.min_repeat_distance, int) or self.min_repeat_distance < 0:
            raise MosaicError(f"`min_repeat_distance` must be a whole number of at least 0, got {self.min_repeat_distance!r}")

    @classmethod
    def unique(cls, min_repeat_distance: int = 0) -> "ReuseRule":
        """Each tile at most once."""
        return cls(1, min_repeat_distance)

    @classmethod
    def from_config(cls) -> "ReuseRule":
        """The configured default: ``mosaic.make.max-uses`` and ``mosaic.make.min-repeat-distance``."""
        return cls(config_get("make.max-uses"), config_get("make.min-repeat-distance"))

    @property
    def is_unique(self) -> bool:
        return self.max_uses == 1

    @property
    def is_capped(self) -> bool:
        return self.max_uses is not None

    def check_fits(self, n_cells: int, n_tiles: int) -> None:
        """Raise :class:`MosaicError`, saying what would work, if ``n_tiles`` (> 0) cannot fill ``n_cells`` under this rule."""
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
        return {"max_uses": self.max_uses, "min_repeat_distance": self.min_repeat_distance}
