import os

import numpy as np
import pytest
from PIL import Image

from pipeline import MosaicError, resize_tiles, tile_canvas, write_image


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


def test_resize_tiles_keeps_colour():
    tiles = np.full((2, 16, 16, 3), (200, 100, 50), np.uint8)
    out = resize_tiles(tiles, 5)
    assert out.shape == (2, 5, 5, 3)
    np.testing.assert_array_equal(out[:, 2, 2], [[200, 100, 50]] * 2)


@pytest.mark.parametrize("extension", [".jpg", ".png", ".tif"])
def test_write_image_formats(tmp_path, extension):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    write_image(pixels, tmp_path / f"out{extension}")
    with Image.open(tmp_path / f"out{extension}") as im:
        assert im.size == (30, 20) and im.mode == "RGB"
        if extension != ".jpg":
            np.testing.assert_array_equal(np.asarray(im), pixels)
    assert os.listdir(tmp_path) == [f"out{extension}"]  # no temporary left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(tmp_path / f"out{extension}").st_mode & 0o777 == 0o666 & ~umask


def test_write_image_refuses_bad_requests(tmp_path):
    with pytest.raises(MosaicError, match="must end in one of"):
        write_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "out.gif")
    with pytest.raises(MosaicError, match="JPEG's 65500 px limit"):
        write_image(np.zeros((1, 70000, 3), np.uint8), tmp_path / "wide.jpg")
    assert os.listdir(tmp_path) == []
