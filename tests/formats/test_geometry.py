"""Band plans: every row of the grid in one band, bands that keep every thread busy, on each format's boundaries."""
import pytest

from pipeline.formats import BandPlace, format_for
from pipeline.formats.deepzoom import DZ_TILE

EXTENSION = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "dz": ".dzi"}


def plan_bands(kind, rows, cols, tile, threads):
    """Bands of a grid of ``tile`` cells: (height, width), or a side for square ones."""
    shape = (tile, tile) if isinstance(tile, int) else tile
    return format_for("out" + EXTENSION[kind]).plan_bands(rows, cols, shape, threads)


@pytest.mark.parametrize("kind, rows, tile_px, threads, expected", [
    ("jpeg", 312, 32, 2, [32] * 9 + [24]),  # 10 bands, not 9 of ~35 rows: the last would run alone
    ("png", 988, 32, 2, [33] * 29 + [31]),
    ("jpeg", 301, 20, 2, [76] * 3 + [73]),  # an even number of 20 px rows: bands start on 8 px rows of MCUs
    ("jpeg", 77, 7, 3, [16] * 4 + [13]),  # 7 px cells: 8 rows of them make a whole number of MCU rows
    ("jpeg", 3, 64, 4, [1, 1, 1]),  # fewer rows than threads
    # 3:2 cells, 20 x 30 px: a row of cells is 0.54 MiB, 59 rows fit 32 MiB, 6 bands of an even number of rows
    # (20 px: two rows of cells make 5 rows of MCUs).
    ("jpeg", 301, (20, 30), 2, [52] * 5 + [41]),
    ("jpeg", 312, (48, 32), 2, [23] * 13 + [13]),  # portrait 2:3 cells: 1.37 MiB a row of cells, 23 rows in 32 MiB
])
def test_band_plans_cover_the_grid_in_even_bands_that_keep_every_thread_busy(kind, rows, tile_px, threads, expected):
    bands = plan_bands(kind, rows, 312, tile_px, threads)
    cell_height = tile_px if isinstance(tile_px, int) else tile_px[0]
    assert [end - first for first, end, _ in bands] == expected
    assert [first for first, _, _ in bands] == [0, *(end for _, end, _ in bands[:-1])]
    assert all(place == BandPlace(first * cell_height) for first, _, place in bands)
    assert kind != "jpeg" or all(place.first_row % 8 == 0 for _, _, place in bands)  # rows of MCUs at quality 90


@pytest.mark.parametrize("kind, rows, tile", [("tiff", 699, 32), ("dz", 699, 32), ("dz", 13, 80), ("dz", 5, 7),
                                              ("tiff", 499, (32, 48)), ("dz", 401, (57, 32))])
def test_pyramid_bands_own_whole_tile_rows_and_render_their_margins(kind, rows, tile):
    bands = plan_bands(kind, rows, 312, tile, 2)
    tile_px = tile if isinstance(tile, int) else tile[0]  # the cells' height is what bands cut through
    height, step = rows * tile_px, (256 if kind == "tiff" else DZ_TILE) << (bands[0][2].levels - 1)
    owned = [(place.first_row, place.first_row + place.rows) for _, _, place in bands]
    assert owned == [(top, min(height, top + step)) for top in range(0, height, step)]  # each row owned once
    for first, end, place in bands:
        start, stop = max(0, place.first_row - place.margin), min(height, place.first_row + place.rows + place.margin)
        assert place.margin == (1 << (place.levels - 1) if kind == "dz" else 0)
        assert first * tile_px <= start and stop <= end * tile_px  # its cells cover its rows and margins
        assert first * tile_px + place.skip_rows == place.first_row


def test_a_smaller_band_size_cuts_more_bands():
    jpeg = format_for("m.jpg")
    assert len(jpeg.plan_bands(40, 20, (24, 24), 2, band_bytes=1)) == 40  # a band a row of cells: 24 px is 3 rows of MCUs
    assert len(jpeg.plan_bands(40, 20, (20, 20), 2, band_bytes=1)) == 20  # 20 px cells: two make 5 rows of MCUs
    assert len(jpeg.plan_bands(40, 20, (24, 24), 2)) < len(jpeg.plan_bands(40, 20, (24, 24), 2, band_bytes=1))
