"""Pyramidal TIFF from bands encoded apart: the same file, level for level, as libvips's from the whole image."""
import os

import numpy as np
import pytest
import pyvips
from PIL import Image

from pipeline._tiff_bands import TILE, PyramidTiffWriter, encode_tiff_band, halve, pyramid_sizes, tiff_band_levels


def _photo_like(height, width, seed=0):
    """Blocks of colour with noise: tiles of a mosaic, roughly, so JPEG has real work."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8)
    pixels = np.repeat(np.repeat(blocks, 24, 0), 24, 1)[:height, :width].astype(np.int16)
    return (pixels + rng.integers(-25, 25, pixels.shape)).clip(0, 255).astype(np.uint8)


def _write_bands(path, pixels, quality, levels):
    height, width = pixels.shape[:2]
    step = TILE << (levels - 1)
    with open(path, "wb") as f:
        writer = PyramidTiffWriter(f.fileno(), width, height)
        for top in range(0, height, step):
            writer.add(encode_tiff_band(pixels[top : top + step], top, height, quality, levels))
        writer.finish()


def _levels(path):
    first = pyvips.Image.new_from_file(str(path))
    return [pyvips.Image.new_from_file(str(path), page=p).numpy() for p in range(first.get("n-pages"))]


@pytest.mark.parametrize("height, width, quality, levels", [
    (1000, 1700, 90, 2),  # partial tiles at the right and bottom; levels 2.. carried by the writer
    (1025, 513, 90, 1),  # the last band holds one row, which the next level drops
    (2100, 2900, 80, 3),  # YCbCr 4:2:0 below quality 90; a short last band
    (300, 4000, 90, 3),  # wide and short: levels stop when the height would reach 0 ... or the width fits
    (3000, 3, 90, 2),  # narrow and tall
    (256, 256, 90, 2),  # one tile, no pyramid
])
def test_bands_make_libvips_own_pyramid_pixel_for_pixel(tmp_path, height, width, quality, levels):
    pixels = _photo_like(height, width)
    _write_bands(tmp_path / "bands.tif", pixels, quality, levels)
    whole = pyvips.Image.new_from_memory(pixels.tobytes(), width, height, 3, "uchar")
    whole.tiffsave(str(tmp_path / "whole.tif"), tile=True, pyramid=True, bigtiff=True, compression="jpeg", Q=quality,
                   tile_width=TILE, tile_height=TILE)
    ours, theirs = _levels(tmp_path / "bands.tif"), _levels(tmp_path / "whole.tif")
    assert [level.shape for level in ours] == [level.shape for level in theirs]
    assert [level.shape[1::-1] for level in ours] == pyramid_sizes(width, height)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_array_equal(mine, reference)
    assert abs(os.path.getsize(tmp_path / "bands.tif") / os.path.getsize(tmp_path / "whole.tif") - 1) < 0.01


def test_the_file_is_a_tiled_jpeg_bigtiff_that_libtiff_reads(tmp_path):
    pixels = _photo_like(700, 900, seed=3)
    _write_bands(tmp_path / "out.tif", pixels, 90, 2)
    assert (tmp_path / "out.tif").read_bytes()[:4] == b"II+\x00"  # BigTIFF, little-endian
    with Image.open(tmp_path / "out.tif") as image:  # Pillow reads it through libtiff
        tags = image.tag_v2
        assert (tags[322], tags[323], tags[259], tags[262]) == (TILE, TILE, 7, 2)  # tiled, JPEG, RGB
        assert image.n_frames == 3 and image.size == (900, 700)
        assert np.abs(np.asarray(image.convert("RGB"), int) - pixels).mean() < 3
        image.seek(2)
        assert image.size == (225, 175) and image.tag_v2[254] == 1  # a reduced-resolution level


def test_halve_is_the_rounded_mean_of_each_2x2_block():
    pixels = np.random.default_rng(2).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    blocks = pixels[:6, :8].astype(int).reshape(3, 2, 4, 2, 3).sum(axis=(1, 3))
    np.testing.assert_array_equal(halve(pixels), (blocks + 2) // 4)
    assert halve(pixels[:1]).shape == (0, 4, 3)


def test_pyramid_sizes_and_band_levels():
    assert pyramid_sizes(1700, 1000) == [(1700, 1000), (850, 500), (425, 250), (212, 125)]
    assert pyramid_sizes(3000, 3) == [(3000, 3), (1500, 1)]
    assert pyramid_sizes(256, 256) == [(256, 256)]
    assert tiff_band_levels(row_bytes=100_000, budget_bytes=128 << 20) == 3  # 1024 rows: 100 MB
    assert tiff_band_levels(row_bytes=200_000, budget_bytes=128 << 20) == 2  # 512 rows: 102 MB
    assert tiff_band_levels(row_bytes=10 << 20, budget_bytes=128 << 20) == 1


def test_the_writer_refuses_bands_that_do_not_make_the_image(tmp_path):
    pixels = _photo_like(600, 300)
    with open(tmp_path / "x.tif", "wb") as f:
        writer = PyramidTiffWriter(f.fileno(), 300, 600)
        with pytest.raises(ValueError, match="200 px wide does not fit a 300 px"):
            writer.add(encode_tiff_band(pixels[:256, :200], 0, 600, 90, 1))
        writer.add(encode_tiff_band(pixels[:256], 0, 600, 90, 1))
        with pytest.raises(ValueError, match="quality 80 follows bands at 90"):
            writer.add(encode_tiff_band(pixels[256:512], 256, 600, 80, 1))
        with pytest.raises(ValueError, match="bands held 256 rows, 600 were announced"):
            writer.finish()
    with pytest.raises(ValueError, match="whole multiples of 512 rows"):
        encode_tiff_band(pixels[256:], 256, 600, 90, 2)
