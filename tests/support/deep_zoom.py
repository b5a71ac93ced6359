"""Reading a Deep Zoom pyramid's level back from its tiles, for tests."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image

from pipeline.formats.deepzoom import DZ_OVERLAP, DZ_TILE


def read_level(files: Path, number: int, shape: tuple[int, ...]) -> np.ndarray:
    """Level ``number`` of the pyramid in ``files`` (``<stem>_files``), its tiles put in place (int16).

    Overlapping tiles are written over each other: a tile whose overlap disagrees
    with its neighbour shows as an error at the seam. Tiles are JPEG or, as
    libvips writes them when asked, PNG.
    """
    level = np.zeros(shape, np.int16)
    for name in os.listdir(files / str(number)):
        column, row = map(int, name[:-4].split("_"))
        if name.endswith(".png"):
            with Image.open(files / str(number) / name) as image:
                tile = np.asarray(image.convert("RGB"))
        else:
            with open(files / str(number) / name, "rb") as f:
                tile = simplejpeg.decode_jpeg(f.read())
        top, left = max(0, row * DZ_TILE - DZ_OVERLAP), max(0, column * DZ_TILE - DZ_OVERLAP)
        level[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return level
