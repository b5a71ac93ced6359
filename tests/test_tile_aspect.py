"""Tiles in the photos' own shape, end to end on a real cluster: index --tile-aspect, cells of that shape, every format."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import pyvips
from PIL import Image

from pipeline import MosaicError, ReuseRule, TileCache, index_library, make_mosaic, read_assignment, render_mosaic
from pipeline.cache import SCHEMA_VERSION, CacheError
from pipeline.features import TileAspect, compute_features
from pipeline.formats import halve
from pipeline.formats.tiff import pyramid_sizes
from pipeline.photo import load_rgb, load_thumbnail
from pipeline.rendering import render_assignment
from support.deep_zoom import read_level
from support.mosaics import expected_mosaic

MOSAIC = [sys.executable, "-m", "pipeline"]


@pytest.fixture(params=["3:2", "2:3"])
def aspect_cache(request, small_library, tmp_path, client):
    """A cache of the small library's real photos cut at a landscape or a portrait tile aspect."""
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, tile_size=32, tile_aspect=request.param, client=client, progress=False)
    return TileAspect.parse(request.param), cache


def test_index_cuts_every_photo_to_the_aspect(aspect_cache):
    aspect, cache = aspect_cache
    shape = aspect.tile_shape(32)
    with TileCache.open(cache) as c:
        assert c.tile_aspect == aspect and c.thumbnail_shape == shape
        rows = [0, len(c) // 2, len(c) - 1]
        thumbnails, paths = c.thumbnails(rows), c.paths()
        stored = c.features()
        assert c.check() == []
    for thumbnail, row in zip(thumbnails, rows):
        np.testing.assert_array_equal(thumbnail, load_thumbnail(paths[row], shape))
    again = compute_features(thumbnails, grid=4)
    np.testing.assert_allclose(again.grid_lab, stored.grid_lab[rows], atol=0.05)


def test_make_lays_out_cells_of_the_aspect_and_writes_the_tiles_it_recorded(aspect_cache, client, tmp_path, demo_target):
    aspect, cache = aspect_cache
    summary = make_mosaic(demo_target, cache, tmp_path / "m.png", cols=20, tile_px=16, report=False, client=client,
                          progress=False)
    tile_h, tile_w = aspect.tile_shape(16)
    target_h, target_w = load_rgb(str(demo_target), 1).shape[:2]
    # As many rows as make the grid of cells the target's shape: more of them for landscape cells.
    assert summary.rows == round(20 * target_h * aspect.width / (target_w * aspect.height))
    assert summary.tile_shape == (tile_h, tile_w) and (summary.width, summary.height) == (20 * tile_w, summary.rows * tile_h)
    image = np.asarray(Image.open(summary.output))
    assert image.shape == (summary.rows * tile_h, 20 * tile_w, 3)
    record = read_assignment(summary.assignment_npz)
    np.testing.assert_array_equal(image, expected_mosaic(record, cache, (tile_h, tile_w)))
    # The mosaic is the target: its cells, seen from afar, are the target's (no stretch, no shift).
    target = np.asarray(Image.fromarray(load_rgb(str(demo_target), 1)).resize((20, summary.rows), Image.Resampling.BOX), float)
    mosaic = image.reshape(summary.rows, tile_h, 20, tile_w, 3).mean(axis=(1, 3))
    shifted = np.asarray(Image.fromarray(load_rgb(str(demo_target), 1)).resize((20, summary.rows), Image.Resampling.BOX,
                                                                                box=(0, 0, target_w, target_h // 2)), float)
    assert np.abs(mosaic - target).mean() < 0.5 * np.abs(mosaic - shifted).mean()


def test_every_format_holds_the_mosaic_of_rectangular_cells(aspect_cache, client, tmp_path, demo_target):
    aspect, cache = aspect_cache
    summary = make_mosaic(demo_target, cache, tmp_path / "m.png", cols=24, tile_px=22, rule=ReuseRule.nearest(),
                          report=False, client=client, progress=False)
    record = read_assignment(summary.assignment_npz)
    tile_shape = aspect.tile_shape(22)  # 22 x 33 or 33 x 22: an odd side, so pyramids halve the bands, not the tiles
    expected = expected_mosaic(record, cache, tile_shape)
    for name in ("m.jpg", "m.tif", "m.dzi"):
        result = render_assignment(record, cache, tmp_path / name, client, tile_px=22, band_bytes=1)
        assert (result.width, result.height) == expected.shape[1::-1]
    assert np.abs(np.asarray(Image.open(tmp_path / "m.jpg"), int) - expected).mean() < 3
    levels = [expected]
    while len(levels) < len(pyramid_sizes(*expected.shape[1::-1])):
        levels.append(halve(levels[-1]))
    for page, reference in enumerate(levels):
        mine = pyvips.Image.new_from_file(str(tmp_path / "m.tif"), page=page).numpy()
        assert mine.shape == reference.shape and np.abs(mine.astype(int) - reference).mean() < 3, page
    top = read_level(tmp_path / "m_files", max(int(n) for n in os.listdir(tmp_path / "m_files")), expected.shape)
    assert np.abs(top - expected).mean() < 3


def test_even_tiles_are_halved_in_place_for_pyramids(client, small_library, tmp_path, demo_target):
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, tile_size=32, tile_aspect="3:2", client=client, progress=False)
    summary = make_mosaic(demo_target, cache, tmp_path / "m.png", cols=24, tile_px=32, rule=ReuseRule.nearest(),
                          report=False, client=client, progress=False)
    record = read_assignment(summary.assignment_npz)
    expected = expected_mosaic(record, cache, (32, 48))
    render_assignment(record, cache, tmp_path / "m.tif", client, tile_px=32, band_bytes=1)
    reference = expected
    for page in range(len(pyramid_sizes(*expected.shape[1::-1]))):
        mine = pyvips.Image.new_from_file(str(tmp_path / "m.tif"), page=page).numpy()
        assert mine.shape == reference.shape and np.abs(mine.astype(int) - reference).mean() < 3, page
        reference = halve(reference)


def test_from_originals_cuts_each_photo_at_the_aspect(aspect_cache, client, tmp_path, demo_target):
    aspect, cache = aspect_cache
    summary = make_mosaic(demo_target, cache, tmp_path / "m.png", cols=8, tile_px=16, report=False, client=client,
                          progress=False)
    render_mosaic(summary.assignment_npz, cache, tmp_path / "sharp.png", tile_px=64, from_originals=True, correct=0.0,
                  client=client, progress=False)
    record = read_assignment(summary.assignment_npz)
    tile_h, tile_w = aspect.tile_shape(64)
    image = np.asarray(Image.open(tmp_path / "sharp.png"))
    for r, c in ((0, 0), (record.rows - 1, 7)):
        photo = load_thumbnail(record.tile_paths[int(record.tiles[r, c])], (tile_h, tile_w))
        np.testing.assert_array_equal(image[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w], photo)


def test_a_cache_keeps_its_aspect_through_updates_and_prune(client, small_library, tmp_path, demo_photos):
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, tile_size=32, tile_aspect="16:9", client=client, progress=False)
    with pytest.raises(MosaicError, match="built with tile aspect 16:9, not 4:3; use another cache file"):
        index_library(small_library, cache, tile_aspect="4:3", client=client, progress=False)
    gone = next(small_library.rglob("*.jpg"))
    gone.unlink()
    summary = index_library(small_library, cache, prune=True, client=client, progress=False)
    assert summary.pruned == 1
    with TileCache.open(cache) as c:  # prune rewrote the file: the new one has the old one's shape
        assert c.tile_aspect == (16, 9) and c.thumbnail_shape == (32, 57) and c.check() == []


def test_an_older_cache_is_refused_with_the_command_that_rebuilds_it(client, small_library, tmp_path, demo_target):
    cache = tmp_path / "old.h5"
    index_library(small_library, cache, client=client, progress=False)
    with h5py.File(cache, "r+") as f:  # as a cache of square thumbnails from before tile aspects reads
        f.attrs["schema_version"] = 3
        del f.attrs["tile_aspect"]
    with pytest.raises(CacheError, match=f"cache schema v3, older than this mosaic's v{SCHEMA_VERSION}"):
        TileCache.open(cache)
    done = subprocess.run([*MOSAIC, "make", demo_target, "--cache", cache, "--out", tmp_path / "m.png", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    command = done.stderr.strip().split("index the library into a new cache: ")[1]
    assert command == f"mosaic index {small_library} --cache {tmp_path / f'old.v{SCHEMA_VERSION}.h5'}"
    # The command it names works as printed.
    again = subprocess.run([*MOSAIC, *command.split()[1:], "--workers", "1", "--quiet"], capture_output=True, text=True,
                           timeout=180)
    assert again.returncode == 0, again.stderr
    with TileCache.open(tmp_path / f"old.v{SCHEMA_VERSION}.h5") as c:
        assert len(c) > 100 and c.tile_aspect == (1, 1)


def test_cli_tile_aspect_and_its_one_line_errors(small_library, tmp_path):
    cache = tmp_path / "c.h5"
    bad = subprocess.run([*MOSAIC, "index", small_library, "--cache", cache, "--tile-aspect", "3x2", "--quiet"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "argument --tile-aspect: a tile aspect is WIDTH:HEIGHT" in bad.stderr
    assert "Traceback" not in bad.stderr and not cache.exists()
    done = subprocess.run([*MOSAIC, "index", small_library / "album1", "--cache", cache, "--tile-aspect", "4:3",
                           "--tile-size", "30", "--workers", "1", "--quiet"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    info = subprocess.run([*MOSAIC, "info", cache], capture_output=True, text=True, timeout=60).stdout
    assert "of 40x30 px (aspect 4:3)" in info
    env = {**os.environ, "DASK_MOSAIC__INDEX__TILE_ASPECT": "wide"}
    configured = subprocess.run([*MOSAIC, "index", small_library, "--cache", tmp_path / "d.h5", "--quiet"],
                                capture_output=True, text=True, timeout=60, env=env)
    assert configured.returncode == 2 and configured.stderr.strip().splitlines() == [
        "mosaic: error: a tile aspect is WIDTH:HEIGHT in whole numbers, e.g. 3:2 or 2:3, not 'wide'"]
