"""The writer side that single-file formats (JPEG, PNG, TIFF) share: one file in the work folder, renamed at the end."""
from __future__ import annotations

import os

import numpy as np

from ..files import write_all
from ._pyramid import BandTally

__all__ = ["FileOutput"]


class FileOutput:
    """A new file ``name`` in ``folder``, for a ``width`` x ``height`` image; :meth:`publish` renames it into place.

    Subclasses write with :meth:`write` and count bands in with ``self.bands``
    (a :class:`BandTally`); ``self.dpi`` is the print resolution to record, or None.
    """

    def __init__(self, folder: str, name: str, width: int, height: int, dpi: float | None = None) -> None:
        self._temporary = os.path.join(folder, name)
        self._file = open(self._temporary, "xb")
        self.fd = self._file.fileno()
        self.width, self.height = width, height
        self.bands = BandTally(width, height)
        self.dpi = dpi

    def write(self, parts: list[bytes | np.ndarray]) -> None:
        """Append byte strings and 1-D uint8 arrays, in order."""
        write_all(self.fd, parts)

    def publish(self, path: str) -> None:
        self._file.close()
        os.replace(self._temporary, path)

    def close(self) -> None:
        self._file.close()
