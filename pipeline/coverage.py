"""How well a library covers a target's colours: per hue, and per cell (pure numpy)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .matching import nearest_tiles

__all__ = ["HUE_NAMES", "Coverage", "colour_coverage", "hue_sectors", "DISTANT_DELTA_E", "NEUTRAL_CHROMA"]

# Named sectors of the CIELAB hue angle h = atan2(b*, a*), in degrees, [start, end).
_SECTORS = (
    ("red", 15, 50), ("orange", 50, 75), ("yellow", 75, 105), ("yellow-green", 105, 135),
    ("green", 135, 180), ("cyan", 180, 235), ("blue", 235, 310), ("purple", 310, 340), ("pink", 340, 375),
)
HUE_NAMES = tuple(name for name, _, _ in _SECTORS) + ("grey",)
# Below this chroma (C* = sqrt(a*^2 + b*^2)) a colour reads as grey, whatever its hue angle.
NEUTRAL_CHROMA = 10.0
# A cell whose nearest tile is further than this (CIE76) shows a clearly visible mismatch.
DISTANT_DELTA_E = 10.0


def hue_sectors(lab: np.ndarray) -> np.ndarray:
    """Index into :data:`HUE_NAMES` of each CIELAB colour (N, 3) -> (N,)."""
    lab = np.asarray(lab, dtype=np.float64)
    angle = np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360.0
    angle = np.where(angle < _SECTORS[0][1], angle + 360.0, angle)  # pink wraps past 360
    starts = np.array([start for _, start, _ in _SECTORS], dtype=np.float64)
    sector = np.searchsorted(starts, angle, side="right") - 1
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    return np.where(chroma < NEUTRAL_CHROMA, len(_SECTORS), sector)


@dataclass
class Coverage:
    """Per hue sector, the share of target cells and library tiles, and how far cells are from any tile."""

    hue_names: tuple[str, ...]
    target_cells: np.ndarray  # (S,) cells in each sector
    library_tiles: np.ndarray  # (S,) tiles in each sector
    mean_nearest: np.ndarray  # (S,) mean distance from a sector's cells to their nearest tile (nan: no cells)
    nearest: np.ndarray  # (M,) each cell's distance to its nearest tile
    distant: float  # the delta E above which a match is called distant
    thin: list[str]  # sectors the library lacks for this target

    @property
    def target_share(self) -> np.ndarray:
        return self.target_cells / self.target_cells.sum()

    @property
    def library_share(self) -> np.ndarray:
        return self.library_tiles / self.library_tiles.sum()

    @property
    def distant_cells(self) -> int:
        return int((self.nearest > self.distant).sum())

    def verdict(self) -> str:
        """One paragraph for a person deciding whether this library suits this target."""
        n = len(self.nearest)
        covered = 1.0 - self.distant_cells / n
        text = [f"The library covers {covered:.0%} of the target's {n} cells within {self.distant:g} delta E."]
        if self.thin:
            parts = []
            for name in self.thin:
                i = self.hue_names.index(name)
                share = f"{self.target_share[i]:.0%} of the target"
                if self.mean_nearest[i] > self.distant:
                    parts.append(f"{name} is missing ({share}; its cells are {self.mean_nearest[i]:.0f} delta E from "
                                 f"the nearest tile on average)")
                else:
                    parts.append(f"{name} is scarce ({share}: {self.target_cells[i]} cells for {self.library_tiles[i]} "
                                 f"tiles, so tiles repeat or cells take neighbouring colours)")
            text.append("Thin: " + "; ".join(parts) + ".")
        else:
            text.append("Every hue the target uses is well represented in the library.")
        text.append(f"{self.distant_cells} of {n} cells ({self.distant_cells / n:.0%}) have no tile within "
                    f"{self.distant:g} delta E and will need distant tiles"
                    + (", more still if tiles may be used only a few times." if self.distant_cells else "."))
        return " ".join(text)


def colour_coverage(cell_lab: np.ndarray, tile_lab: np.ndarray, distant: float = DISTANT_DELTA_E,
                    min_share: float = 0.02) -> Coverage:
    """Compare the colours a target needs with those a library has.

    Parameters
    ----------
    cell_lab : ndarray, shape (M, 3)
        Mean CIELAB colour of each target cell.
    tile_lab : ndarray, shape (N, 3)
        Mean CIELAB colour of each library tile.
    distant : float
        Delta E beyond which a cell's nearest tile counts as a distant match.
    min_share : float
        A hue is called thin only if at least this fraction of the cells has it.

    Returns
    -------
    Coverage
        A hue is thin when its cells are on average further than ``distant`` from
        their nearest tile (the colour is missing), or when the library has fewer
        tiles of that hue than the target has cells (it is scarce: tiles must repeat).
    """
    nearest = nearest_tiles(cell_lab, tile_lab, k=1)[0][:, 0]
    s = len(HUE_NAMES)
    cell_sector, tile_sector = hue_sectors(cell_lab), hue_sectors(tile_lab)
    cells = np.bincount(cell_sector, minlength=s)
    tiles = np.bincount(tile_sector, minlength=s)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_nearest = np.bincount(cell_sector, weights=nearest, minlength=s) / cells
    thin = [HUE_NAMES[i] for i in np.argsort(-cells, kind="stable")
            if cells[i] >= min_share * len(cell_lab) and (mean_nearest[i] > distant or tiles[i] < cells[i])]
    return Coverage(HUE_NAMES, cells, tiles, mean_nearest, nearest, distant, thin)
