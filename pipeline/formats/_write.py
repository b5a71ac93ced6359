"""Writing an output from its encoded bands, under a temporary name, renamed into place only when complete."""
from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np

from ..files import partial_sibling
from ._protocol import BandPlace
from ._pyramid import halve
from ._registry import format_for

__all__ = ["ArraySource", "check_output", "write_bands", "write_image"]


def check_output(path: str | os.PathLike, width: int, height: int) -> None:
    """Refuse, before any work, an output whose format is unknown or cannot hold ``width`` x ``height``."""
    format_for(path).check_size(width, height)


def write_bands(path: str | os.PathLike, width: int, height: int, bands: Iterable[Any], dpi: float | None = None) -> None:
    """Write an image of ``width`` x ``height`` from its bands, top to bottom, as its format encoded them.

    ``dpi``: the print resolution to record in the file (JPEG, PNG and TIFF carry it).

    Everything is written in a hidden folder beside ``path``
    (``.<name>.<host>.<pid>.<hex>.partial``) and published under the final name only
    when complete, so an interrupted write never leaves a half file there; the
    folder is removed whatever happens, and those of killed runs by the next write.
    """
    path = os.path.abspath(os.fspath(path))
    output_format = format_for(path)
    output_format.check_size(width, height)
    name = os.path.basename(path)
    with partial_sibling(path) as work:
        try:
            os.mkdir(work)
            writer = output_format.open_writer(work, name, width, height, dpi)
            try:
                for band in bands:
                    writer.add(band)
                writer.finish()
                writer.publish(path)
            finally:
                writer.close()
        except OSError as exc:
            if exc.filename:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), path) from None  # writes on a descriptor name no file


class ArraySource:
    """A :class:`pipeline.formats.BandSource` over rows already in memory."""

    def __init__(self, pixels: np.ndarray) -> None:
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"pixels of shape {pixels.shape} {pixels.dtype} are not RGB rows")
        self._pixels = pixels

    @property
    def shape(self) -> tuple[int, int]:
        return self._pixels.shape[:2]

    def canvas(self, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return self._pixels
        out[...] = self._pixels
        return out

    def levels(self, top: int, rows: int, count: int, repeat_odd: bool) -> list[np.ndarray]:
        levels = [self._pixels[top : top + rows]]
        while len(levels) < count:
            levels.append(halve(levels[-1], repeat_odd))
        return levels


def write_image(pixels: np.ndarray, path: str | os.PathLike, dpi: float | None = None) -> None:
    """Write an in-memory RGB image (H, W, 3) uint8 in the format its extension names, atomically (at ``dpi``)."""
    output_format = format_for(path)
    height, width = pixels.shape[:2]
    output_format.check_size(width, height)
    band = output_format.encode_band(ArraySource(pixels), BandPlace(0, 0, height, height, 1, 0))
    write_bands(path, width, height, [band], dpi)
