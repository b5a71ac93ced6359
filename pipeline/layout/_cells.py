"""A target's cells as matching sees them: one grid, or a subdivided one, each cell with its features and priority."""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..target import TargetCells, describe_cells
from ._priority import cell_levels, priority_map
from ._quadtree import QuadCells, subdivide

__all__ = ["LaidOutCells", "lay_out_cells"]


class LaidOutCells(NamedTuple):
    """Every cell of a mosaic, flat: row-major for a plain grid, in ``quad``'s order for a subdivided one."""

    grid_lab: np.ndarray  # (n, g, g, 3) float32 block means
    mean_lab: np.ndarray  # (n, 3) float32
    mean_rgb: np.ndarray  # (n, 3) uint8
    quad: QuadCells | None  # the cells' places in a subdivided grid; None: the plain grid
    priority: np.ndarray | None  # (n,) 0..1 mean priority of each cell, with a priority map
    priority_source: str


def _gather(quad: QuadCells, per_level: list[np.ndarray]) -> np.ndarray:
    """One array over ``quad``'s cells from arrays over every cell of each level (row-major)."""
    out = np.empty((len(quad.level),) + per_level[0].shape[1:], per_level[0].dtype)
    for level, values in enumerate(per_level):
        out[np.flatnonzero(quad.level == level)] = values[quad.of_level(level)]
    return out


def lay_out_cells(cells: TargetCells, aspect, *, levels: int = 0, share: float = 0.25, min_detail: float = 2.0,
                  priority: str | os.PathLike | None = None) -> LaidOutCells:
    """The cells of ``cells``' grid, split up to ``levels`` times where the target has detail, with their priority.

    Parameters
    ----------
    cells : TargetCells
        The target and its grid (:func:`pipeline.target.describe_target`).
    aspect : TileAspect
        The cells' aspect, the cache's.
    levels : int
        How often a cell may split into 2x2 (0: the plain grid); see :func:`subdivide` for
        ``share`` and ``min_detail``.
    priority : path or "auto", optional
        A priority map (:func:`priority_map`), averaged over each cell.
    """
    features = cells.features
    grid = features.grid_lab.shape[1]
    found = priority_map(priority, cells.pixels) if priority is not None else None
    if not levels:
        priority_levels = None if found is None else cell_levels(found, cells.rows, cells.cols, aspect)
        return LaidOutCells(features.grid_lab, features.mean_lab, cells.mean_rgb, None, priority_levels,
                            found.source if found else "")
    per_level = [(features, cells.mean_rgb)]
    for level in range(1, levels + 1):
        per_level.append(describe_cells(cells.pixels, cells.rows << level, cells.cols << level, grid, aspect))
    quad = subdivide([f.grid_lab for f, _ in per_level], cells.rows, cells.cols, share, min_detail)
    priority_levels = None if found is None else _gather(quad, [
        cell_levels(found, cells.rows << level, cells.cols << level, aspect) for level in range(levels + 1)])
    return LaidOutCells(_gather(quad, [f.grid_lab for f, _ in per_level]), _gather(quad, [f.mean_lab for f, _ in per_level]),
                        _gather(quad, [rgb for _, rgb in per_level]), quad, priority_levels, found.source if found else "")
