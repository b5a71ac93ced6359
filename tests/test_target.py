import numpy as np
import pytest

from pipeline import MosaicError
from pipeline.target import cell_patches, grid_shape


def test_grid_shape_follows_aspect_ratio():
    assert grid_shape(1000, 500, cols=80) == (40, 80)
    assert grid_shape(1001, 648, cols=64) == (41, 64)
    assert grid_shape(1000, 500, cols=10, rows=3) == (3, 10)
    with pytest.raises(MosaicError):
        grid_shape(100, 100, cols=0)


def test_cell_patches_are_row_major_and_cropped_to_the_grid():
    # 4 columns of distinct colours, 2 rows; the extra 10 px on each side get cropped away.
    target = np.zeros((200, 420, 3), np.uint8)
    for c in range(4):
        target[:, 10 + 100 * c : 10 + 100 * (c + 1)] = (60 * c, 255 - 60 * c, 100)
    target[:100, :, 2] = 0
    patches = cell_patches(target, rows=2, cols=4, cell_px=8)
    assert patches.shape == (8, 8, 8, 3)
    for cell in range(8):
        r, c = divmod(cell, 4)
        expected = (60 * c, 255 - 60 * c, 0 if r == 0 else 100)
        np.testing.assert_allclose(patches[cell, 2:-2, 2:-2].reshape(-1, 3).mean(0), expected, atol=3)
