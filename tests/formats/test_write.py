"""Writing outputs from bands through the registry: every format, atomic publication, refusals, a new format."""
import os
import re

import numpy as np
import pytest
import pyvips
from PIL import Image

from pipeline import MosaicError
from pipeline.formats import (ArraySource, BandPlace, format_for, output_extensions, register_format, write_bands,
                              write_image)
from pipeline.formats import _registry
from pipeline.formats._file_output import FileOutput
from pipeline.formats._geometry import cell_row_bands
from pipeline.formats.png import deflate_rows, png_rows


def _smooth_image(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=2).astype(np.uint8)


def _deflated(pixels: np.ndarray, height: int):
    for start in range(0, len(pixels), height):
        yield deflate_rows(pixels[start : start + height])


def test_png_from_many_bands_is_exact_and_gets_the_users_permissions(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (301, 257, 3), dtype=np.uint8)
    write_bands(tmp_path / "out.png", 257, 301, _deflated(pixels, 17))
    with Image.open(tmp_path / "out.png") as im:
        im.load()  # Pillow checks each chunk's CRC as it reads
        np.testing.assert_array_equal(np.asarray(im), pixels)
    assert os.listdir(tmp_path) == ["out.png"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(tmp_path / "out.png").st_mode & 0o777 == 0o666 & ~umask


def test_png_bands_compressed_apart_join_into_one_compressed_png(tmp_path):
    tile = np.random.default_rng(4).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    pixels = np.tile(tile, (8, 25, 1))[:120]  # repeats, as a mosaic's tiles do
    raw, view = png_rows(50, 500)
    view[...] = pixels[:50]  # drawn in place, as the band tasks draw: not copied again
    write_bands(tmp_path / "joined.png", 500, 120, [deflate_rows(raw), deflate_rows(pixels[50:51]),
                                                     deflate_rows(pixels[51:])])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "joined.png")), pixels)
    assert os.path.getsize(tmp_path / "joined.png") < pixels.nbytes / 4  # compressed, not stored


