"""The placement rules as a user gives them to `mosaic make`: each rule's guarantee, seen in the record it writes."""
import csv
import dataclasses

import numpy as np
from PIL import Image

from pipeline.record import read_assignment
from pipeline.rendering import render_assignment
from tests.test_cli import assert_one_line_error, run


def _tiles_of(csv_path):
    with open(csv_path, newline="") as f:
        return np.array([int(row["tile"]) for row in csv.DictReader(f)])


def test_use_all_puts_every_photo_in_the_mosaic(small_cache, tmp_path, demo_target):
    cache = small_cache
    made = run("make", demo_target, "--cache", cache, "--out", tmp_path / "all.png", "--cols", "16", "--tile-px", "8",
               "--use-all", "--workers", "1", "--quiet")
    assert made.returncode == 0, made.stderr
    uses = np.bincount(_tiles_of(tmp_path / "all.assignment.csv"), minlength=120)
    assert len(uses) == 120 and uses.min() >= 1  # all 120 photos, on 16 x 10 cells
    made = run("make", demo_target, "--cache", cache, "--out", tmp_path / "each.png", "--cols", "14", "--tile-px", "8",
               "--uses-each", "1:2", "--workers", "1", "--quiet")
    assert made.returncode == 0, made.stderr
    uses = np.bincount(_tiles_of(tmp_path / "each.assignment.csv"), minlength=120)
    assert uses.min() == 1 and uses.max() == 2
    assert_one_line_error(run("make", demo_target, "--cache", cache, "--out", tmp_path / "few.png", "--cols", "8",
                              "--use-all", "--quiet"),
                          "every tile at least once needs 120 cells (120 tiles x 1) but the grid has 40; "
                          "use --cols 14 or more")


def test_flip_mirrors_the_tiles_it_records_and_only_those(small_cache, tmp_path, demo_target, client):
    cache = small_cache
    made = run("make", demo_target, "--cache", cache, "--out", tmp_path / "f.png", "--cols", "24", "--tile-px", "16",
               "--flip", "--correct", "0", "--workers", "1", "--quiet")
    assert made.returncode == 0, made.stderr
    record = read_assignment(tmp_path / "f.assignment.npz")
    assert record.flipped is not None and 0 < record.flipped.mean() < 1
    assert np.array_equal(read_assignment(tmp_path / "f.assignment.csv").flipped, record.flipped)
    straight = dataclasses.replace(record, flipped=None)
    render_assignment(straight, cache, tmp_path / "s.png", client, tile_px=16, correct=0)
    flipped = np.asarray(Image.open(tmp_path / "f.png")).reshape(record.rows, 16, record.cols, 16, 3)
    plain = np.asarray(Image.open(tmp_path / "s.png")).reshape(record.rows, 16, record.cols, 16, 3)
    for r, c in np.ndindex(record.rows, record.cols):
        expected = plain[r, :, c, ::-1] if record.flipped[r, c] else plain[r, :, c]
        np.testing.assert_array_equal(flipped[r, :, c], expected)
    unflipped = run("make", demo_target, "--cache", cache, "--out", tmp_path / "n.png", "--cols", "24", "--tile-px",
                    "16", "--workers", "1", "--quiet")
    assert unflipped.returncode == 0 and read_assignment(tmp_path / "n.assignment.npz").flipped is None  # off by default
    assert "flipped" not in (tmp_path / "n.assignment.csv").read_text().splitlines()[0]
