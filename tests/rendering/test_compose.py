import numpy as np
import pytest
from PIL import Image

from pipeline.rendering import blend_tiles, resize_tiles, tile_canvas


def test_tile_canvas_places_each_tile_in_its_cell():
    tiles = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30)])
    layout = np.array([[0, 1], [2, 0], [1, 1]])
    canvas = tile_canvas(tiles, layout)
    assert canvas.shape == (12, 8, 3)
    for r in range(3):
        for c in range(2):
            assert (canvas[4 * r : 4 * r + 4, 4 * c : 4 * c + 4] == tiles[layout[r, c]]).all()


def test_tile_canvas_keeps_tile_orientation():
    tile = np.zeros((1, 2, 2, 3), np.uint8)
    tile[0, 0, 1] = 255  # top-right pixel
    canvas = tile_canvas(tile, np.zeros((1, 2), int))
    assert canvas[0, 1].tolist() == [255] * 3 and canvas[0, 3].tolist() == [255] * 3 and canvas[1].max() == 0


def test_tile_canvas_of_no_rows_is_empty():
    # A pyramid's last band may own rows below the last cell's top: its preview holds no cells.
    tiles = np.zeros((3, 4, 4, 3), np.uint8)
    assert tile_canvas(tiles, np.zeros((0, 5), int)).shape == (0, 20, 3)
    assert tile_canvas(tiles, np.zeros((0, 5), int), out=np.empty((0, 20, 3), np.uint8)).shape == (0, 20, 3)


def test_resize_tiles_keeps_colour():
    tiles = np.full((2, 16, 16, 3), (200, 100, 50), np.uint8)
    out = resize_tiles(tiles, 5)
    assert out.shape == (2, 5, 5, 3)
    np.testing.assert_array_equal(out[:, 2, 2], [[200, 100, 50]] * 2)


def _resize_alone(tile: np.ndarray, tile_px: int) -> np.ndarray:
    """The documented policy on one tile: block-average by the integer factor, then Lanczos."""
    image, factor = Image.fromarray(tile), tile.shape[0] // tile_px
    if factor >= 2 and tile.shape[0] % factor == 0:
        image = image.reduce(factor)
    return np.asarray(image.resize((tile_px, tile_px), Image.Resampling.LANCZOS))


@pytest.mark.parametrize("tile_px", [7, 20, 29, 100])
def test_resize_tiles_equals_resizing_each_tile_alone(tile_px):
    tiles = np.random.default_rng(1).integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    expected = np.stack([_resize_alone(t, tile_px) for t in tiles])
    np.testing.assert_array_equal(resize_tiles(tiles, tile_px), expected)


def test_resize_tiles_by_an_integer_factor_averages_blocks():
    tiles = np.random.default_rng(2).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    block_means = tiles.reshape(3, 12, 4, 12, 4, 3).mean(axis=(2, 4))
    assert np.abs(resize_tiles(tiles, 12) - block_means).max() <= 0.5  # rounding only: no bleeding between tiles


def test_blend_tiles_moves_toward_the_cell_colour():
    tiles = np.random.default_rng(3).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    assert blend_tiles(tiles, colours, 0.0) is tiles
    np.testing.assert_array_equal(blend_tiles(tiles, colours, 1.0), np.broadcast_to(colours[:, None, None], tiles.shape))
    half = blend_tiles(tiles, colours, 0.5).astype(int)
    assert np.abs(half - (tiles.astype(int) + colours[:, None, None].astype(int)) / 2).max() <= 0.5
    with pytest.raises(ValueError):
        blend_tiles(tiles, colours, 1.5)
