"""salient_square_offset and --crop smart: the square window that holds a photo's subject (real photos)."""
import numpy as np
import pytest
from PIL import Image

from pipeline.features import salient_square_offset
from pipeline.photo import decode_square_thumbnail, load_square_thumbnail


def _lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.mark.parametrize("where", [0.0, 1.0])
def test_a_subject_beside_a_plain_backdrop_is_found_on_either_side(where, demo_photos):
    # A real photo (the subject) beside a plain grey backdrop twice as wide: a wide frame.
    photo = load_square_thumbnail(str(demo_photos[3]), 32)
    backdrop = np.full((32, 64, 3), 128, np.uint8)
    wide = np.concatenate([photo, backdrop] if where == 0.0 else [backdrop, photo], axis=1)
    # Within a pixel or two of the edge: the centre prior may buy a column of backdrop for an edge-poor column of photo.
    assert abs(salient_square_offset(_lightness(wide)) - where) <= 2 / 64
    assert abs(salient_square_offset(_lightness(wide).T) - where) <= 2 / 64  # a tall frame: along the other axis


def test_a_square_or_evenly_busy_photo_stays_centred(demo_photos):
    assert salient_square_offset(np.zeros((32, 32))) == 0.5
    assert salient_square_offset(np.zeros((32, 80))) == 0.5  # nothing anywhere: no reason to move
    busy = np.tile(_lightness(load_square_thumbnail(str(demo_photos[5]), 32)), (1, 3))  # the same photo three times: every window alike
    assert abs(salient_square_offset(busy) - 0.5) <= 0.1


def test_smart_crop_cuts_the_thumbnail_around_the_subject(tmp_path, demo_photos):
    subject = load_square_thumbnail(str(demo_photos[7]), 192)
    backdrop = np.full((192, 384, 3), (90, 140, 200), np.uint8)  # sky: no edges
    path = tmp_path / "wide.png"
    Image.fromarray(np.concatenate([subject, backdrop], axis=1)).save(path)
    data = path.read_bytes()
    smart = decode_square_thumbnail(data, 32, crop="smart").astype(int)
    centre = decode_square_thumbnail(data, 32, crop="centre").astype(int)
    expected = np.asarray(Image.fromarray(subject).resize((32, 32), Image.Resampling.BICUBIC)).astype(int)
    # The subject's square, give or take the centre prior's pixel at analysis scale (6 px of 192 here);
    # the centre square is two thirds sky.
    smart_error, centre_error = np.abs(smart - expected).mean(), np.abs(centre - expected).mean()
    assert smart_error < 0.5 * centre_error, (smart_error, centre_error)
    sky = np.array([90, 140, 200])
    assert np.abs(centre[:, 16:] - sky).mean() < 3 and np.abs(smart - sky).mean() > 30
    with pytest.raises(ValueError, match="crop must be one of centre, smart"):
        decode_square_thumbnail(data, 32, crop="middle")
