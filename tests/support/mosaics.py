"""The mosaic an assignment record describes, built from the product's own pieces, for comparing renders against."""
from __future__ import annotations

import numpy as np

from pipeline import TileCache
from pipeline.rendering import correct_tiles, resize_tiles, tile_canvas


def expected_mosaic(record, cache, tile: int | tuple[int, int]) -> np.ndarray:
    """Each cell's thumbnail resized to ``tile`` (a side, or (height, width)), corrected toward its cell as the record says."""
    with TileCache.open(cache) as c:
        used, layout = np.unique(record.tiles, return_inverse=True)
        images = resize_tiles(c.thumbnails(used), tile)
    if record.correct:  # every cell its tile moved toward the cell's colours, as the record says
        grid = record.correction_grid()
        images = correct_tiles(images[layout.ravel()], grid.reshape(-1, *grid.shape[2:]), record.correct)
        layout = np.arange(record.tiles.size)
    return tile_canvas(images, layout.reshape(record.tiles.shape))
