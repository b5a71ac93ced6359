"""HEIF/HEIC, AVIF, JPEG XL and camera RAW (DNG) photos: written here by the libraries that read them, then made into tiles."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import TileCache, index_library
from pipeline.photo import PhotoError, decode_thumbnail, load_rgb, load_thumbnail, photo_kind
from pipeline.photo._heif import decode_heif
from support.media import write_dng, write_still


@pytest.fixture(scope="module")
def picture(demo_photos) -> np.ndarray:
    """A real photo, 360 x 240: wider than high, so that a turn by EXIF or a display matrix shows."""
    with Image.open(demo_photos[3]) as image:
        return np.asarray(image.convert("RGB").resize((360, 240), Image.Resampling.LANCZOS))


def _mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


def _expected(pixels: np.ndarray, orientation: int, side: int = 48) -> np.ndarray:
    """The tile of ``pixels`` shown upright: decoded from a lossless PNG of them, turned as EXIF ``orientation`` says."""
    turned = {1: pixels, 6: np.rot90(pixels, -1), 8: np.rot90(pixels, 1), 3: np.rot90(pixels, 2)}[orientation]
    return load_rgb_thumbnail(np.ascontiguousarray(turned), side)


def load_rgb_thumbnail(pixels: np.ndarray, side: int) -> np.ndarray:
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return decode_thumbnail(buffer.getvalue(), side)


@pytest.mark.parametrize("fmt, suffix", [("HEIF", ".heic"), ("AVIF", ".avif"), ("JXL", ".jxl")])
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_still_formats_give_the_photo_upright(tmp_path, picture, fmt, suffix, orientation):
    path = write_still(tmp_path / f"photo{suffix}", picture, fmt, orientation=orientation)
    tile = load_thumbnail(str(path), 48)
    assert _mean_difference(tile, _expected(picture, orientation)) < 6  # lossy codecs at quality 92
    # A wrong turn is far off: the check can fail.
    wrong = {1: 6, 6: 8, 8: 6}[orientation]
    assert _mean_difference(tile, _expected(picture, wrong)) > 3 * _mean_difference(tile, _expected(picture, orientation))


def test_a_heic_thumbnail_stands_in_for_the_photo_when_big_enough(tmp_path, picture):
    """A phone's HEIC holds a small copy; a 48 px tile is made from it, a 200 px decode from the photo; both upright."""
    path = write_still(tmp_path / "phone.heic", picture, "HEIF", orientation=6, thumbnails=[120])
    data = path.read_bytes()
    size, thumbnail, _ = decode_heif(data, 48)
    assert size == (240, 360) and thumbnail is not None and max(thumbnail.size) == 120
    assert decode_heif(data, 100)[1] is None  # 80 px short side: too small, the photo is decoded
    assert _mean_difference(decode_thumbnail(data, 48), _expected(picture, 6)) < 8
    assert load_rgb(str(path), 100).shape[:2] == (360, 240)


def test_a_camera_raw_dng_is_demosaiced_upright(tmp_path, picture):
    path = write_dng(tmp_path / "camera.dng", picture, orientation=6)
    tile = load_thumbnail(str(path), 48)
    assert tile.shape == (48, 48, 3)
    right, wrong = _mean_difference(tile, _expected(picture, 6)), _mean_difference(tile, _expected(picture, 8))
    assert right < 25 and wrong > 1.5 * right  # a half-size demosaic with an identity colour matrix: close, not equal
    assert load_rgb(str(path), 60).shape[:2] == (180, 120)  # half the sensor, turned upright


def test_a_camera_raw_preview_is_used_when_big_enough(tmp_path, picture):
    """The camera's JPEG preview makes the tile; a decode bigger than the preview demosaics the sensor instead.

    The sensor holds the picture mirrored, so which of the two made the pixels shows.
    """
    mirrored = np.ascontiguousarray(picture[:, ::-1])
    sensor = np.asarray(Image.fromarray(mirrored).resize((720, 480), Image.Resampling.BICUBIC))
    path = write_dng(tmp_path / "camera.dng", sensor, orientation=6, preview=picture)
    tile = load_thumbnail(str(path), 48)
    assert _mean_difference(tile, _expected(picture, 6)) < 6  # the preview, turned upright by the RAW's orientation
    assert _mean_difference(tile, _expected(mirrored, 6)) > 15
    big = load_rgb(str(path), 300)  # the preview's 240 px short side is too small: the sensor, half size, upright
    assert big.shape[:2] == (360, 240)
    small = np.asarray(Image.fromarray(big).resize((48, 72), Image.Resampling.BOX))
    expected = np.asarray(Image.fromarray(np.ascontiguousarray(np.rot90(mirrored, -1))).resize((48, 72), Image.Resampling.BOX))
    assert _mean_difference(small, expected) < 25


