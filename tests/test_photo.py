import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from pipeline.features import TileAspect, crop_box
from pipeline.photo import PhotoError, has_image_signature, load_rgb, load_thumbnail

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


def test_the_crop_box_is_the_largest_centred_window_of_the_aspect():
    assert crop_box(300, 100) == (100, 0, 200, 100)
    assert crop_box(100, 301) == (0, 100, 100, 200)
    assert crop_box(50, 50) == (0, 0, 50, 50)
    three_two = TileAspect.parse("3:2")
    assert crop_box(400, 300, three_two) == (0, 16, 400, 283)  # a 4:3 landscape loses rows to 3:2
    assert crop_box(300, 400, three_two) == (0, 100, 300, 300)  # a portrait photo gives a landscape tile
    assert crop_box(400, 300, TileAspect.parse("2:3")) == (100, 0, 300, 300)  # and a landscape one a portrait tile
    assert crop_box(400, 300, three_two, offset=1.0) == (0, 33, 400, 300)


@pytest.mark.parametrize(("width", "height"), [(300, 100), (100, 300)])
def test_thumbnail_is_the_centre_square(tmp_path, width, height):
    a = np.zeros((height, width, 3), np.uint8)
    third = max(width, height) // 3
    if width > height:
        a[:, :third], a[:, third : 2 * third], a[:, 2 * third :] = RED, GREEN, BLUE
    else:
        a[:third], a[third : 2 * third], a[2 * third :] = RED, GREEN, BLUE
    Image.fromarray(a).save(tmp_path / "strip.png")
    thumb = load_thumbnail(str(tmp_path / "strip.png"), 32)
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


@pytest.mark.parametrize("byte_order", ["<", ">"])  # "II" (most cameras) and "MM" EXIF
@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_shows_the_photo_upright(tmp_path, orientation, byte_order):
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](quadrants())))
    exif = Image.Exif()
    exif.endian = byte_order
    exif[0x010F] = "camera maker"  # another tag before the orientation in the IFD
    exif[0x0112] = orientation
    stored.save(tmp_path / "photo.jpg", quality=95, exif=exif.tobytes())
    assert (tmp_path / "photo.jpg").read_bytes()[:64].count(b"II*\0" if byte_order == "<" else b"MM\0*") == 1
    thumb = load_thumbnail(str(tmp_path / "photo.jpg"), 32)
    for got, want in zip(quadrant_means(thumb), (RED, GREEN, BLUE, WHITE)):
        np.testing.assert_allclose(got, want, atol=25)


@pytest.mark.parametrize("orientation", [3, 6])
def test_orientation_given_only_in_xmp_is_applied(tmp_path, orientation):
    # Some editors write the orientation as XMP, not EXIF; viewers (and Pillow) honour it.
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="%d"/></rdf:RDF></x:xmpmeta>' % orientation)
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](quadrants())))
    stored.save(tmp_path / "photo.jpg", quality=95, xmp=xmp)
    thumb = load_thumbnail(str(tmp_path / "photo.jpg"), 32)
    for got, want in zip(quadrant_means(thumb), (RED, GREEN, BLUE, WHITE)):
        np.testing.assert_allclose(got, want, atol=25)


def test_jpeg_is_decoded_at_reduced_scale(tmp_path):
    Image.fromarray(np.full((1500, 2000, 3), 90, np.uint8)).save(tmp_path / "big.jpg")
    pixels = load_rgb(str(tmp_path / "big.jpg"), min_side=100)
    # 1/8 DCT scaling: 250x188, still at least 100 px on each side.
    assert pixels.shape == (188, 250, 3)


def test_png_named_jpg_and_palette_and_16bit_and_alpha(tmp_path):
    Image.fromarray(np.full((40, 40, 3), (10, 200, 30), np.uint8)).save(tmp_path / "png.jpg", format="PNG")
    np.testing.assert_array_equal(load_thumbnail(str(tmp_path / "png.jpg"), 8)[0, 0], (10, 200, 30))

    Image.fromarray(np.full((40, 40, 3), (200, 10, 30), np.uint8)).convert("P").save(tmp_path / "p.gif")
    assert np.abs(load_thumbnail(str(tmp_path / "p.gif"), 8)[4, 4].astype(int) - (200, 10, 30)).max() < 40

    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(tmp_path / "white16.png")
    np.testing.assert_array_equal(load_thumbnail(str(tmp_path / "white16.png"), 8)[0, 0], WHITE)

    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent black: composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    np.testing.assert_array_equal(load_thumbnail(str(tmp_path / "clear.png"), 8)[0, 0], WHITE)


