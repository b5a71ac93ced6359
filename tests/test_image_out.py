"""The streamed writer: every format from strips, atomic publication, refusals."""
import os
import re

import numpy as np
import pytest
import pyvips
from PIL import Image

from pipeline import MosaicError, write_image, write_strips
from pipeline._image_out import _streamed_image, deflate_rows, encode_rows, png_rows


def _smooth_image(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=2).astype(np.uint8)


def _strips(pixels: np.ndarray, height: int):
    for start in range(0, len(pixels), height):
        yield pixels[start : start + height]


def test_png_from_many_strips_is_exact(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (301, 257, 3), dtype=np.uint8)
    write_strips(tmp_path / "out.png", 257, 301, _strips(pixels, 17))
    with Image.open(tmp_path / "out.png") as im:
        np.testing.assert_array_equal(np.asarray(im), pixels)
    assert os.listdir(tmp_path) == ["out.png"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(tmp_path / "out.png").st_mode & 0o777 == 0o666 & ~umask


def test_rows_framed_elsewhere_mix_with_plain_strips(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (90, 700, 3), dtype=np.uint8)  # 2.1 KB rows: several blocks
    parts = [encode_rows(pixels[:40]), pixels[40:41], encode_rows(pixels[41:90])]
    write_strips(tmp_path / "mixed.png", 700, 90, parts)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "mixed.png")), pixels)


def test_stored_rows_reach_libvips_exactly():
    # The uncompressed stream that feeds libvips's other savers: rows of 90 KB span two stored blocks each.
    pixels = np.random.default_rng(3).integers(0, 256, (30, 30000, 3), dtype=np.uint8)
    raw, view = png_rows(12, 30000)
    view[...] = pixels[:12]
    with _streamed_image(30000, 30, [encode_rows(raw), pixels[12:13], encode_rows(pixels[13:])]) as image:
        seen = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=(30, 30000, 3))
    np.testing.assert_array_equal(seen, pixels)


def test_png_strips_compressed_apart_join_into_one_exact_compressed_png(tmp_path):
    tile = np.random.default_rng(4).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    pixels = np.tile(tile, (8, 25, 1))[:120]  # repeats, as a mosaic's tiles do
    parts = [deflate_rows(pixels[:50]), encode_rows(pixels[50:51]), pixels[51:100], deflate_rows(pixels[100:])]
    write_strips(tmp_path / "joined.png", 500, 120, parts)
    with Image.open(tmp_path / "joined.png") as im:
        im.load()  # Pillow checks each chunk's CRC as it reads
        np.testing.assert_array_equal(np.asarray(im), pixels)
    assert os.path.getsize(tmp_path / "joined.png") < pixels.nbytes / 4  # compressed, not stored


def test_wide_strips_span_several_png_data_chunks(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (40, 9000, 3), dtype=np.uint8)  # 1 MiB+ per strip of 40 rows
    write_strips(tmp_path / "wide.png", 9000, 40, [pixels])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "wide.png")), pixels)


def test_jpeg_is_close_to_the_pixels(tmp_path):
    pixels = _smooth_image(200, 300)
    write_image(pixels, tmp_path / "out.JPG")
    with Image.open(tmp_path / "out.JPG") as im:
        assert im.format == "JPEG" and im.size == (300, 200)
        assert np.abs(np.asarray(im, int) - pixels).mean() < 3


def test_tiff_is_a_tiled_bigtiff_pyramid(tmp_path):
    pixels = _smooth_image(1500, 2000)
    write_strips(tmp_path / "out.tif", 2000, 1500, _strips(pixels, 64))
    with open(tmp_path / "out.tif", "rb") as f:
        assert f.read(4) == b"II+\x00"  # BigTIFF, little-endian
    full = pyvips.Image.new_from_file(str(tmp_path / "out.tif"))
    assert (full.width, full.height, full.get("n-pages")) == (2000, 1500, 4)  # 2000, 1000, 500, 250 px wide
    assert pyvips.Image.new_from_file(str(tmp_path / "out.tif"), page=1).width == 1000
    assert full.get("tile-width") == 256
    assert np.abs(full.numpy().astype(int) - pixels).mean() < 3


def test_deep_zoom_writes_pyramid_descriptor_and_viewer(tmp_path):
    pixels = _smooth_image(600, 1000)
    write_strips(tmp_path / "zoom.dzi", 1000, 600, _strips(pixels, 100))
    assert sorted(os.listdir(tmp_path)) == ["zoom.dzi", "zoom.html", "zoom_files"]
    descriptor = (tmp_path / "zoom.dzi").read_text()
    assert 'Width="1000"' in descriptor and 'Height="600"' in descriptor and 'TileSize="254"' in descriptor
    levels = sorted(int(d) for d in os.listdir(tmp_path / "zoom_files") if d.isdigit())
    assert levels == list(range(11))  # ceil(log2(1000)) + 1
    with Image.open(tmp_path / "zoom_files" / "10" / "0_0.jpg") as top_left:
        assert top_left.size == (255, 255)  # 254 + 1 px overlap
        assert np.abs(np.asarray(top_left, int) - pixels[:255, :255]).mean() < 3
    page = (tmp_path / "zoom.html").read_text()
    assert "OpenSeadragon(" in page and '"Url": "zoom_files/"' in page and not re.search(r"https?://(?!schemas)", page.split("</script>", 1)[1])


def test_rewriting_a_deep_zoom_replaces_the_old_tiles(tmp_path):
    write_strips(tmp_path / "z.dzi", 600, 600, [_smooth_image(600, 600)])
    write_strips(tmp_path / "z.dzi", 200, 100, [_smooth_image(100, 200)])
    assert sorted(os.listdir(tmp_path)) == ["z.dzi", "z.html", "z_files"]
    assert max(int(d) for d in os.listdir(tmp_path / "z_files") if d.isdigit()) == 8


def test_failing_strip_source_leaves_no_file_and_keeps_the_old_one(tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous mosaic")

    def strips():
        yield np.zeros((10, 50, 3), np.uint8)
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        write_strips(out, 50, 30, strips())
    assert out.read_bytes() == b"the previous mosaic"
    assert os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize("strips, message", [
    ([np.zeros((10, 50, 3), np.uint8)], "10 rows, 30 were announced"),
    ([np.zeros((40, 50, 3), np.uint8)], "more than the 30 rows"),
    ([np.zeros((30, 49, 3), np.uint8)], "49 px wide does not fit a 50 px wide"),
])
def test_strips_must_fill_the_announced_size(tmp_path, strips, message):
    with pytest.raises(ValueError, match=message):
        write_strips(tmp_path / "out.jpg", 50, 30, iter(strips))
    assert os.listdir(tmp_path) == []


def test_refusals_name_the_alternatives(tmp_path):
    with pytest.raises(MosaicError, match="must end in one of .dzi, .jpeg, .jpg, .png, .tif, .tiff"):
        write_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "out.gif")
    with pytest.raises(MosaicError, match=r"over JPEG's 65500 px limit; write .tif \(BigTIFF pyramid\), .dzi"):
        write_strips(tmp_path / "wide.jpg", 70000, 1, iter(()))
    assert os.listdir(tmp_path) == []
