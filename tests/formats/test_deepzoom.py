"""Deep Zoom pyramids from bands encoded apart: libvips's files and level sizes, every level the image halved."""
import os

import numpy as np
import pytest
import pyvips
import simplejpeg

from pipeline.formats import halve
from pipeline.formats.deepzoom import DZ_TILE, DeepZoomWriter, dz_level_sizes, encode_dz_band
from support.deep_zoom import read_level


def _photo_like(height, width, seed=0):
    """Blocks of colour with noise: tiles of a mosaic, roughly, so JPEG has real work."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8)
    pixels = np.repeat(np.repeat(blocks, 24, 0), 24, 1)[:height, :width].astype(np.int16)
    return (pixels + rng.integers(-25, 25, pixels.shape)).clip(0, 255).astype(np.uint8)


def _reference_levels(pixels):
    levels = [pixels]
    while levels[-1].shape[:2] != (1, 1):
        levels.append(halve(levels[-1], repeat_odd=True))
    return levels


def _write_bands(folder, pixels, levels, quality=90, step_tiles=1):
    """The pyramid from bands of ``levels`` levels each, cut as render's plan cuts them, rendered with margins."""
    height, width = pixels.shape[:2]
    step, margin = (DZ_TILE * step_tiles) << (levels - 1), 1 << (levels - 1)
    writer = DeepZoomWriter(str(folder), "bands", width, height)
    for top in range(0, height, step):
        start, stop = max(0, top - margin), min(height, top + step + margin)
        band_levels = [pixels[start:stop]]
        while len(band_levels) < levels:
            band_levels.append(halve(band_levels[-1], repeat_odd=True))
        writer.add(encode_dz_band(band_levels, top, min(height, top + step) - top, height, quality))
    writer.finish()


def _tile_shapes(folder):
    shapes = {}
    for level in os.listdir(folder):
        if level.isdigit():
            for name in os.listdir(folder / level):
                with open(folder / level / name, "rb") as f:
                    shapes[level, name] = simplejpeg.decode_jpeg_header(f.read())[:2]
    return shapes


def test_level_sizes_halve_rounding_up_to_one_pixel():
    assert dz_level_sizes(517, 301) == [(517, 301), (259, 151), (130, 76), (65, 38), (33, 19), (17, 10), (9, 5),
                                        (5, 3), (3, 2), (2, 1), (1, 1)]
    assert dz_level_sizes(1, 1) == [(1, 1)]


def test_halving_odd_sizes_repeats_the_last_row_and_column_as_libvips_does(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (301, 517, 3), dtype=np.uint8)
    pyvips.Image.new_from_array(pixels, interpretation="srgb").dzsave(str(tmp_path / "v"), suffix=".png", overlap=1,
                                                                      tile_size=DZ_TILE, layout="dz")
    for number, reference in zip(range(10, -1, -1), _reference_levels(pixels)):
        level = read_level(tmp_path / "v_files", number, reference.shape)
        np.testing.assert_array_equal(level, reference, err_msg=f"level {number}")


@pytest.mark.parametrize("height, width, levels, quality", [
    (1301, 1517, 3, 90),  # odd sizes at most levels; three levels per band, the rest carried by the writer
    (2033, 777, 2, 90),  # a short last band, under its neighbour's margin
    (600, 1000, 1, 80),  # one level per band; chroma subsampled below quality 90
    (5000, 3, 2, 90),  # narrow and tall
    (1, 1, 1, 90),  # one pixel, one level
])
def test_bands_make_libvips_pyramid_of_the_image(tmp_path, height, width, levels, quality):
    pixels = _photo_like(height, width)
    _write_bands(tmp_path, pixels, levels, quality)
    pyvips.Image.new_from_array(pixels, interpretation="srgb").dzsave(str(tmp_path / "whole"), suffix=f".jpg[Q={quality}]",
                                                                      overlap=1, tile_size=DZ_TILE, layout="dz")
    ours, theirs = _tile_shapes(tmp_path / "bands_files"), _tile_shapes(tmp_path / "whole_files")
    assert ours == theirs  # the same levels, tile names and tile sizes
    assert (tmp_path / "bands.dzi").read_text().count(f'Width="{width}" Height="{height}"') == 1
    for number, reference in zip(range(len(dz_level_sizes(width, height)) - 1, -1, -1), _reference_levels(pixels)):
        mine = np.abs(read_level(tmp_path / "bands_files", number, reference.shape) - reference).mean()
        libvips = np.abs(read_level(tmp_path / "whole_files", number, reference.shape) - reference).mean()
        assert mine <= 1.1 * libvips + 0.05, number  # JPEG's loss, as libvips's; a row out of place costs ~30


def test_bands_of_several_tile_rows_and_a_missing_band_is_an_error(tmp_path):
    pixels = _photo_like(1200, 700)
    _write_bands(tmp_path, pixels, 2, step_tiles=2)
    assert len(os.listdir(tmp_path / "bands_files" / "11")) == 3 * 5  # 1200 x 700: 5 rows of 3 tiles
    writer = DeepZoomWriter(str(tmp_path), "short", 700, 1200)
    writer.add(encode_dz_band([pixels[:510], halve(pixels[:510], repeat_odd=True)], 0, 508, 1200, 90))
    with pytest.raises(ValueError, match="bands held 508 rows, 1200 were announced"):
        writer.finish()
    assert not (tmp_path / "short.dzi").exists()


def test_a_band_off_its_step_is_refused():
    pixels = _photo_like(600, 300)
    with pytest.raises(ValueError, match="whole multiples of 508 rows"):
        encode_dz_band([pixels, halve(pixels, repeat_odd=True)], 254, 300, 600, 90)
    with pytest.raises(ValueError, match="level 0 is"):
        encode_dz_band([pixels[:500]], 0, 254, 600, 90)
