"""The HTML report beside a mosaic, looked at in headless Chromium, and `mosaic coverage`."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.browser import open_page
from pipeline import index_library, make_mosaic


@pytest.fixture
def made(small_library, tmp_path, client, demo_target):
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, client=client, progress=False)
    summary = make_mosaic(demo_target, cache, tmp_path / "mosaic.jpg", cols=40, tile_px=16, client=client, progress=False)
    return summary, cache


def test_report_is_self_contained_and_has_the_numbers(made):
    summary, _ = made
    assert summary.report == str(Path(summary.output).with_suffix(".report.html"))
    page = Path(summary.report).read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 4 and all(s.startswith("data:image/") for s in sources)
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from anywhere
    for text in (f"{summary.cols} x {summary.rows} = {summary.rows * summary.cols}", f"{summary.distinct_tiles}</td>",
                 f"{summary.mean_distance:.2f} delta E", "time: match", "The library covers"):
        assert text in page, text


def test_report_images_render_in_chromium(made, served, tmp_path):
    summary, _ = made
    with open_page(f"{served}/{Path(summary.report).name}", size=(1400, 1000)) as page:
        page.wait_for_load_state("load")
        widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        page.locator("#mosaic").screenshot(path=str(tmp_path / "shown-mosaic.png"))
        page.locator("#coverage").screenshot(path=str(tmp_path / "shown-coverage.png"))
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert len(widths) == 4 and all(w > 100 for w in widths), widths
    # What the browser drew in the mosaic's place is the mosaic.
    with Image.open(tmp_path / "shown-mosaic.png") as shown, Image.open(summary.output) as mosaic:
        small = (64, round(64 * mosaic.height / mosaic.width))
        a = np.asarray(shown.convert("L").resize(small, Image.Resampling.BOX), float).ravel()
        b = np.asarray(mosaic.convert("L").resize(small, Image.Resampling.BOX), float).ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9
    with Image.open(tmp_path / "shown-coverage.png") as chart:
        assert chart.width > 600 and len(np.unique(np.asarray(chart.convert("RGB")).reshape(-1, 3), axis=0)) > 50


def test_coverage_command(made, tmp_path, demo_target):
    _, cache = made
    result = subprocess.run([Path(sys.executable).parent / "mosaic", "coverage", demo_target, "--cache", cache, "--cols", "30"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    verdict, chart_line = result.stdout.strip().splitlines()
    assert re.match(r"The library covers \d+% of the target's 570 cells within 10 delta E\.", verdict)  # 30 x 19
    assert chart_line == f"chart: {tmp_path / 'target.coverage.png'}"
    with Image.open(tmp_path / "target.coverage.png") as chart:
        assert chart.format == "PNG" and chart.width >= 1000


def test_no_report_when_asked(small_library, tmp_path, client, demo_target):
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, client=client, progress=False)
    summary = make_mosaic(demo_target, cache, tmp_path / "m.png", cols=10, tile_px=8, report=False, client=client, progress=False)
    assert summary.report is None and not (tmp_path / "m.report.html").exists()