def test_wide_bands_span_several_png_data_chunks(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (40, 9000, 3), dtype=np.uint8)  # 1 MiB+ per band of 40 rows
    write_image(pixels, tmp_path / "wide.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "wide.png")), pixels)


def test_jpeg_is_close_to_the_pixels(tmp_path):
    pixels = _smooth_image(200, 300)
    write_image(pixels, tmp_path / "out.JPG")
    with Image.open(tmp_path / "out.JPG") as im:
        assert im.format == "JPEG" and im.size == (300, 200)
        assert np.abs(np.asarray(im, int) - pixels).mean() < 3


def test_tiff_is_a_tiled_bigtiff_pyramid(tmp_path):
    pixels = _smooth_image(1500, 2000)
    write_image(pixels, tmp_path / "out.tif")
    with open(tmp_path / "out.tif", "rb") as f:
        assert f.read(4) == b"II+\x00"  # BigTIFF, little-endian
    full = pyvips.Image.new_from_file(str(tmp_path / "out.tif"))
    assert (full.width, full.height, full.get("n-pages")) == (2000, 1500, 4)  # 2000, 1000, 500, 250 px wide
    assert pyvips.Image.new_from_file(str(tmp_path / "out.tif"), page=1).width == 1000
    assert full.get("tile-width") == 256
    assert np.abs(full.numpy().astype(int) - pixels).mean() < 3


def test_deep_zoom_writes_pyramid_descriptor_and_viewer(tmp_path):
    pixels = _smooth_image(600, 1000)
    write_image(pixels, tmp_path / "zoom.dzi")
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
    write_image(_smooth_image(600, 600), tmp_path / "z.dzi")
    write_image(_smooth_image(100, 200), tmp_path / "z.dzi")
    assert sorted(os.listdir(tmp_path)) == ["z.dzi", "z.html", "z_files"]
    assert max(int(d) for d in os.listdir(tmp_path / "z_files") if d.isdigit()) == 8


def test_failing_band_source_leaves_no_file_and_keeps_the_old_one(tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous mosaic")

    def bands():
        yield deflate_rows(np.zeros((10, 50, 3), np.uint8))
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        write_bands(out, 50, 30, bands())
    assert out.read_bytes() == b"the previous mosaic"
    assert os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize("name", ["out.png", "out.jpg"])
@pytest.mark.parametrize("rows, width, message", [
    (10, 50, "10 rows, 30 were announced"),
    (40, 50, "more than the 30 rows"),
    (32, 49, "49 px wide does not fit a 50 px wide"),
])
def test_bands_must_fill_the_announced_size(tmp_path, name, rows, width, message):
    band = format_for(name).encode_band(ArraySource(np.zeros((rows, width, 3), np.uint8)), BandPlace(0))
    with pytest.raises(ValueError, match=message):
        write_bands(tmp_path / name, 50, 30, [band])
    assert os.listdir(tmp_path) == []


def test_refusals_name_the_alternatives(tmp_path):
    with pytest.raises(MosaicError, match="must end in one of .dzi, .jpeg, .jpg, .png, .tif, .tiff"):
        write_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "out.gif")
    with pytest.raises(MosaicError, match=r"over JPEG's 65500 px limit; write .tif \(BigTIFF pyramid\), .dzi"):
        write_bands(tmp_path / "wide.jpg", 70000, 1, iter(()))
    assert os.listdir(tmp_path) == []


class _PortablePixmap:
    """A whole new output format in a few lines: binary PPM, bands of raw rows."""

    name, extensions, description = "ppm", (".ppm",), "binary portable pixmap"

    def check_size(self, width, height):
        pass

    def plan_bands(self, rows, cols, tile_shape, threads, band_bytes=None):
        return cell_row_bands(rows, cols, tile_shape, threads, band_bytes)

    def encode_band(self, source, place):
        return source.canvas().copy()

    def open_writer(self, folder, name, width, height, dpi=None):
        return _PixmapWriter(folder, name, width, height)


class _PixmapWriter(FileOutput):
    def __init__(self, folder, name, width, height):
        super().__init__(folder, name, width, height)
        self.write([f"P6 {width} {height} 255\n".encode()])

    def add(self, band):
        self.bands.admit(type("Band", (), {"width": band.shape[1], "rows": band.shape[0]}))
        self.write([band.reshape(-1)])

    def finish(self):
        self.bands.check_complete()


def test_a_registered_format_is_found_by_extension_and_written_atomically(tmp_path, monkeypatch):
    monkeypatch.setattr(_registry, "_BY_EXTENSION", dict(_registry._BY_EXTENSION))  # this test's registry
    register_format(_PortablePixmap())
    assert ".ppm" in output_extensions()
    pixels = _smooth_image(30, 40)
    write_image(pixels, tmp_path / "out.PPM")
    with Image.open(tmp_path / "out.PPM") as im:
        np.testing.assert_array_equal(np.asarray(im), pixels)
    with pytest.raises(TypeError, match="does not provide the Format protocol"):
        register_format(object())


@pytest.mark.parametrize("extension", [".jpg", ".png", ".tif"])
def test_the_print_resolution_is_carried_by_the_file(tmp_path, extension):
    pixels = _smooth_image(300, 520)  # the TIFF has a second, half-size page
    write_image(pixels, tmp_path / f"print{extension}", dpi=300)
    write_image(pixels, tmp_path / f"screen{extension}")
    with Image.open(tmp_path / f"print{extension}") as image:
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        np.testing.assert_array_equal(np.asarray(image), np.asarray(Image.open(tmp_path / f"screen{extension}")))
    if extension == ".tif":  # every page of the pyramid prints at the same size
        page = pyvips.Image.new_from_file(str(tmp_path / "print.tif"), page=1)
        assert page.xres * 25.4 == pytest.approx(150, abs=0.01)
