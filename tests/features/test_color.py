import numpy as np
import pytest

from pipeline.features import lab_to_srgb, srgb_to_lab

# Reference values from the CIE formulas (D65), as published by e.g. Bruce Lindbloom's calculator.
REFERENCE = [
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
]


@pytest.mark.parametrize(("rgb", "lab"), REFERENCE)
def test_srgb_to_lab_matches_reference(rgb, lab):
    np.testing.assert_allclose(srgb_to_lab(np.array([rgb], np.uint8))[0], lab, atol=2e-3)


def test_float_input_agrees_with_uint8():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    np.testing.assert_allclose(srgb_to_lab(pixels), srgb_to_lab(pixels / 255.0), atol=1e-3)


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match="length 3"):
        srgb_to_lab(np.zeros((4, 4), np.uint8))


def test_lab_to_srgb_inverts_srgb_to_lab_on_every_level_of_each_channel():
    levels = np.arange(0, 256, 3, dtype=np.uint8)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    np.testing.assert_array_equal(lab_to_srgb(srgb_to_lab(rgb)), rgb)


def test_lab_to_srgb_clips_colours_srgb_cannot_show():
    out = lab_to_srgb(np.array([[100.0, 0.0, 0.0], [50.0, 120.0, 0.0], [-5.0, 0.0, 0.0]]))
    assert out.dtype == np.uint8
    assert out[0].tolist() == [255, 255, 255] and out[2].tolist() == [0, 0, 0]
    assert out[1, 0] == 255 and out[1, 1] == 0  # as red as sRGB goes
