"""Print sizing: the paper and the resolution decide the pixels; the file and the report carry them."""
import numpy as np
import pytest
from PIL import Image

from pipeline import MosaicError
from pipeline.features import TileAspect
from pipeline.layout import PrintSize, plan_print, printed_size
from tests.test_cli import assert_one_line_error, run


def test_a_print_size_is_parsed_in_its_own_unit():
    assert PrintSize.parse("60x40cm") == PrintSize(60, 40, "cm")
    assert PrintSize.parse(" 24 X 16in ").pixels(300) == (7200, 4800)
    assert PrintSize.parse("420x297mm").pixels(300) == (4961, 3508)
    for bad in ("60x40", "60cm", "0x40cm", "60x40ft"):
        with pytest.raises(MosaicError, match="WIDTHxHEIGHT"):
            PrintSize.parse(bad)


@pytest.mark.parametrize("aspect", ["1:1", "3:2", "2:3", "4:3"])
@pytest.mark.parametrize("cols", [3, 7, 80, 333])
def test_the_grid_fills_the_paper_to_within_a_tile(aspect, cols):
    aspect, size = TileAspect.parse(aspect), PrintSize(60, 40, "cm")
    width, height = size.pixels(300)
    plan = plan_print(size, 300, aspect, cols=cols)
    tile_h, tile_w = aspect.tile_shape(plan.tile_px)
    assert plan.cols == cols
    assert cols * tile_w <= width < cols * aspect.tile_shape(plan.tile_px + 1)[1]  # the widest tile that fits
    assert abs(plan.rows * tile_h - height) <= tile_h / 2
    by_tile = plan_print(size, 300, aspect, tile_px=plan.tile_px)
    assert by_tile.tile_px == plan.tile_px and by_tile.cols >= cols and (by_tile.cols + 1) * tile_w > width


def test_a_subdivided_grid_gets_tiles_that_halve():
    aspect = TileAspect(3, 2)
    plan = plan_print(PrintSize(30, 20, "cm"), 150, aspect, cols=40, halves=2)  # 1772 x 1181 px
    # 44 x 29 px tiles would fit 40 across, but halve into 11 x 7.25: 36 x 24 do, and 49 of them fill the paper.
    assert plan == (49, 49, 24)
    assert plan_print(PrintSize(30, 20, "cm"), 150, aspect, cols=40) == (40, 41, 29)


def test_a_row_of_few_tiles_is_no_taller_than_the_paper():
    plan = plan_print(PrintSize(60, 40, "cm"), 300, TileAspect(2, 3), cols=1)
    assert plan.rows == 1 and TileAspect(2, 3).tile_shape(plan.tile_px)[0] <= 4724


def test_a_grid_too_fine_for_the_paper_says_what_would_work():
    with pytest.raises(MosaicError, match="use at most 236 `cols`"):
        plan_print(PrintSize(2, 2, "cm"), 300, TileAspect(1, 1), cols=500)
    with pytest.raises(MosaicError, match="not both"):
        plan_print(PrintSize(2, 2, "cm"), 300, TileAspect(1, 1), cols=5, tile_px=4)
    assert printed_size(7087, 4724, 300) == "60.0 x 40.0 cm at 300 dpi"


def test_make_fills_a_print_and_the_file_and_report_say_so(small_cache, tmp_path, demo_target):
    cache = small_cache
    out = tmp_path / "print.png"
    made = run("make", demo_target, "--cache", cache, "--out", out, "--print-size", "8x6cm", "--dpi", "150",
               "--cols", "10", "--workers", "1", "--quiet")
    assert made.returncode == 0, made.stderr
    # 8 cm at 150 dpi is 472 px: 10 tiles of 47 px; 6 cm is 354 px: 8 rows.
    assert "prints at 8.0 x 6.4 cm at 150 dpi, each tile 0.8 x 0.8 cm" in made.stdout
    with Image.open(out) as image:
        assert image.size == (470, 376) and image.info["dpi"] == pytest.approx((150, 150), abs=0.05)  # PNG: per metre
    assert "8.0 x 6.4 cm at 150 dpi" in (tmp_path / "print.report.html").read_text()
    again = tmp_path / "again.jpg"
    rendered = run("render", tmp_path / "print.assignment.npz", "--cache", cache, "--out", again, "--tile-px", "47",
                   "--quiet")
    assert rendered.returncode == 0, rendered.stderr
    with Image.open(again) as image:  # the record keeps the resolution
        assert image.info["dpi"] == pytest.approx((150, 150), abs=0.01)
        assert np.asarray(image).shape == (376, 470, 3)
    assert_one_line_error(run("make", demo_target, "--cache", cache, "--out", tmp_path / "x.png", "--print-size",
                              "8x6cm", "--rows", "3", "--quiet"), "a print size sets the rows")
    refused = run("make", demo_target, "--cache", cache, "--out", tmp_path / "x.png", "--print-size", "8 by 6")
    assert refused.returncode == 2 and "argument --print-size: a print size is WIDTHxHEIGHT" in refused.stderr
