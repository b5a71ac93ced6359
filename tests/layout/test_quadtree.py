"""Subdivided grids: every point in one cell, the detailed cells split, reuse rules and rendering unchanged in meaning."""
import numpy as np
import pytest
from PIL import Image

from pipeline import ReuseRule, match_cells
from pipeline.cache import TileCache
from pipeline.features import SQUARE, TileAspect
from pipeline.layout import QuadCells, check_tile_halves, split_detail, subdivide
from pipeline.record import AssignmentRecord, read_assignment, write_assignment
from pipeline.rendering import render_assignment, resize_tiles
from pipeline.target import describe_cells
from support.features import clustered_grids
from tests.test_cli import assert_one_line_error, run


def _level_grids(pixels, rows, cols, depth):
    return [describe_cells(pixels, rows << level, cols << level, 4, SQUARE)[0].grid_lab for level in range(depth + 1)]


@pytest.mark.parametrize("depth, share", [(1, 0.5), (2, 0.25), (3, 0.4)])
def test_every_point_of_the_grid_lies_in_exactly_one_cell(depth, share):
    pixels = np.random.default_rng(depth).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    quad = subdivide(_level_grids(pixels, 4, 6, depth), 4, 6, share, 0.0)
    assert quad.covers_grid() and quad.depth == depth
    painted = quad.paint(np.arange(len(quad.level)))
    assert painted.shape == (4 << depth, 6 << depth) and len(np.unique(painted)) == len(quad.level)
    # Cells come by grid row: each band of grid rows is one slice of them.
    starts = quad.row_starts()
    for first in range(4):
        part = slice(starts[first], starts[first + 1])
        assert (quad.grid_row()[part] == first).all() and part.stop - part.start == (quad.grid_row() == first).sum()
    assert (np.bincount(quad.level, minlength=depth + 1)[1:] > 0).all()


def test_only_the_detailed_cells_split_and_flat_ones_never():
    pixels = np.full((160, 160, 3), 120, np.uint8)  # a flat 4 x 4 grid of 40 px cells ...
    pixels[40:80, 80:120] = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((10, 10), int))[..., None] * 255  # ... but one
    grids = _level_grids(pixels, 4, 4, 2)
    detail = split_detail(grids[0], grids[1], 4)
    assert detail.argmax() == 1 * 4 + 2 and np.delete(detail, 6).max() < 1.0
    quad = subdivide(grids, 4, 4, 0.5, 2.0)
    at_top = quad.level == 0
    assert at_top.sum() == 15 and not ((quad.row[at_top] == 1) & (quad.col[at_top] == 2)).any()
    assert (quad.grid_row()[~at_top] == 1).all()  # the one cell's quarters, and their quarters: no other splits
    assert quad.covers_grid()


def test_broken_layouts_are_caught_and_tiles_must_halve():
    whole = QuadCells(np.zeros(4, np.int8), np.array([0, 0, 1, 1], np.int32), np.array([0, 1, 0, 1], np.int32), 2, 2)
    assert whole.covers_grid()
    gap = whole._replace(level=whole.level[:3], row=whole.row[:3], col=whole.col[:3])
    overlap = QuadCells(np.array([0, 0, 0, 1], np.int8), np.array([0, 1, 1, 2], np.int32),
                        np.array([0, 0, 1, 2], np.int32), 2, 2)  # a quarter inside a whole cell, one quarter missing
    assert not gap.covers_grid() and not overlap.covers_grid()
    check_tile_halves(TileAspect(3, 2), 32, 2)
    with pytest.raises(Exception, match="cannot be halved 2 times into whole pixels; use `tile_px` 28"):
        check_tile_halves(SQUARE, 30, 2)


def _random_quad(rows, cols, depth, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (rows * 40, cols * 40, 3), dtype=np.uint8)
    return subdivide(_level_grids(pixels, rows, cols, depth), rows, cols, 0.3, 0.0)


