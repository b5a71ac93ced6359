"""The assignment record: which tile went to which cell, enough to render the mosaic again without matching.

Two forms are written side by side: ``<stem>.assignment.csv`` for people and
spreadsheets, and ``<stem>.assignment.npz``, compact and fast for large grids.
Either can be read back by :func:`read_assignment`.
"""
from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from .errors import MosaicError
from .features import srgb_to_lab
from .files import replaced_atomically
from .layout import QuadCells

__all__ = ["AssignmentRecord", "read_assignment", "write_assignment"]

_CSV_COLUMNS = ["row", "col", "tile", "tile_path", "distance", "cell_r", "cell_g", "cell_b"]
_FLIPPED_COLUMN = "flipped"  # written only for a mosaic made with --flip: 1 where the tile is mirrored
_LEVEL_COLUMN = "level"  # written only for a subdivided grid: row and col then count cells of that level


@dataclass
class AssignmentRecord:
    """A matched grid.

    Attributes
    ----------
    tiles : ndarray of int64, shape (rows, cols)
        The cache row of the tile in each cell.
    distances : ndarray of float32, shape (rows, cols)
        Each cell's CIE76 colour distance to its tile.
    cell_rgb : ndarray of uint8, shape (rows, cols, 3)
        Each cell's mean sRGB colour in the target (what ``--blend`` pulls toward).
    tile_paths : dict of int to str
        The photo path of every tile used, by cache row: checked against the
        cache before rendering, so a changed cache is caught, not silently used.
    target : str
        The target photo (empty when read from a CSV).
    cell_grid : ndarray of float16, shape (rows, cols, g, g, 3), optional
        Each cell's CIELAB block means (what ``--correct`` moves tiles toward), at
        the precision the record stores (0.06 L* at most), so that a render from
        the file equals make's; a record without them (a CSV) corrects toward each
        cell's mean colour.
    correct : float
        The colour correction the mosaic was made with (0..1); ``render`` uses it
        unless told otherwise.
    dpi : float, optional
        The print resolution the mosaic was written at; ``render`` writes it too unless told otherwise.
    flipped : ndarray of bool, shape (rows, cols), optional
        Where the tile is used mirrored left to right (a mosaic made with ``flip``).
    quad : QuadCells, optional
        A subdivided grid (cells of several sizes): then every per-cell array above is
        one-dimensional, in ``quad``'s order of cells, and ``rows`` and ``cols`` are its grid's.
    """

    tiles: np.ndarray
    distances: np.ndarray
    cell_rgb: np.ndarray
    tile_paths: dict[int, str]
    target: str = ""
    cell_grid: np.ndarray | None = None
    correct: float = 0.0
    dpi: float | None = None
    flipped: np.ndarray | None = None
    quad: QuadCells | None = None

    @property
    def rows(self) -> int:
        return self.tiles.shape[0] if self.quad is None else self.quad.rows

    @property
    def cols(self) -> int:
        return self.tiles.shape[1] if self.quad is None else self.quad.cols

    def positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Each cell's row, column (among the cells of its level) and level (None for a plain grid), flat."""
        if self.quad is not None:
            return self.quad.row, self.quad.col, self.quad.level
        cells = np.arange(self.tiles.size)
        return cells // self.cols, cells % self.cols, None

    def correction_grid(self) -> np.ndarray:
        """(rows, cols, g, g, 3) CIELAB targets of the correction: ``cell_grid``, else each cell's mean as a 1x1 grid."""
        if self.cell_grid is not None:
            return self.cell_grid.astype(np.float32)
        return srgb_to_lab(self.cell_rgb)[..., None, None, :]


def write_assignment(record: AssignmentRecord, stem: str) -> tuple[str, str]:
    """Write ``<stem>.assignment.csv`` and ``<stem>.assignment.npz`` atomically; returns both paths."""
    csv_path, npz_path = stem + ".assignment.csv", stem + ".assignment.npz"
    flat_tiles = record.tiles.ravel()
    flat_rgb = record.cell_rgb.reshape(-1, 3)
    flipped = None if record.flipped is None else record.flipped.ravel().astype(int).tolist()
    rows, cols, levels = (part.tolist() if part is not None else None for part in record.positions())
    with replaced_atomically(csv_path, binary=False, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_CSV_COLUMNS + ([] if levels is None else [_LEVEL_COLUMN])
                        + ([] if flipped is None else [_FLIPPED_COLUMN]))
        for cell, (tile, distance) in enumerate(zip(flat_tiles.tolist(), record.distances.ravel().tolist())):
            r, g, b = flat_rgb[cell].tolist()
            writer.writerow([rows[cell], cols[cell], tile, record.tile_paths[tile], f"{distance:.3f}", r, g, b]
                            + ([] if levels is None else [levels[cell]]) + ([] if flipped is None else [flipped[cell]]))
    used = np.array(sorted(record.tile_paths), dtype=np.int64)
    with replaced_atomically(npz_path) as f:
        np.savez_compressed(f, tiles=record.tiles, distances=record.distances, cell_rgb=record.cell_rgb,
                            used_rows=used, used_paths=np.array([record.tile_paths[r] for r in used.tolist()], dtype=str),
                            target=np.array(record.target), correct=np.array(record.correct, np.float64),
                            **({} if record.dpi is None else {"dpi": np.array(record.dpi, np.float64)}),
                            **({} if record.flipped is None else {"flipped": record.flipped.astype(bool)}),
                            **({} if record.quad is None else {
                                "quad_level": record.quad.level, "quad_row": record.quad.row, "quad_col": record.quad.col,
                                "quad_grid": np.array([record.quad.rows, record.quad.cols], np.int64)}),
                            **({} if record.cell_grid is None else {"cell_grid": record.cell_grid.astype(np.float16)}))
    return csv_path, npz_path


