import numpy as np
import pytest

from pipeline.features import compute_features, srgb_to_lab

RED, BLUE, WHITE, GREY = (255, 0, 0), (0, 0, 255), (255, 255, 255), (128, 128, 128)


def lab(rgb):
    return srgb_to_lab(np.array(rgb, np.uint8))


def test_mean_is_the_mean_of_pixel_lab_values():
    patch = np.zeros((1, 6, 6, 3), np.uint8)
    patch[0, :, :3] = RED
    patch[0, :, 3:] = BLUE
    features = compute_features(patch, grid=2)
    np.testing.assert_allclose(features.mean_lab[0], (lab(RED) + lab(BLUE)) / 2, atol=1e-4)


def test_grid_blocks_follow_the_layout():
    # Top-left quarter white, the rest grey; grid 3 on 6x6 gives 2x2 blocks.
    patch = np.full((1, 6, 6, 3), GREY, np.uint8)
    patch[0, :2, :2] = WHITE
    grid = compute_features(patch, grid=3).grid_lab[0]
    np.testing.assert_allclose(grid[0, 0], lab(WHITE), atol=1e-4)
    for r in range(3):
        for c in range(3):
            if (r, c) != (0, 0):
                np.testing.assert_allclose(grid[r, c], lab(GREY), atol=1e-4)


def test_grid_handles_sizes_that_do_not_divide():
    # 7 px in 3 blocks: rows 0-1, 2-3, 4-6. Row 6 alone is white, so the last block is 1/3 white.
    patch = np.full((1, 7, 7, 3), GREY, np.uint8)
    patch[0, 6, :] = WHITE
    grid = compute_features(patch, grid=3).grid_lab[0]
    np.testing.assert_allclose(grid[2, 1], (2 * lab(GREY) + lab(WHITE)) / 3, atol=1e-4)
    np.testing.assert_allclose(grid[1, 1], lab(GREY), atol=1e-4)


def test_dominant_is_the_majority_colour_not_the_mean():
    patch = np.full((1, 4, 4, 3), RED, np.uint8)
    patch[0, 0, :] = BLUE  # a quarter blue
    features = compute_features(patch, grid=2)
    np.testing.assert_allclose(features.dominant_lab[0], lab(RED), atol=1e-4)
    assert np.linalg.norm(features.mean_lab[0] - lab(RED)) > 10


def test_dominant_averages_the_pixels_of_the_fullest_bin():
    # Two reds in the same 8-level bin (>>5): dominant is their Lab mean.
    patch = np.zeros((1, 2, 2, 3), np.uint8)
    patch[0, 0] = (224, 0, 0)
    patch[0, 1] = (255, 0, 0)
    features = compute_features(patch, grid=1)
    expected = (lab((224, 0, 0)) * 2 + lab((255, 0, 0)) * 2) / 4
    np.testing.assert_allclose(features.dominant_lab[0], expected, atol=1e-4)


def test_batches_are_independent():
    rng = np.random.default_rng(1)
    patches = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    together = compute_features(patches)
    for i in range(5):
        alone = compute_features(patches[i : i + 1])
        for a, b in zip(together, alone):
            np.testing.assert_allclose(a[i], b[0], atol=1e-4)


def test_shapes_and_validation():
    features = compute_features(np.zeros((3, 8, 8, 3), np.uint8), grid=4)
    assert features.mean_lab.shape == (3, 3) and features.dominant_lab.shape == (3, 3)
    assert features.grid_lab.shape == (3, 4, 4, 3)
    with pytest.raises(ValueError, match="smaller than"):
        compute_features(np.zeros((1, 2, 2, 3), np.uint8), grid=3)
    with pytest.raises(ValueError, match="uint8"):
        compute_features(np.zeros((1, 8, 8, 3), np.float32))
