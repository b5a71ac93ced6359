"""Priority maps: a drawn mask or faces and saliency found in the target, averaged over the cells."""
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from pipeline import MosaicError
from pipeline.features import SQUARE
from pipeline.layout import auto_priority, cell_levels, cell_weights, priority_map
from tests.test_cli import run


def test_a_mask_is_averaged_over_each_cell(tmp_path):
    target = np.zeros((300, 400, 3), np.uint8)
    mask = np.zeros((150, 200), np.uint8)  # half the target's size: only its shape must match
    mask[:, 100:] = 255  # the right half matters
    Image.fromarray(mask).save(tmp_path / "mask.png")
    levels = cell_levels(priority_map(tmp_path / "mask.png", target), 3, 4, SQUARE).reshape(3, 4)
    np.testing.assert_allclose(levels[:, :2], 0, atol=0.02)
    np.testing.assert_allclose(levels[:, 2:], 1, atol=0.02)
    np.testing.assert_allclose(cell_weights(levels, 4.0)[:, 2:], 4, atol=0.06)
    Image.fromarray(mask.T).save(tmp_path / "turned.png")
    with pytest.raises(MosaicError, match="is 150x200 but the target is 400x300: draw the mask on the target"):
        priority_map(tmp_path / "turned.png", target)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(MosaicError, match="cannot read priority mask"):
        priority_map(tmp_path / "broken.png", target)


def test_auto_finds_the_face_of_a_real_portrait():
    astronaut = data.astronaut()  # 512 x 512; her face is near x 177..272, y 66..161
    found = auto_priority(astronaut)
    assert found.source == "auto: 1 face and saliency"
    levels = cell_levels(found, 16, 16, SQUARE).reshape(16, 16)  # cells of 32 px
    face = levels[3:5, 6:8]  # cells well inside the face
    assert face.min() == pytest.approx(1, abs=0.01)
    assert levels.mean() < 0.5 and np.median(levels) < 0.3  # the rest is not all important


def test_make_with_a_mask_gives_its_region_the_better_tiles(small_cache, tmp_path, demo_target):
    cache = small_cache
    with Image.open(demo_target) as target:
        mask = np.zeros((target.height, target.width), np.uint8)
    mask[:, : mask.shape[1] // 3] = 255  # the left third
    Image.fromarray(mask).save(tmp_path / "left.png")
    inside = {}
    for strength in ("1", "6"):
        made = run("make", demo_target, "--cache", cache, "--out", tmp_path / f"m{strength}.png", "--cols", "13",
                   "--tile-px", "8", "--unique", "--priority", tmp_path / "left.png", "--priority-strength", strength,
                   "--workers", "1", "--quiet")
        assert made.returncode == 0, made.stderr
        assert "priority left.png: colour distance mean" in made.stdout
        inside[strength] = json.load(open(tmp_path / f"m{strength}.match.json"))["priority"]
    assert inside["6"]["mean_distance_inside"] < inside["1"]["mean_distance_inside"]
    assert inside["6"]["mean_distance_outside"] >= inside["1"]["mean_distance_outside"] - 1e-3
    Image.fromarray(mask // 4).save(tmp_path / "dim.png")  # no cell reaches priority 0.5: no inside to average
    made = run("make", demo_target, "--cache", cache, "--out", tmp_path / "dim.png.jpg", "--cols", "13", "--tile-px", "8",
               "--unique", "--priority", tmp_path / "dim.png", "--workers", "1", "--quiet")
    assert made.returncode == 0, made.stderr
    dim = json.loads((tmp_path / "dim.png.match.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    assert dim["priority"]["mean_distance_inside"] is None and dim["priority"]["mean_distance_outside"] > 0
