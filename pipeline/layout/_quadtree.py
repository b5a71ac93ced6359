"""Cells of several sizes: a grid whose detailed cells are split into 2x2 smaller cells, again and again (a quadtree).

A cell is named by its ``level`` (0: a cell of the grid, 1: a quarter of one, ...)
and its row and column among the cells of that level (the grid has ``rows << level``
by ``cols << level`` of them). :func:`subdivide` decides which cells split, from the
features of the target at every level; :class:`QuadCells` says where each cell lies,
for matching's repeat distance, the record and the band renderer.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import MosaicError
from ..features import TileAspect

__all__ = ["QuadCells", "check_tile_halves", "split_detail", "subdivide"]


class QuadCells(NamedTuple):
    """The cells of a subdivided grid of ``rows`` x ``cols``, ordered by grid row (then grid column, then raster)."""

    level: np.ndarray  # (n,) int8: how often the cell's grid cell was split to make it
    row: np.ndarray  # (n,) int32: its row among the cells of its level
    col: np.ndarray  # (n,) int32
    rows: int
    cols: int

    @classmethod
    def ordered(cls, level: np.ndarray, row: np.ndarray, col: np.ndarray, rows: int, cols: int
                ) -> tuple["QuadCells", np.ndarray]:
        """These cells in their order (by grid row, grid column, then level and raster), and the permutation used."""
        shift = level.astype(np.int64)
        order = np.lexsort((col, row, level, col >> shift, row >> shift))
        return cls(level[order], row[order], col[order], rows, cols), order

    def covers_grid(self) -> bool:
        """Whether every point of the ``rows`` x ``cols`` grid lies in exactly one cell: no gaps, no overlaps."""
        if not self.level.size or self.level.min() < 0:
            return False
        boxes, unit = self.boxes(), 1 << self.depth
        if (boxes[:, :2] < 0).any() or (boxes[:, 0] + boxes[:, 2] > self.rows * unit).any() \
                or (boxes[:, 1] + boxes[:, 2] > self.cols * unit).any():
            return False
        if int((boxes[:, 2] ** 2).sum()) != self.rows * self.cols * unit * unit:
            return False
        painted = self.paint(np.arange(1, len(boxes) + 1))  # an overlap hides a cell; then, with the area right, a gap
        return len(np.unique(painted)) == len(boxes) and painted.min() > 0

    @property
    def depth(self) -> int:
        """The deepest level present: a grid cell is ``2 ** depth`` of the smallest cells across."""
        return int(self.level.max()) if self.level.size else 0

    def boxes(self) -> np.ndarray:
        """(n, 3) int64 ``top, left, side`` of each cell in units of the smallest cells."""
        side = np.left_shift(1, self.depth - self.level.astype(np.int64))
        return np.stack([self.row * side, self.col * side, side], axis=1)

    def grid_row(self) -> np.ndarray:
        """(n,) the grid row each cell lies in."""
        return np.right_shift(self.row.astype(np.int64), self.level.astype(np.int64))

    def row_starts(self) -> np.ndarray:
        """(rows + 1,) the index of each grid row's first cell: grid rows ``a .. b - 1`` are cells
        ``starts[a]:starts[b]``, as cells are ordered by grid row."""
        return np.searchsorted(self.grid_row(), np.arange(self.rows + 1))

    def paint(self, values: np.ndarray) -> np.ndarray:
        """(rows << depth, cols << depth, ...) each cell's value over the smallest cells it covers."""
        unit = 1 << self.depth
        out = np.zeros((self.rows * unit, self.cols * unit) + values.shape[1:], values.dtype)
        for (top, left, side), value in zip(self.boxes().tolist(), values):
            out[top:top + side, left:left + side] = value
        return out

    def of_level(self, level: int) -> np.ndarray:
        """Indices, row-major within their level's grid, of the cells of ``level`` (into that level's features)."""
        at = np.flatnonzero(self.level == level)
        return self.row[at].astype(np.int64) * (self.cols << level) + self.col[at]


