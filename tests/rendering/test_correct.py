"""correct_tiles: tiles moved toward their cells' colours block by block, their detail kept (real photos)."""
import numpy as np
import pytest

from pipeline.features import compute_features, srgb_to_lab
from pipeline.photo import load_thumbnail
from pipeline.rendering import blend_tiles, correct_tiles


def _tiles(photos, count: int, side: int = 32) -> np.ndarray:
    return np.stack([load_thumbnail(str(path), side) for path in photos[:count]])


def _detail(tiles: np.ndarray) -> np.ndarray:
    """Each tile's lightness minus its 3x3 neighbourhood mean: the fine texture a correction should keep."""
    lightness = srgb_to_lab(tiles)[..., 0]
    padded = np.pad(lightness, ((0, 0), (1, 1), (1, 1)), mode="edge")
    side = lightness.shape[1]
    local = sum(padded[:, dy:dy + side, dx:dx + side] for dy in range(3) for dx in range(3)) / 9
    return lightness - local


def test_no_correction_leaves_tiles_alone(demo_photos):
    tiles = _tiles(demo_photos, 4)
    assert correct_tiles(tiles, np.zeros((4, 4, 4, 3)), 0.0) is tiles
    with pytest.raises(ValueError, match="between 0 and 1"):
        correct_tiles(tiles, np.zeros((4, 4, 4, 3)), 1.5)


def test_full_correction_gives_each_tile_its_cells_block_colours_and_keeps_its_detail(demo_photos):
    tiles = _tiles(demo_photos, 24)
    cells = np.roll(tiles, 1, axis=0)  # each tile corrected toward another real photo: colours sRGB can show
    cell_grids = compute_features(cells, grid=4).grid_lab
    before = np.abs(compute_features(tiles, grid=4).grid_lab - cell_grids).mean()
    corrected = correct_tiles(tiles, cell_grids, 1.0)
    after = np.abs(compute_features(corrected, grid=4).grid_lab - cell_grids).mean()
    assert after < 0.25 * before, (before, after)
    # Blend brings the colours only part of the way at half strength, and fades the texture by as much.
    blended = blend_tiles(tiles, np.round(cells.mean(axis=(1, 2))).astype(np.uint8), 0.5)
    kept_corrected = np.std(_detail(corrected)) / np.std(_detail(tiles))
    kept_blended = np.std(_detail(blended)) / np.std(_detail(tiles))
    assert kept_corrected > 0.85 and kept_blended < 0.6, (kept_corrected, kept_blended)
    # The texture is the tile's own, in place: its fine detail correlates with the original's.
    correlation = np.corrcoef(_detail(corrected).ravel(), _detail(tiles).ravel())[0, 1]
    assert correlation > 0.9, correlation


def test_half_correction_moves_half_way(demo_photos):
    tiles = _tiles(demo_photos, 12)
    cell_grids = compute_features(np.roll(tiles, 3, axis=0), grid=4).grid_lab
    own = compute_features(tiles, grid=4).grid_lab
    half = compute_features(correct_tiles(tiles, cell_grids, 0.5), grid=4).grid_lab
    np.testing.assert_allclose(np.abs(half - own).mean(), 0.5 * np.abs(cell_grids - own).mean(), rtol=0.15)
