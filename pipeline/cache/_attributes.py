"""What a tile cache says of itself: its attributes (tile shape, grid, crop, roots, schema), read-only."""
from __future__ import annotations

import h5py

from ..features import TileAspect
from ..video import FrameSampling
from . import _schema

__all__ = ["CacheAttributes"]


class CacheAttributes:
    """The read-only attributes of an open cache; :class:`pipeline.cache.TileCache` holds the file."""

    _file: h5py.File

    @property
    def tile_size(self) -> int:
        """The thumbnails' shorter side, px."""
        return int(self._file.attrs["tile_size"])

    @property
    def tile_aspect(self) -> TileAspect:
        """The width-to-height ratio every tile was cut at."""
        return TileAspect(*(int(v) for v in self._file.attrs["tile_aspect"]))

    @property
    def thumbnail_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the stored thumbnails."""
        return tuple(int(v) for v in self._file["tiles/thumbnails"].shape[1:3])

    @property
    def grid(self) -> int:
        return int(self._file.attrs["grid"])

    @property
    def crop(self) -> str:
        """Where each photo's window was cut: ``centre`` or ``smart``."""
        crop = self._file.attrs["crop"]
        return crop.decode() if isinstance(crop, bytes) else str(crop)

    @property
    def frames(self) -> FrameSampling | None:
        """Which frames of videos this cache takes (``--frames``); None before it was first set."""
        raw = self._file.attrs.get("frames")
        if raw is None:
            return None
        return FrameSampling.parse(raw.decode() if isinstance(raw, bytes) else str(raw))

    @property
    def roots(self) -> list[str]:
        return _schema.read_attr_json(self._file, "roots")

    @property
    def feature_definitions(self) -> dict[str, str]:
        return _schema.read_attr_json(self._file, "feature_definitions")

    @property
    def schema_version(self) -> int:
        return int(self._file.attrs["schema_version"])

    @property
    def path(self) -> str:
        """The cache file's path."""
        return self._file.filename
