"""What every output format provides, and what it is handed: the protocol behind the registry.

A render cuts the mosaic into horizontal bands (:meth:`Format.plan_bands`); each
band is encoded apart, on a worker (:meth:`Format.encode_band`), from a
:class:`BandSource` that draws its pixels; the client hands the encoded bands, in
order, to the format's :class:`BandWriter`, which files them under a temporary
folder and publishes the finished output under its final name.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["BandPlace", "BandSource", "BandWriter", "Format"]


class BandPlace(NamedTuple):
    """Where a band's pixels sit in the output."""

    first_row: int = 0  # the band's first pixel row in the image
    skip_rows: int = 0  # rows of its cells above first_row: pyramids' bands cut through cells
    rows: int | None = None  # its pixel rows, if not all its cells'
    image_height: int = 0  # for pyramids
    levels: int = 1  # pyramid levels the band encodes itself, for pyramids
    margin: int = 0  # rows rendered beyond the band's own, above and below, where tiles overlap (Deep Zoom)


class BandSource(Protocol):
    """The pixels of one band, drawn on demand: by the renderer from tiles, or from an array."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, width) of the canvas."""

    def canvas(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every pixel row of the band's cells, (h, w, 3) uint8; drawn into ``out`` if given."""

    def levels(self, top: int, rows: int, count: int, repeat_odd: bool) -> list[np.ndarray]:
        """Rows ``top .. top + rows`` of the canvas at pyramid levels ``0 .. count - 1``.

        Each level is the 2x2 halving of the one before (an odd last row or column
        dropped, or repeated with ``repeat_odd``), its rows halved from the rows above.
        """


@runtime_checkable
class BandWriter(Protocol):
    """Files encoded bands, top to bottom, in a temporary folder; then publishes the output."""

    def add(self, band: Any) -> None:
        """Take the next band, as :meth:`Format.encode_band` returned it."""

    def finish(self) -> None:
        """Check that the bands covered the image and write what comes last (trailers, directories)."""

    def publish(self, path: str) -> None:
        """Move the finished output to ``path`` (and its companions beside it), atomically where it can."""

    def close(self) -> None:
        """Release open files; called whether or not the output was finished."""


@runtime_checkable
class Format(Protocol):
    """One output format: its names, limits, band geometry, band encoder and writer."""

    name: str  # e.g. "jpeg"
    extensions: tuple[str, ...]  # lower case, with the dot: (".jpg", ".jpeg")
    description: str  # for help texts

    def check_size(self, width: int, height: int) -> None:
        """Raise :class:`pipeline.MosaicError` if the format cannot hold ``width`` x ``height`` pixels."""

    def plan_bands(self, rows: int, cols: int, tile_shape: tuple[int, int], threads: int,
                   band_bytes: int | None = None) -> list[tuple[int, int, BandPlace]]:
        """Each band's rows of cells ``(first, end)`` and place: a few bands per thread, ~``band_bytes`` each.

        ``tile_shape`` is each cell's ``(height, width)`` in the output, px.
        """

    def encode_band(self, source: BandSource, place: BandPlace) -> Any:
        """Encode one band (runs on a worker); what it returns goes to the writer's :meth:`BandWriter.add`."""

    def open_writer(self, folder: str, name: str, width: int, height: int, dpi: float | None = None) -> BandWriter:
        """A writer of an output called ``name``, ``width`` x ``height``, working in the empty ``folder``.

        ``dpi``, if given, is the print resolution the file should carry, where the format has a place for it.
        """
