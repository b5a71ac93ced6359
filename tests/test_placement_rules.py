"""The placement rules as a user gives them to `mosaic make`: each rule's guarantee, seen in the record it writes."""
import csv

import numpy as np

from tests.test_cli import assert_one_line_error, run


def _tiles_of(csv_path):
    with open(csv_path, newline="") as f:
        return np.array([int(row["tile"]) for row in csv.DictReader(f)])


def test_use_all_puts_every_photo_in_the_mosaic(small_library, tmp_path, demo_target):
    cache = tmp_path / "tiles.h5"
    assert run("index", small_library, "--cache", cache, "--tile-size", "16", "--workers", "1", "--quiet").returncode == 0
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
