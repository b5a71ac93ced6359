"""Streamed assembly on a real cluster: make, re-render from the record, blend, originals, Deep Zoom in Chromium."""
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pyvips
import simplejpeg
from PIL import Image

from distributed import Client, LocalCluster

from pipeline import MosaicError, ReuseRule, TileCache, index_library, make_mosaic, read_assignment, render_mosaic
from pipeline.formats import format_for, halve
from pipeline.formats.jpeg import QUALITY
from pipeline.formats.tiff import pyramid_sizes
from pipeline.photo import load_thumbnail
from pipeline.rendering import render_assignment, resize_tiles
from support.browser import open_page
from support.deep_zoom import read_level
from support.mosaics import expected_mosaic

MOSAIC = [sys.executable, "-m", "pipeline"]


@pytest.fixture
def made(small_library, tmp_path, client, demo_target):
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, client=client, progress=False)
    # The nearest rule: the pyramid tests' JPEG tolerance (< 5 per strip, rows out of place ~30) is set on its
    # mosaic; the default rule's many more distinct tiles give JPEG more edges to lose (5.7 in one strip).
    summary = make_mosaic(demo_target, cache, tmp_path / "mosaic.png", cols=20, tile_px=16, rule=ReuseRule.nearest(),
                          report=False, client=client, progress=False)
    return summary, cache


def test_make_writes_the_tiles_it_recorded(made):
    summary, cache = made
    record = read_assignment(summary.assignment_npz)
    assert record.tiles.shape == (summary.rows, summary.cols) and record.target.endswith("target.jpg")
    np.testing.assert_array_equal(np.asarray(Image.open(summary.output)), expected_mosaic(record, cache, 16))


def test_render_in_many_bands_equals_the_reference(made, client, tmp_path):
    summary, cache = made
    result = render_assignment(read_assignment(summary.assignment_csv), cache, tmp_path / "again.png", client, tile_px=24,
                               band_bytes=1)  # one row of cells per task: 13 bands in order
    assert (result.width, result.height) == (20 * 24, summary.rows * 24)
    expected = expected_mosaic(read_assignment(summary.assignment_csv), cache, 24)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again.png")), expected)
    assert result.preview.shape == (summary.rows * 24, 20 * 24, 3)  # 1024 px wide preview: full size here


def test_jpeg_from_bands_encoded_apart_decodes_as_the_whole_image_encoded_at_once(made, client, tmp_path):
    summary, cache = made
    render_assignment(read_assignment(summary.assignment_npz), cache, tmp_path / "bands.jpg", client, tile_px=24,
                      band_bytes=1)  # one row of 24 px cells per band: three rows of MCUs
    data = (tmp_path / "bands.jpg").read_bytes()
    assert b"\xff\xdd" in data[: data.index(b"\xff\xda")]  # restart markers: the bands were encoded apart
    expected = expected_mosaic(read_assignment(summary.assignment_npz), cache, 24)
    reference = simplejpeg.encode_jpeg(expected, quality=QUALITY, colorspace="RGB", fastdct=False)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "bands.jpg")), np.asarray(Image.open(io.BytesIO(reference))))