def _read_npz(path: str) -> AssignmentRecord:
    with np.load(path, allow_pickle=False) as data:
        missing = {"tiles", "distances", "cell_rgb", "used_rows", "used_paths"} - set(data.files)
        if missing:
            raise MosaicError(f"{path} is not an assignment record: it lacks {', '.join(sorted(missing))}")
        return AssignmentRecord(
            tiles=data["tiles"].astype(np.int64), distances=data["distances"].astype(np.float32),
            cell_rgb=data["cell_rgb"].astype(np.uint8),
            tile_paths=dict(zip(data["used_rows"].tolist(), data["used_paths"].tolist())),
            target=str(data["target"]) if "target" in data.files else "",
            cell_grid=data["cell_grid"].astype(np.float16) if "cell_grid" in data.files else None,
            correct=float(data["correct"]) if "correct" in data.files else 0.0,
            dpi=float(data["dpi"]) if "dpi" in data.files else None,
            flipped=data["flipped"].astype(bool) if "flipped" in data.files else None,
            quad=_checked_quad(path, QuadCells(data["quad_level"].astype(np.int8), data["quad_row"].astype(np.int32),
                                               data["quad_col"].astype(np.int32), *data["quad_grid"].tolist()))
            if "quad_level" in data.files else None,
        )


def _checked_quad(path: str, quad: QuadCells) -> QuadCells:
    if not quad.covers_grid():
        raise MosaicError(f"{path}: its cells do not cover a {quad.cols}x{quad.rows} grid once at every point")
    return quad


def _read_csv(path: str) -> AssignmentRecord:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None) or []
        extra = header[len(_CSV_COLUMNS):]
        if header[:len(_CSV_COLUMNS)] != _CSV_COLUMNS or [c for c in (_LEVEL_COLUMN, _FLIPPED_COLUMN) if c in extra] != extra:
            raise MosaicError(f"{path} is not an assignment record: its header should be {','.join(_CSV_COLUMNS)}"
                              f"[,{_LEVEL_COLUMN}][,{_FLIPPED_COLUMN}]")
        has_levels, has_flips = _LEVEL_COLUMN in extra, _FLIPPED_COLUMN in extra
        cells, paths = [], {}
        for line_number, line in enumerate(reader, start=2):
            try:
                if len(line) != len(header) or (has_flips and line[-1] not in ("0", "1")):
                    raise ValueError
                row, col, tile, tile_path, distance, r, g, b = line[:len(_CSV_COLUMNS)]
                cells.append((int(row), int(col), int(tile), float(distance), int(r), int(g), int(b),
                              int(line[-1]) if has_flips else 0, int(line[len(_CSV_COLUMNS)]) if has_levels else 0))
            except ValueError:
                raise MosaicError(f"{path}, line {line_number}: not a row of an assignment record") from None
            paths[int(tile)] = tile_path
    if not cells:
        raise MosaicError(f"{path} is an empty assignment record")
    table = np.array(cells, dtype=np.float64)
    row, col, level = (table[:, i].astype(np.int64) for i in (0, 1, 8))
    if table[:, [0, 1, 8]].min() < 0 or level.max() > 30:
        raise MosaicError(f"{path} has a cell outside its grid")
    quad = None
    if has_levels:
        grid_rows, grid_cols = int((row >> level).max()) + 1, int((col >> level).max()) + 1
        quad, order = QuadCells.ordered(level.astype(np.int8), row.astype(np.int32), col.astype(np.int32), grid_rows,
                                        grid_cols)
        _checked_quad(path, quad)
        table, shape = table[order], (len(table),)
    else:
        grid_rows, grid_cols = int(row.max()) + 1, int(col.max()) + 1
        position = row * grid_cols + col
        if len(cells) != grid_rows * grid_cols or len(np.unique(position)) != len(cells):
            raise MosaicError(f"{path} does not cover a {grid_cols}x{grid_rows} grid once per cell")
        table, shape = table[np.argsort(position)], (grid_rows, grid_cols)
    return AssignmentRecord(
        tiles=table[:, 2].astype(np.int64).reshape(shape),
        distances=table[:, 3].astype(np.float32).reshape(shape),
        cell_rgb=np.clip(table[:, 4:7], 0, 255).astype(np.uint8).reshape(*shape, 3),
        tile_paths=paths,
        flipped=table[:, 7].astype(bool).reshape(shape) if has_flips else None,
        quad=quad,
    )


def read_assignment(path: str | os.PathLike) -> AssignmentRecord:
    """Read an assignment record written by :func:`write_assignment` (``.npz`` or ``.csv``).

    Raises
    ------
    MosaicError
        If the file is missing or is not an assignment record.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MosaicError(f"no assignment record at {path}")
    try:
        if zipfile.is_zipfile(path):
            return _read_npz(path)
        return _read_csv(path)
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise MosaicError(f"cannot read assignment record {path}: {exc}") from None
