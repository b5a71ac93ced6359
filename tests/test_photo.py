import numpy as np
import pytest
from PIL import Image

from pipeline import PhotoError, load_rgb, load_square_thumbnail
from pipeline._photo import has_image_signature, square_box

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(size=64):
    """An upright test picture: red top-left, green top-right, blue bottom-left, white bottom-right."""
    a = np.zeros((size, size, 3), np.uint8)
    h = size // 2
    a[:h, :h], a[:h, h:], a[h:, :h], a[h:, h:] = RED, GREEN, BLUE, WHITE
    return a


def quadrant_means(a):
    h = a.shape[0] // 2
    return [a[:h, :h].mean((0, 1)), a[:h, h:].mean((0, 1)), a[h:, :h].mean((0, 1)), a[h:, h:].mean((0, 1))]


def test_square_box_is_centred():
    assert square_box(300, 100) == (100, 0, 200, 100)
    assert square_box(100, 301) == (0, 100, 100, 200)
    assert square_box(50, 50) == (0, 0, 50, 50)


@pytest.mark.parametrize(("width", "height"), [(300, 100), (100, 300)])
def test_thumbnail_is_the_centre_square(tmp_path, width, height):
    a = np.zeros((height, width, 3), np.uint8)
    third = max(width, height) // 3
    if width > height:
        a[:, :third], a[:, third : 2 * third], a[:, 2 * third :] = RED, GREEN, BLUE
    else:
        a[:third], a[third : 2 * third], a[2 * third :] = RED, GREEN, BLUE
    Image.fromarray(a).save(tmp_path / "strip.png")
    thumb = load_square_thumbnail(str(tmp_path / "strip.png"), 32)
    assert thumb.shape == (32, 32, 3) and thumb.dtype == np.uint8
    np.testing.assert_allclose(thumb[4:-4, 4:-4].reshape(-1, 3).mean(0), GREEN, atol=2)


# How a camera stores an upright picture for each EXIF orientation value (EXIF 2.3, tag 0x0112):
# the viewer applies the inverse to show it upright.
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored horizontally
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1, :],  # mirrored vertically
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, 1),  # viewer rotates 90 clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, -1),  # viewer rotates 90 counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_shows_the_photo_upright(tmp_path, orientation):
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](quadrants())))
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "photo.jpg", quality=95, exif=exif)
    thumb = load_square_thumbnail(str(tmp_path / "photo.jpg"), 32)
    for got, want in zip(quadrant_means(thumb), (RED, GREEN, BLUE, WHITE)):
        np.testing.assert_allclose(got, want, atol=25)


def test_jpeg_is_decoded_at_reduced_scale(tmp_path):
    Image.fromarray(np.full((1500, 2000, 3), 90, np.uint8)).save(tmp_path / "big.jpg")
    pixels = load_rgb(str(tmp_path / "big.jpg"), min_side=100)
    # 1/8 DCT scaling: 250x188, still at least 100 px on each side.
    assert pixels.shape == (188, 250, 3)


def test_png_named_jpg_and_palette_and_16bit_and_alpha(tmp_path):
    Image.fromarray(np.full((40, 40, 3), (10, 200, 30), np.uint8)).save(tmp_path / "png.jpg", format="PNG")
    np.testing.assert_array_equal(load_square_thumbnail(str(tmp_path / "png.jpg"), 8)[0, 0], (10, 200, 30))

    Image.fromarray(np.full((40, 40, 3), (200, 10, 30), np.uint8)).convert("P").save(tmp_path / "p.gif")
    assert np.abs(load_square_thumbnail(str(tmp_path / "p.gif"), 8)[4, 4].astype(int) - (200, 10, 30)).max() < 40

    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(tmp_path / "white16.png")
    np.testing.assert_array_equal(load_square_thumbnail(str(tmp_path / "white16.png"), 8)[0, 0], WHITE)

    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent black: composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    np.testing.assert_array_equal(load_square_thumbnail(str(tmp_path / "clear.png"), 8)[0, 0], WHITE)


def test_unreadable_files_raise_photo_error_with_a_reason(tmp_path, demo_photos):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    data = demo_photos[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    cases = {"empty.jpg": "empty", "text.jpg": "not-an-image", "cut.jpg": "truncated", "absent.jpg": "missing"}
    for name, reason in cases.items():
        with pytest.raises(PhotoError) as info:
            load_square_thumbnail(str(tmp_path / name), 16)
        assert info.value.reason == reason, name


def test_signatures():
    assert has_image_signature(b"\xff\xd8\xff\xe0rest")
    assert has_image_signature(b"\x89PNG\r\n\x1a\n....")
    assert has_image_signature(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert not has_image_signature(b"<xmp/>")
    assert not has_image_signature(b"")