@pytest.fixture
def one_thread():
    """A cluster of one thread in this process: renders plan their bands as for one thread, the layout the tests expect."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def _worst_strip_error(mine, reference, strip=32):
    """The largest mean absolute difference over any ``strip`` rows: a band out of place shows in its strips."""
    error = np.abs(mine.astype(int) - reference)
    return max(error[top : top + strip].mean() for top in range(0, len(error), strip))


def test_tiff_from_bands_holds_the_mosaic_at_every_level(made, one_thread, tmp_path):
    summary, cache = made
    bands = format_for("m.tif").plan_bands(summary.rows, 20, (96, 96), 1)
    # Bands of 1024 rows that cut through the 96 px cells and encode three levels each, the lower two
    # laid out from halved tiles; the writer carries the rest.
    assert [place.levels for _, _, place in bands] == [3, 3] and bands[1][2].skip_rows == 1024 % 96
    render_mosaic(summary.assignment_npz, cache, tmp_path / "m.tif", tile_px=96, client=one_thread, progress=False)
    levels = [expected_mosaic(read_assignment(summary.assignment_npz), cache, 96)]
    sizes = pyramid_sizes(20 * 96, summary.rows * 96)
    while len(levels) < len(sizes):
        levels.append(halve(levels[-1]))
    assert pyvips.Image.new_from_file(str(tmp_path / "m.tif")).get("n-pages") == len(sizes) == 4
    for page, reference in enumerate(levels):
        mine = pyvips.Image.new_from_file(str(tmp_path / "m.tif"), page=page).numpy()
        assert mine.shape == reference.shape
        assert _worst_strip_error(mine, reference) < 5, page  # JPEG's loss, in every strip; rows out of place cost ~30


# Levels laid out from halved tiles; or halved from the band when a side is odd; or a last band (rows 1016..1040)
# below the last cell's top, which holds no cells of the preview.
@pytest.mark.parametrize("tile_px", [96, 90, 80])
def test_deep_zoom_from_bands_holds_the_mosaic_at_every_level(made, one_thread, tmp_path, tile_px):
    summary, cache = made
    bands = format_for("m.dzi").plan_bands(summary.rows, 20, (tile_px, tile_px), 1)
    # Bands of 1016 rows that cut through the cells, each rendered 4 rows deeper at top and bottom for the
    # tiles' overlap, encode three levels each; the writer carries the rest.
    assert [(place.first_row, place.levels, place.margin) for _, _, place in bands] == [(0, 3, 4), (1016, 3, 4)]
    assert bands[1][0] == 1012 // tile_px and bands[1][2].skip_rows == 1016 - 1012 // tile_px * tile_px
    render_mosaic(summary.assignment_npz, cache, tmp_path / "m.dzi", tile_px=tile_px, client=one_thread, progress=False)
    levels = [expected_mosaic(read_assignment(summary.assignment_npz), cache, tile_px)]
    while levels[-1].shape[:2] != (1, 1):
        levels.append(halve(levels[-1], repeat_odd=True))
    assert sorted(os.listdir(tmp_path / "m_files"), key=int) == [str(n) for n in range(len(levels))]
    for number, reference in zip(range(len(levels) - 1, -1, -1), levels):
        mine = read_level(tmp_path / "m_files", number, reference.shape)
        assert _worst_strip_error(mine, reference) < 5, number  # JPEG's loss, in every strip; rows out of place cost ~30


def test_full_blend_paints_each_cell_its_colour(made, client, tmp_path):
    summary, cache = made
    render_mosaic(summary.assignment_npz, cache, tmp_path / "flat.png", tile_px=8, blend=1.0, client=client, progress=False)
    cells = np.asarray(Image.open(tmp_path / "flat.png")).reshape(summary.rows, 8, 20, 8, 3)
    record = read_assignment(summary.assignment_npz)
    np.testing.assert_array_equal(cells, np.broadcast_to(record.cell_rgb[:, None, :, None], cells.shape))


def test_from_originals_rereads_photos_and_falls_back_when_one_is_gone(made, client, tmp_path):
    summary, cache = made
    record = read_assignment(summary.assignment_npz)
    gone_row = int(record.tiles[0, 0])
    os.unlink(record.tile_paths[gone_row])
    # correct=0: the photos' own pixels, uncorrected, are what this compares.
    result = render_mosaic(summary.assignment_npz, cache, tmp_path / "sharp.png", tile_px=96, from_originals=True,
                           correct=0.0, client=client, progress=False)
    assert result.fallbacks == 1
    image = np.asarray(Image.open(tmp_path / "sharp.png"))
    r, c = np.argwhere(record.tiles != gone_row)[0]
    photo = load_thumbnail(record.tile_paths[int(record.tiles[r, c])], 96)
    np.testing.assert_array_equal(image[r * 96 : (r + 1) * 96, c * 96 : (c + 1) * 96], photo)
    with TileCache.open(cache) as tiles:  # the missing photo's cached thumbnail, enlarged, stands in
        np.testing.assert_array_equal(image[:96, :96], resize_tiles(tiles.thumbnails([gone_row]), 96)[0])


def test_render_refuses_a_changed_cache_and_precious_outputs(made, client, tmp_path, small_library, demo_photos):
    summary, cache = made
    with pytest.raises(MosaicError, match="refusing to write the mosaic over"):
        render_mosaic(summary.assignment_npz, cache, cache, client=client, progress=False)
    with pytest.raises(MosaicError, match="refusing to write the mosaic over"):
        render_mosaic(summary.assignment_npz, cache, summary.assignment_npz, client=client, progress=False)
    other = tmp_path / "other.h5"
    index_library(small_library / "album1", other, client=client, progress=False)
    with pytest.raises(MosaicError, match="has changed since the assignment was made|holds .* tiles"):
        render_mosaic(summary.assignment_npz, other, tmp_path / "x.png", client=client, progress=False)
    assert not (tmp_path / "x.png").exists()


def test_cli_render_and_its_one_line_errors(made, tmp_path):
    summary, cache = made
    done = subprocess.run([*MOSAIC, "render", summary.assignment_npz, "--cache", cache, "--out", tmp_path / "c.tif",
                           "--tile-px", "32", "--blend", "0.2", "--workers", "1", "--quiet"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(f"{tmp_path / 'c.tif'}: 640x{summary.rows * 32} px in ")
    bad = subprocess.run([*MOSAIC, "render", cache, "--cache", cache, "--out", tmp_path / "d.png", "--quiet"],
                         capture_output=True, text=True, timeout=180)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "mosaic: error: " in bad.stderr
    assert "Traceback" not in bad.stderr
    blend = subprocess.run([*MOSAIC, "render", summary.assignment_npz, "--cache", cache, "--out", tmp_path / "e.png",
                            "--blend", "2"], capture_output=True, text=True, timeout=60)
    assert blend.returncode == 2 and "must be between 0 and 1" in blend.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_render_leaves_no_file_under_the_final_name(made, tmp_path, demo_target):
    summary, cache = made
    before = _digest(cache), _digest(Path(summary.output))
    out = tmp_path / "big.png"
    process = subprocess.Popen([*MOSAIC, "render", summary.assignment_npz, "--cache", cache, "--out", out,
                                "--tile-px", "1200", "--from-originals", "--workers", "1", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".big.png.") for p in tmp_path.iterdir()):  # the writer has started
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()
    assert (_digest(cache), _digest(Path(summary.output))) == before


def test_deep_zoom_page_shows_the_mosaic_in_chromium(made, client, served, tmp_path):
    summary, cache = made
    render_mosaic(summary.assignment_npz, cache, tmp_path / "zoom.dzi", tile_px=64, client=client, progress=False)
    with open_page(f"{served}/zoom.html", size=(1200, 900)) as page:
        page.wait_for_function("window.viewer && viewer.world.getItemCount() === 1 && viewer.world.getItemAt(0).getFullyLoaded()",
                               timeout=30_000)
        page.wait_for_timeout(500)
        box = page.evaluate("""() => { const r = viewer.viewport.viewportToViewerElementRectangle(
                                   viewer.world.getItemAt(0).getBounds()); return [r.x, r.y, r.width, r.height]; }""")
        page.screenshot(path=str(tmp_path / "zoom.png"))
    x, y, w, h = (round(v) for v in box)
    assert w > 800  # fitted to the window, not a blank page
    with Image.open(tmp_path / "zoom.png") as shot, Image.open(summary.output) as mosaic:
        shown = shot.convert("RGB").crop((x, y, x + w, y + h))
        small = (80, round(80 * mosaic.height / mosaic.width))
        a = np.asarray(shown.resize(small, Image.Resampling.BOX), float).ravel()
        b = np.asarray(mosaic.convert("RGB").resize(small, Image.Resampling.BOX), float).ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.95