@pytest.mark.parametrize("rule", [ReuseRule.unique(1), ReuseRule(3, 2), ReuseRule(None, 2, None, 1)])
def test_reuse_rules_hold_on_cells_of_several_sizes(rule):
    quad = _random_quad(8, 10, 2, 5)
    n = len(quad.level)
    cells, tiles = clustered_grids(n, 41, 4), clustered_grids(n - 40 if rule.min_uses else n + 40, 42, 6)
    result = match_cells(cells, tiles, rule=rule, boxes=quad.boxes(), box_unit=1 << quad.depth)
    uses = np.bincount(result.tiles, minlength=len(tiles))
    assert uses.max() <= (rule.max_uses or n) and uses.min() >= rule.min_uses  # a tile is one use whatever its size
    if rule.min_uses == 0:  # the floor may hold a twin in place; the cap alone never does
        boxes, reach = quad.boxes(), rule.min_repeat_distance << quad.depth
        for tile in np.flatnonzero(uses > 1):
            at = boxes[result.tiles == tile]
            for i in range(len(at)):
                for j in range(i):
                    gap_y = max(at[i, 0] - (at[j, 0] + at[j, 2]), at[j, 0] - (at[i, 0] + at[i, 2]))
                    gap_x = max(at[i, 1] - (at[j, 1] + at[j, 2]), at[j, 1] - (at[i, 1] + at[i, 2]))
                    assert max(gap_y, gap_x) >= reach, (tile, at[i], at[j])  # more than D grid cells between them


def test_a_subdivided_record_renders_each_cell_at_its_size_and_reads_back(small_cache, tmp_path, client):
    cache_path = small_cache
    quad = _random_quad(5, 7, 2, 6)
    n = len(quad.level)
    with TileCache.open(cache_path) as cache:
        tiles = np.random.default_rng(7).integers(0, len(cache), n)
        paths = cache.paths()
        thumbnails = cache.thumbnails(tiles)
    flipped = np.random.default_rng(8).random(n) < 0.3
    record = AssignmentRecord(tiles=tiles, distances=np.zeros(n, np.float32), cell_rgb=np.zeros((n, 3), np.uint8),
                              tile_paths={t: paths[t] for t in tiles.tolist()}, flipped=flipped, quad=quad)
    render_assignment(record, cache_path, tmp_path / "q.png", client, tile_px=16, correct=0, band_bytes=4 * 16 * 112 * 3)
    expected = np.zeros((5 * 16, 7 * 16, 3), np.uint8)
    for (top, left, side), image, mirror in zip((quad.boxes() * 4).tolist(), thumbnails, flipped):
        drawn = resize_tiles(image[None], side)[0]
        expected[top:top + side, left:left + side] = drawn[:, ::-1] if mirror else drawn
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "q.png")), expected)
    render_assignment(record, cache_path, tmp_path / "q.tif", client, tile_px=16, correct=0)  # a pyramid's bands
    assert np.abs(np.asarray(Image.open(tmp_path / "q.tif").convert("RGB"), float) - expected).mean() < 4
    csv_path, npz_path = write_assignment(record, str(tmp_path / "again"))
    for path in (csv_path, npz_path):
        back = read_assignment(path)
        assert back.quad is not None and back.quad.covers_grid() and (back.rows, back.cols) == (5, 7)
        np.testing.assert_array_equal(back.quad.paint(back.tiles), quad.paint(tiles))
        np.testing.assert_array_equal(back.quad.paint(back.flipped), quad.paint(flipped))
    lines = open(csv_path).read().splitlines()
    open(tmp_path / "broken.csv", "w").write("\n".join(lines[:-1]) + "\n")  # one cell gone: a hole in the grid
    with pytest.raises(Exception, match="do not cover a 7x5 grid once at every point"):
        read_assignment(tmp_path / "broken.csv")


def test_make_subdivides_through_the_command_line(small_cache, tmp_path, demo_target):
    cache = small_cache
    made = run("make", demo_target, "--cache", cache, "--out", tmp_path / "q.jpg", "--cols", "8", "--tile-px", "16",
               "--subdivide", "2", "--unique", "--workers", "1", "--quiet")
    assert made.returncode == 0, made.stderr
    assert "subdivided: " in made.stdout and " of 4 px wide" in made.stdout
    record = read_assignment(tmp_path / "q.assignment.npz")
    assert record.quad.covers_grid() and len(np.unique(record.tiles)) == len(record.tiles)  # unique across sizes
    assert Image.open(tmp_path / "q.jpg").size == (8 * 16, record.rows * 16)
    assert_one_line_error(run("make", demo_target, "--cache", cache, "--out", tmp_path / "x.png", "--cols", "8",
                              "--tile-px", "18", "--subdivide", "2", "--quiet"), "use --tile-px 16")