def test_formats_are_recognised_by_their_bytes(tmp_path, picture):
    heic = write_still(tmp_path / "a.heic", picture, "HEIF").read_bytes()
    avif = write_still(tmp_path / "a.avif", picture, "AVIF").read_bytes()
    jxl = write_still(tmp_path / "a.jxl", picture, "JXL").read_bytes()
    dng = write_dng(tmp_path / "a.dng", picture).read_bytes()
    assert [photo_kind(data[:4096]) for data in (heic, avif, jxl, dng)] == ["heif", "pillow", "pillow", "raw"]
    assert photo_kind(b"II*\x00\x08\x00\x00\x00" + bytes(64)) == "pillow"  # a plain TIFF stays Pillow's
    assert photo_kind(b"II*\x00\x08\x00\x00\x00" + bytes(64), ".nef") == "raw"  # a NEF is told by its name
    assert photo_kind(b"\x00\x00\x00\x18ftypmp42" + bytes(16)) is None  # a video is no photo


@pytest.mark.parametrize("name, damage, reason", [
    ("cut.heic", lambda data: data[:400], "truncated"),
    ("cut.jxl", lambda data: data[: len(data) // 2], "corrupt"),
    ("cut.avif", lambda data: data[: len(data) // 2], "corrupt"),
    ("cut.dng", lambda data: data[:3000], "corrupt"),
    ("junk.nef", lambda data: b"II*\x00\x08\x00\x00\x00" + bytes(200), "unsupported"),
    ("odd.heic", lambda data: data.replace(b"hvc1", b"zzzz"), "unsupported"),  # its pictures in a codec libheif lacks
])
def test_damaged_files_fail_with_a_reason(tmp_path, picture, name, damage, reason):
    writers = {".heic": ("HEIF",), ".jxl": ("JXL",), ".avif": ("AVIF",)}
    suffix = Path(name).suffix
    source = tmp_path / f"whole{suffix}"
    if suffix in writers:
        write_still(source, picture, *writers[suffix])
    else:
        write_dng(source, picture)
    broken = tmp_path / name
    broken.write_bytes(damage(source.read_bytes()))
    with pytest.raises(PhotoError) as caught:
        load_thumbnail(str(broken), 32)
    assert caught.value.reason == reason and "\n" not in str(caught.value)


def test_a_library_of_phone_and_camera_files_is_indexed(client, tmp_path, picture, demo_photos):
    """Through the real cluster: every format a tile, copies under other names aliases, broken ones failures."""
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(demo_photos[0], library / "photo.jpg")
    write_still(library / "phone.heic", picture, "HEIF", orientation=6, thumbnails=[160])
    write_still(library / "web.avif", picture[::-1].copy(), "AVIF")
    write_still(library / "new.jxl", picture[:, ::-1].copy(), "JXL")
    write_dng(library / "camera.dng", picture[::-1, ::-1].copy())
    shutil.copy(library / "phone.heic", library / "phone_renamed.jpg")  # a HEIC under a JPEG's name
    shutil.copy(library / "camera.dng", library / "IMG_0001")  # and a DNG with none
    (library / "broken.heic").write_bytes((library / "phone.heic").read_bytes()[:300])
    cache = tmp_path / "c.h5"
    summary = index_library(library, cache, tile_size=32, client=client, progress=False)
    assert (summary.added, summary.aliases, dict(summary.failures)) == (5, 2, {"corrupt": 1})
    with TileCache.open(cache) as c:
        names = [Path(p).name for p in c.paths()]
        assert sorted(names) == ["IMG_0001", "new.jxl", "phone.heic", "photo.jpg", "web.avif"]  # the DNG came first as IMG_0001
        stored = c.thumbnails(np.arange(len(c)))
        for name, tile in zip(names, stored):
            assert np.array_equal(tile, load_thumbnail(str(library / name), 32)), name
        assert c.check() == []


def test_the_pixel_limit_and_the_minimum_size_apply_to_every_format(tmp_path, picture):
    files = [write_still(tmp_path / "a.heic", picture, "HEIF", thumbnails=[120]), write_still(tmp_path / "a.heic2", picture, "HEIF"),
             write_still(tmp_path / "a.avif", picture, "AVIF"), write_still(tmp_path / "a.jxl", picture, "JXL"),
             write_dng(tmp_path / "a.dng", picture), write_dng(tmp_path / "b.dng", picture, preview=picture)]
    for path in files:
        with pytest.raises(PhotoError) as caught:
            load_thumbnail(str(path), 32, max_pixels=2_000)
        assert caught.value.reason == "too-large", path.name
        with pytest.raises(PhotoError) as caught:
            load_thumbnail(str(path), 32, min_size=300)
        assert caught.value.reason == "too-small", path.name
        assert load_thumbnail(str(path), 32, max_pixels=100_000, min_size=200).shape == (32, 32, 3)
