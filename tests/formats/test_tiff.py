"""Pyramidal TIFF from bands encoded apart: libvips's layout, every level the image halved, JPEG-close to its pixels."""
import os

import numpy as np
import pytest
import pyvips
import simplejpeg
from PIL import Image

from pipeline.formats import halve
from pipeline.formats._geometry import pyramid_band_levels
from pipeline.formats.tiff import TILE, PyramidTiffWriter, encode_tiff_band, encode_tiles, pyramid_sizes


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


def _reference_levels(pixels):
    """The pyramid the file should hold: the image, then each level the 2x2 mean of the one above."""
    levels = [pixels]
    for _ in pyramid_sizes(pixels.shape[1], pixels.shape[0])[1:]:
        levels.append(halve(levels[-1]))
    return levels


@pytest.mark.parametrize("height, width, quality, levels", [
    (1000, 1700, 90, 2),  # partial tiles at the right and bottom; levels 2.. carried by the writer
    (1025, 513, 90, 1),  # the last band holds one row, which the next level drops
    (2100, 2900, 80, 3),  # YCbCr 4:2:0 below quality 90; a short last band
    (300, 4000, 90, 3),  # wide and short: levels stop when the height would reach 0 ... or the width fits
    (3000, 3, 90, 2),  # narrow and tall
    (256, 256, 90, 2),  # one tile, no pyramid
])
def test_bands_make_libvips_pyramid_of_the_image(tmp_path, height, width, quality, levels):
    pixels = _photo_like(height, width)
    _write_bands(tmp_path / "bands.tif", pixels, quality, levels)
    whole = pyvips.Image.new_from_memory(pixels.tobytes(), width, height, 3, "uchar")
    whole.tiffsave(str(tmp_path / "whole.tif"), tile=True, pyramid=True, bigtiff=True, compression="jpeg", Q=quality,
                   tile_width=TILE, tile_height=TILE)
    ours, theirs = _levels(tmp_path / "bands.tif"), _levels(tmp_path / "whole.tif")
    assert [level.shape for level in ours] == [level.shape for level in theirs]
    assert [level.shape[1::-1] for level in ours] == pyramid_sizes(width, height)
    for level, (mine, reference, vips) in enumerate(zip(ours, _reference_levels(pixels), theirs)):
        error = np.abs(mine.astype(int) - reference)
        # JPEG's loss at this quality on noisy blocks, no more: a tile out of place would be ~80 off.
        assert level > 0 or error.mean() < (5 if quality >= 90 else 13)
        # About as close as libvips's own tiles: on these noisy blocks YCbCr loses up to 1.3 times what libvips's
        # RGB tiles lose at quality >= 90 (on mosaics, as much), 1.5 times in a level thinner than a JPEG block.
        limit = 1.4 if min(mine.shape[:2]) >= 8 else 1.6
        assert error.mean() <= limit * np.abs(vips.astype(int) - reference).mean(), level
    assert 0.8 < os.path.getsize(tmp_path / "bands.tif") / os.path.getsize(tmp_path / "whole.tif") < 1.02


def test_the_file_is_a_tiled_jpeg_bigtiff_that_libtiff_reads(tmp_path):
    pixels = _photo_like(700, 900, seed=3)
    _write_bands(tmp_path / "out.tif", pixels, 90, 2)
    assert (tmp_path / "out.tif").read_bytes()[:4] == b"II+\x00"  # BigTIFF, little-endian
    with Image.open(tmp_path / "out.tif") as image:  # Pillow reads it through libtiff
        tags = image.tag_v2
        assert (tags[322], tags[323], tags[259], tags[262], tags[530]) == (TILE, TILE, 7, 6, (1, 1))  # JPEG, YCbCr 4:4:4
        assert image.n_frames == 3 and image.size == (900, 700)
        assert np.abs(np.asarray(image.convert("RGB"), int) - pixels).mean() < 5
        image.seek(2)
        assert image.size == (225, 175) and image.tag_v2[254] == 1  # a reduced-resolution level
        assert np.abs(np.asarray(image.convert("RGB"), int) - _reference_levels(pixels)[2]).mean() < 5


def test_tiles_are_abbreviated_streams_that_decode_with_the_tables():
    pixels = _photo_like(300, 600, seed=5)
    tiles, tables = encode_tiles(pixels, 90)
    assert len(tiles) == 2 * 3
    assert tables[:2] == b"\xff\xd8" and tables[-2:] == b"\xff\xd9" and b"\xff\xda" not in tables
    assert all(b"\xff\xdb" not in tile[:200] and b"\xff\xc4" not in tile[:200] for tile in tiles)  # no tables of their own
    # The tables, then a tile after its SOI, make a whole JPEG: the last tile, the bottom-right corner, padded black.
    whole = simplejpeg.decode_jpeg(tables[:-2] + tiles[-1][2:])
    assert whole.shape == (TILE, TILE, 3)
    corner = pixels[256:300, 512:600]
    assert np.abs(whole[:44, :88].astype(int) - corner).mean() < 6
    assert whole[48:, 96:].max() < 8 and whole[48:].mean() < 1  # black below and to the right (past the edge's blocks)


def test_halve_is_the_rounded_mean_of_each_2x2_block():
    pixels = np.random.default_rng(2).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    blocks = pixels[:6, :8].astype(int).reshape(3, 2, 4, 2, 3).sum(axis=(1, 3))
    np.testing.assert_array_equal(halve(pixels), (blocks + 2) // 4)
    assert halve(pixels[:1]).shape == (0, 4, 3)


def test_pyramid_sizes_and_band_levels():
    assert pyramid_sizes(1700, 1000) == [(1700, 1000), (850, 500), (425, 250), (212, 125)]
    assert pyramid_sizes(3000, 3) == [(3000, 3), (1500, 1)]
    assert pyramid_sizes(256, 256) == [(256, 256)]
    assert pyramid_band_levels(row_bytes=100_000, budget_bytes=128 << 20, tile=TILE) == 3  # 1024 rows: 100 MB
    assert pyramid_band_levels(row_bytes=200_000, budget_bytes=128 << 20, tile=TILE) == 2  # 512 rows: 102 MB
    assert pyramid_band_levels(row_bytes=10 << 20, budget_bytes=128 << 20, tile=TILE) == 1


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
