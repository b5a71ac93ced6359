import numpy as np
import pytest

from pipeline.coverage import HUE_NAMES, colour_coverage, hue_sectors
from pipeline.features import srgb_to_lab


def lab(*rgb):
    return srgb_to_lab(np.array(rgb, np.uint8))


@pytest.mark.parametrize(("rgb", "name"), [
    ((220, 30, 30), "red"), ((240, 140, 20), "orange"), ((240, 220, 30), "yellow"), ((30, 160, 60), "green"),
    ((30, 200, 220), "cyan"), ((0, 0, 255), "blue"), ((100, 160, 230), "blue"), ((255, 0, 255), "purple"),
    ((240, 80, 180), "pink"), ((128, 130, 128), "grey"), ((20, 20, 20), "grey"),
])
def test_hue_sectors_name_colours_as_people_do(rgb, name):
    assert HUE_NAMES[hue_sectors(lab(rgb))[0]] == name


def test_a_missing_hue_is_named_and_its_cells_counted():
    rng = np.random.default_rng(0)
    reds = lab(*[(200 + d, 30, 30) for d in rng.integers(0, 50, 60)])
    blues = lab(*[(20, 40, 200 + d) for d in rng.integers(0, 50, 40)])
    greys = lab(*[(v, v, v) for v in range(40, 240, 2)])
    coverage = colour_coverage(np.concatenate([reds, blues]), np.concatenate([reds, greys]))
    assert coverage.thin == ["blue"]
    assert coverage.distant_cells == 40 and np.all(coverage.nearest[:60] < 1e-3)
    verdict = coverage.verdict()
    assert "covers 60% of the target's 100 cells" in verdict and "blue is missing (40% of the target" in verdict
    assert "40 of 100 cells (40%) have no tile within 10 delta E" in verdict


def test_a_scarce_hue_is_told_apart_from_a_missing_one():
    reds = lab(*[(200 + d, 30, 30) for d in range(50)])
    coverage = colour_coverage(reds, reds[::10])  # every cell near a tile, but 50 cells for 5 tiles
    assert coverage.thin == ["red"] and coverage.distant_cells == 0
    assert "red is scarce (100% of the target: 50 cells for 5 tiles" in coverage.verdict()


def test_a_library_that_covers_the_target_has_nothing_thin():
    colours = lab(*[(r, g, b) for r in range(0, 256, 40) for g in range(0, 256, 40) for b in range(0, 256, 40)])
    coverage = colour_coverage(colours[::3], colours)
    assert coverage.thin == [] and coverage.distant_cells == 0
    assert "Every hue the target uses is well represented" in coverage.verdict()
    np.testing.assert_allclose(coverage.target_share.sum(), 1.0)


def test_an_empty_library_is_a_clear_error():
    from pipeline import MosaicError

    with pytest.raises(MosaicError, match="holds no tiles"):
        colour_coverage(lab((1, 2, 3)), np.empty((0, 3), np.float32))