def split_detail(parent_grid: np.ndarray, child_grid: np.ndarray, cols: int) -> np.ndarray:
    """What a cell loses by not splitting: the RMS CIELAB difference between its children's blocks and its own.

    Parameters
    ----------
    parent_grid : ndarray, shape (rows * cols, g, g, 3)
        Block means of the cells of one level, row-major.
    child_grid : ndarray, shape (4 * rows * cols, g, g, 3)
        Those of the next level (``2 * rows`` x ``2 * cols``), row-major.
    cols : int
        Cells per row at the parent level.

    Returns
    -------
    ndarray, shape (rows * cols,)
        For each parent, the root mean square difference between the 2g x 2g blocks of its
        four children and its own g x g blocks, each covering 2 x 2 of them: 0 for a cell
        whose quarters its own blocks already describe.
    """
    g = parent_grid.shape[1]
    rows = len(parent_grid) // cols
    children = child_grid.reshape(rows, 2, cols, 2, g, g, 3).transpose(0, 2, 1, 4, 3, 5, 6)  # rows, cols, 2, g, 2, g, 3
    fine = children.reshape(rows * cols, 2 * g, 2 * g, 3).astype(np.float64)
    coarse = np.repeat(np.repeat(parent_grid.astype(np.float64), 2, axis=1), 2, axis=2)
    return np.sqrt(((fine - coarse) ** 2).sum(axis=3).mean(axis=(1, 2)))


def subdivide(level_grids: list[np.ndarray], rows: int, cols: int, share: float, min_detail: float) -> QuadCells:
    """Split the detailed cells of a ``rows`` x ``cols`` grid into 2x2, up to ``len(level_grids) - 1`` times.

    Parameters
    ----------
    level_grids : list of ndarray
        ``level_grids[l]``: the (rows << l) * (cols << l) cells' block means at level ``l``, row-major.
    share : float
        At each level, at most this share of the cells there split: those that lose the most by
        not splitting (:func:`split_detail`).
    min_detail : float
        A cell whose loss is at most this (CIELAB units) never splits: flat regions keep large tiles.

    Returns
    -------
    QuadCells
        Every point of the grid lies in exactly one cell.
    """
    level, row, col = [], [], []
    active = np.arange(rows * cols)  # cells of the current level still to place, row-major indices
    for depth in range(len(level_grids)):
        cols_here = cols << depth
        split = np.zeros(active.size, bool)
        if depth + 1 < len(level_grids) and active.size:
            detail = split_detail(level_grids[depth], level_grids[depth + 1], cols_here)[active]
            most = int(np.floor(share * active.size))
            if most:
                cut = np.sort(detail)[::-1][most - 1]
                split = (detail >= cut) & (detail > min_detail)
                split[np.argsort(-detail, kind="stable")[most:]] = False  # ties at the cut: no more than `most`
        kept = active[~split]
        level.append(np.full(kept.size, depth, np.int8))
        row.append((kept // cols_here).astype(np.int32))
        col.append((kept % cols_here).astype(np.int32))
        parents = active[split]
        r, c = parents // cols_here, parents % cols_here
        # Each split cell's four children, at the next level's row-major indices.
        active = np.sort(((2 * r[:, None] + np.array([0, 0, 1, 1])) * (2 * cols_here)
                          + 2 * c[:, None] + np.array([0, 1, 0, 1])).ravel())
    return QuadCells.ordered(np.concatenate(level), np.concatenate(row), np.concatenate(col), rows, cols)[0]


def check_tile_halves(aspect: TileAspect, tile_px: int, depth: int) -> None:
    """Refuse a ``tile_px`` whose tiles cannot be halved ``depth`` times into whole pixels, naming the nearest that can."""
    unit = 1 << depth
    height, width = aspect.tile_shape(tile_px)
    if height % unit == 0 and width % unit == 0:
        return
    fits = [px for px in range(max(unit, tile_px - 8 * unit), tile_px + 8 * unit + 1)
            if all(side % unit == 0 for side in aspect.tile_shape(px))]
    nearest = min(fits, key=lambda px: (abs(px - tile_px), px)) if fits else None
    raise MosaicError(f"tiles of {width}x{height} px cannot be halved {depth} times into whole pixels; "
                      + (f"use `tile_px` {nearest}" if nearest else f"use tiles whose sides are multiples of {unit} px"))