def test_unreadable_files_raise_photo_error_with_a_reason(tmp_path, demo_photos):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    data = demo_photos[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    cases = {"empty.jpg": "empty", "text.jpg": "not-an-image", "cut.jpg": "truncated", "absent.jpg": "missing"}
    for name, reason in cases.items():
        with pytest.raises(PhotoError) as info:
            load_thumbnail(str(tmp_path / name), 16)
        assert info.value.reason == reason, name


def test_signatures():
    assert has_image_signature(b"\xff\xd8\xff\xe0rest")
    assert has_image_signature(b"\x89PNG\r\n\x1a\n....")
    assert has_image_signature(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert not has_image_signature(b"<xmp/>")
    assert not has_image_signature(b"")


# -- awkward files --------------------------------------------------------------------------

def _s15f16(x):
    return struct.pack(">i", round(x * 65536))


def rgb_profile(primaries):
    """A minimal ICC v2 RGB profile (linear TRCs) with the given XYZ (D50) primaries, built by hand.

    Pillow can only create sRGB, LAB and XYZ profiles; a profile whose red is sRGB's green
    lets a test tell a decoder that honours the profile from one that ignores it.
    """
    def xyz(v):
        return b"XYZ " + b"\0" * 4 + b"".join(_s15f16(c) for c in v)
    text = b"swapped primaries"
    tags = [
        (b"desc", b"desc" + b"\0" * 4 + struct.pack(">I", len(text) + 1) + text + b"\0" + b"\0" * 8 + b"\0" * 70),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(primaries[0])), (b"gXYZ", xyz(primaries[1])), (b"bXYZ", xyz(primaries[2])),
        (b"rTRC", b"curv" + b"\0" * 4 + struct.pack(">I", 0)),
        (b"gTRC", b"curv" + b"\0" * 4 + struct.pack(">I", 0)),
        (b"bTRC", b"curv" + b"\0" * 4 + struct.pack(">I", 0)),
        (b"cprt", b"text" + b"\0" * 4 + b"none\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + b"\0" * 12
              + b"acsp" + b"\0" * 24 + b"\0" * 8 + struct.pack(">I", 0) + _s15f16(0.9642) + _s15f16(1.0) + _s15f16(0.8249))
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


# sRGB's primaries in XYZ (D50, as ICC profiles hold them): red, green, blue.
SRGB_PRIMARIES_D50 = [(0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_embedded_icc_profile_is_honoured(tmp_path, fmt):
    red, green, blue = SRGB_PRIMARIES_D50
    swapped = rgb_profile([green, red, blue])  # stored red means green, stored green means red
    path = tmp_path / f"tagged.{fmt.lower()}"
    Image.fromarray(np.full((80, 80, 3), (255, 0, 0), np.uint8)).save(path, format=fmt, icc_profile=swapped, quality=95)
    r, g, b = load_thumbnail(str(path), 16)[8, 8].astype(int)
    assert g > 200 and r < 60 and b < 60, (r, g, b)
    untagged = tmp_path / f"plain.{fmt.lower()}"
    Image.fromarray(np.full((80, 80, 3), (255, 0, 0), np.uint8)).save(untagged, format=fmt, quality=95)
    assert load_thumbnail(str(untagged), 16)[8, 8, 0] > 240  # no profile: sRGB as stored


def test_icc_profile_split_over_several_segments_is_honoured(tmp_path):
    # A JPEG segment holds at most 64 KB, so bigger profiles come in numbered chunks.
    red, green, blue = SRGB_PRIMARIES_D50
    swapped = rgb_profile([green, red, blue])
    padded = struct.pack(">I", len(swapped) + 140_000) + swapped[4:] + b"\0" * 140_000
    path = tmp_path / "big_profile.jpg"
    Image.fromarray(np.full((80, 80, 3), (255, 0, 0), np.uint8)).save(path, icc_profile=padded, quality=95)
    assert path.read_bytes().count(b"ICC_PROFILE\0") == 3
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.open(path).save(path, icc_profile=padded, exif=exif, quality=95)  # and an orientation beside it
    r, g, b = load_thumbnail(str(path), 16)[8, 8].astype(int)
    assert g > 200 and r < 60 and b < 60, (r, g, b)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cmyk = np.zeros((64, 64, 4), np.uint8)
    cmyk[:, :32, 0] = 255  # cyan ink on the left
    cmyk[:, 32:, 1:3] = 255  # magenta + yellow inks on the right: red
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    thumb = load_thumbnail(str(tmp_path / "cmyk.jpg"), 32).astype(int)
    left, right = thumb[16, 4], thumb[16, 28]
    assert left[0] < 40 and left[1] > 200 and left[2] > 200, left
    assert right[0] > 200 and right[1] < 40 and right[2] < 40, right


def corrupted(data, seed=1):
    """A JPEG with 64 random bytes written over the middle of its scan data, as in the shared corpus."""
    data = bytearray(data)
    scan = data.index(b"\xff\xda")
    middle = (scan + len(data)) // 2
    data[middle : middle + 64] = np.random.default_rng(seed).integers(0, 256, 64, dtype=np.uint8).tobytes()
    return bytes(data)


def test_awkward_files_are_tiles_or_named_failures(tmp_path, demo_photos):
    photo = np.asarray(Image.open(demo_photos[3]).convert("RGB"))
    good = {
        "grey.jpg": lambda p: Image.fromarray(photo[..., 1]).save(p),
        "progressive.jpg": lambda p: Image.fromarray(photo).save(p, progressive=True),
        "trailing.jpg": lambda p: p.write_bytes(demo_photos[3].read_bytes() + b"\0junk" * 200),
        "animated.gif": lambda p: Image.fromarray(photo).save(p, save_all=True, append_images=[Image.new("RGB", photo.shape[1::-1])]),
        "photo.webp": lambda p: Image.fromarray(photo).save(p),
        "photo.tif": lambda p: Image.fromarray(photo).save(p, compression="tiff_lzw"),
        "photo.bmp": lambda p: Image.fromarray(photo).save(p),
        "rgb16.png": lambda p: p.write_bytes(_png16(photo)),
        "grey_alpha.png": lambda p: Image.fromarray(photo[..., 0]).convert("LA").save(p),
        "panorama.jpg": lambda p: Image.fromarray(np.tile(photo, (1, 8, 1))[:40]).save(p),
    }
    for name, make in good.items():
        make(tmp_path / name)
        thumb = load_thumbnail(str(tmp_path / name), 24, min_size=16)
        assert thumb.shape == (24, 24, 3) and thumb.std() > 5, name  # a picture, not a flat fill
    # The first frame of an animation, not the black second one.
    assert load_thumbnail(str(tmp_path / "animated.gif"), 24).mean() > 20
    Image.new("RGB", (1, 1), (9, 9, 9)).save(tmp_path / "tiny.jpg")
    (tmp_path / "corrupt.jpg").write_bytes(corrupted(demo_photos[3].read_bytes()))
    bad = {"tiny.jpg": "too-small", "corrupt.jpg": "corrupt"}
    for name, reason in bad.items():
        with pytest.raises(PhotoError) as info:
            load_thumbnail(str(tmp_path / name), 24, min_size=16)
        assert info.value.reason == reason, name


def _png16(rgb8):
    """A 48-bit RGB PNG (Pillow cannot write one), by hand with zlib."""
    rgb16 = rgb8.astype(">u2") * 257
    raw = b"".join(b"\0" + row.tobytes() for row in rgb16)
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    h, w = rgb8.shape[:2]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_huge_jpeg_is_decoded_at_reduced_scale_and_the_pixel_limit_counts_the_decode(tmp_path):
    Image.new("RGB", (12000, 9000), (200, 120, 40)).save(tmp_path / "huge.jpg", quality=80)
    Image.new("RGB", (3000, 2000), (200, 120, 40)).save(tmp_path / "big.png")
    # 108 MP declared, 1.7 MP decoded at 1/8 scale: under a 10 MP limit.
    thumb = load_thumbnail(str(tmp_path / "huge.jpg"), 32, max_pixels=10_000_000)
    np.testing.assert_allclose(thumb.reshape(-1, 3).mean(0), (200, 120, 40), atol=3)
    with pytest.raises(PhotoError) as info:  # a PNG decodes whole: 6 MP
        load_thumbnail(str(tmp_path / "big.png"), 32, max_pixels=5_000_000)
    assert info.value.reason == "too-large"


def test_huge_jpeg_peak_memory_stays_small(tmp_path):
    Image.new("RGB", (12000, 9000), (10, 120, 240)).save(tmp_path / "huge.jpg", quality=80)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from this (big) forked process.
    script = ("import re, sys; from pipeline.photo import load_thumbnail; load_thumbnail(sys.argv[1], 64); "
              "print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])")
    peak_kib = int(subprocess.run([sys.executable, "-c", script, str(tmp_path / "huge.jpg")], check=True,
                                  capture_output=True, text=True).stdout)
    # A full decode alone would be 324 MB; the interpreter and libraries are ~100 MB.
    assert peak_kib < 250 * 1024, peak_kib
