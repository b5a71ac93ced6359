"""JPEG bands encoded apart and joined at restart markers: one valid JPEG, pixel for pixel the whole image's."""
import io
import os

import numpy as np
import pytest
import pyvips
import simplejpeg
from PIL import Image

from pipeline.formats import write_bands
from pipeline.formats.jpeg import JPEG, encode_jpeg_band, jpeg_band_rows


def _mosaic_like(height: int, width: int) -> np.ndarray:
    tile = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    rows = np.mgrid[0:height, 0:width][0][..., None]
    return (np.tile(tile, (-(-height // 16), -(-width // 20), 1))[:height, :width] // 2 + rows // 2).astype(np.uint8)


@pytest.mark.parametrize("quality", [90, 75])  # 4:4:4 (8 px rows of MCUs) and 4:2:0 (16 px)
def test_joined_bands_decode_exactly_as_the_whole_image(quality, tmp_path):
    pixels = _mosaic_like(200, 333)
    options = {**JPEG.libvips_save, "Q": quality}
    cuts = [0, 48, 96, 160, 200]
    bands = [encode_jpeg_band(pixels[a:b], a, quality) for a, b in zip(cuts, cuts[1:])]
    write_bands(tmp_path / "joined.jpg", 333, 200, bands)
    joined = (tmp_path / "joined.jpg").read_bytes()
    data = np.frombuffer(joined, np.uint8)
    restarts = data[np.flatnonzero((data[:-1] == 0xFF) & ((data[1:] & 0xF8) == 0xD0)) + 1] - 0xD0
    mcu_rows = -(-200 // jpeg_band_rows(quality))
    np.testing.assert_array_equal(restarts, np.arange(mcu_rows - 1) % 8)  # one after every row of MCUs, in order
    whole = simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB", fastdct=False,
                                   colorsubsampling="444" if quality >= 90 else "420")
    with Image.open(io.BytesIO(joined)) as ours, Image.open(io.BytesIO(whole)) as reference:
        assert ours.size == (333, 200)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))
    assert pyvips.Image.new_from_buffer(joined, "", fail=True).avg() > 0  # libjpeg reads it without a warning
    # As faithful as libvips's own encoder at the same quality, and as small.
    theirs = pyvips.Image.new_from_memory(pixels.tobytes(), 333, 200, 3, "uchar").jpegsave_buffer(**options)
    error = [np.abs(np.asarray(Image.open(io.BytesIO(data)), int) - pixels).mean() for data in (joined, theirs)]
    assert error[0] < 1.02 * error[1] and len(joined) < 1.03 * len(theirs)


def test_bands_must_start_on_a_row_of_mcus_and_fill_the_image(tmp_path):
    pixels = _mosaic_like(40, 30)
    with pytest.raises(ValueError, match="row of MCUs"):
        encode_jpeg_band(pixels[4:], jpeg_band_rows(90) // 2)
    with pytest.raises(ValueError, match="were announced"):
        write_bands(tmp_path / "short.jpg", 30, 48, [encode_jpeg_band(pixels, 0)])
    assert os.listdir(tmp_path) == []  # nothing left behind, under any name
