"""salient_window_offset and --crop smart: the window of the tile aspect that holds a photo's subject (real photos)."""
import numpy as np
import pytest
from PIL import Image

from pipeline.features import TileAspect, crop_box, salient_window_offset
from pipeline.photo import decode_thumbnail, load_thumbnail


def _lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.mark.parametrize("where", [0.0, 1.0])
def test_a_subject_beside_a_plain_backdrop_is_found_on_either_side(where, demo_photos):
    # A real photo (the subject) beside a plain grey backdrop twice as wide: a wide frame.
    photo = load_thumbnail(str(demo_photos[3]), 32)
    backdrop = np.full((32, 64, 3), 128, np.uint8)
    wide = np.concatenate([photo, backdrop] if where == 0.0 else [backdrop, photo], axis=1)
    # Within a pixel or two of the edge: the centre prior may buy a column of backdrop for an edge-poor column of photo.
    assert abs(salient_window_offset(_lightness(wide), 32) - where) <= 2 / 64
    assert abs(salient_window_offset(_lightness(wide).T, 32, axis=0) - where) <= 2 / 64  # a tall frame: along the other axis


def test_a_square_or_evenly_busy_photo_stays_centred(demo_photos):
    assert salient_window_offset(np.zeros((32, 32)), 32) == 0.5
    assert salient_window_offset(np.zeros((32, 80)), 32) == 0.5  # nothing anywhere: no reason to move
    busy = np.tile(_lightness(load_thumbnail(str(demo_photos[5]), 32)), (1, 3))  # the same photo three times: every window alike
    assert abs(salient_window_offset(busy, 32) - 0.5) <= 0.1


def test_smart_crop_cuts_the_thumbnail_around_the_subject(tmp_path, demo_photos):
    subject = load_thumbnail(str(demo_photos[7]), 192)
    backdrop = np.full((192, 384, 3), (90, 140, 200), np.uint8)  # sky: no edges
    path = tmp_path / "wide.png"
    Image.fromarray(np.concatenate([subject, backdrop], axis=1)).save(path)
    data = path.read_bytes()
    smart = decode_thumbnail(data, 32, crop="smart").astype(int)
    centre = decode_thumbnail(data, 32, crop="centre").astype(int)
    expected = np.asarray(Image.fromarray(subject).resize((32, 32), Image.Resampling.BICUBIC)).astype(int)
    # The subject's square, give or take the centre prior's pixel at analysis scale (6 px of 192 here);
    # the centre square is two thirds sky.
    smart_error, centre_error = np.abs(smart - expected).mean(), np.abs(centre - expected).mean()
    assert smart_error < 0.5 * centre_error, (smart_error, centre_error)
    sky = np.array([90, 140, 200])
    assert np.abs(centre[:, 16:] - sky).mean() < 3 and np.abs(smart - sky).mean() > 30
    with pytest.raises(ValueError, match="crop must be one of centre, smart"):
        decode_thumbnail(data, 32, crop="middle")


@pytest.mark.parametrize("text, expected", [("3:2", (3, 2)), ("6:4", (3, 2)), (" 2 : 3 ", (2, 3)), ("1:1", (1, 1)),
                                            ("16:9", (16, 9))])
def test_a_tile_aspect_reads_as_width_to_height_in_lowest_terms(text, expected):
    assert TileAspect.parse(text) == expected and TileAspect.parse(TileAspect(*expected)) == expected


@pytest.mark.parametrize("text, message", [("3x2", "WIDTH:HEIGHT"), ("0:1", "WIDTH:HEIGHT"), ("1.5:1", "WIDTH:HEIGHT"),
                                           ("", "WIDTH:HEIGHT"), ("11:1", "longer than 10:1")])
def test_a_tile_aspect_that_is_not_one_says_so_in_one_line(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        TileAspect.parse(text)
    assert "\n" not in str(caught.value)


def test_tile_shapes_keep_the_short_side_and_round_the_long_one():
    assert TileAspect.parse("3:2").tile_shape(32) == (32, 48)  # (height, width)
    assert TileAspect.parse("2:3").tile_shape(32) == (48, 32)
    assert TileAspect.parse("4:3").tile_shape(32) == (32, 43)
    assert TileAspect.parse("16:9").tile_shape(64) == (64, 114)
    assert TileAspect.parse("1:1").tile_shape(24) == (24, 24)


@pytest.mark.parametrize("aspect", ["3:2", "2:3", "16:9"])
def test_every_photo_landscape_or_portrait_gives_a_tile_of_the_aspect(tmp_path, demo_photos, aspect):
    photo = load_thumbnail(str(demo_photos[2]), 96)
    shape = TileAspect.parse(aspect).tile_shape(24)
    for name, pixels in (("landscape.png", np.concatenate([photo, photo[:, :48]], axis=1)),
                         ("portrait.png", np.concatenate([photo, photo[:48]], axis=0))):
        Image.fromarray(pixels).save(tmp_path / name)
        thumbnail = load_thumbnail(str(tmp_path / name), shape)
        assert thumbnail.shape == (*shape, 3)
        # The window is the largest of the aspect, centred: the same pixels as cropping it out by hand.
        box = crop_box(pixels.shape[1], pixels.shape[0], TileAspect(shape[1], shape[0]))
        by_hand = np.asarray(Image.fromarray(pixels).resize(shape[::-1], Image.Resampling.BICUBIC, box=box)).astype(int)
        assert np.abs(thumbnail.astype(int) - by_hand).mean() < 1.0


def test_smart_crop_slides_a_landscape_tile_down_a_photo_to_its_subject(tmp_path, demo_photos):
    # A square photo gives a 3:2 tile by losing a third of its rows: the window slides down, not across.
    subject = load_thumbnail(str(demo_photos[7]), (128, 192))
    sky = np.full((64, 192, 3), (90, 140, 200), np.uint8)
    path = tmp_path / "sky-above.png"
    Image.fromarray(np.concatenate([sky, subject], axis=0)).save(path)
    shape = TileAspect.parse("3:2").tile_shape(32)
    smart = load_thumbnail(str(path), shape, crop="smart").astype(int)
    centre = load_thumbnail(str(path), shape, crop="centre").astype(int)
    expected = np.asarray(Image.fromarray(subject).resize(shape[::-1], Image.Resampling.BICUBIC)).astype(int)
    assert np.abs(smart - expected).mean() < 0.75 * np.abs(centre - expected).mean()

    def sky_rows(tile):
        return int((np.abs(tile - (90, 140, 200)).mean(axis=(1, 2)) < 3).sum())
    # The centre window's top quarter is sky; smart's holds a few rows of it, for the strong edge where sky meets subject.
    assert sky_rows(centre) >= 7 and sky_rows(smart) <= sky_rows(centre) // 2, (sky_rows(centre), sky_rows(smart))
