"""The assignment record: both forms read back the same grid; anything else is a one-line error."""
import numpy as np
import pytest

from pipeline import AssignmentRecord, MosaicError, read_assignment, write_assignment


@pytest.fixture
def record():
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 50, (7, 9))
    return AssignmentRecord(tiles=tiles, distances=rng.random((7, 9), dtype=np.float32) * 20,
                            cell_rgb=rng.integers(0, 256, (7, 9, 3), dtype=np.uint8),
                            tile_paths={t: f"/photos/album, \"x\"/{t}.jpg" for t in np.unique(tiles).tolist()},
                            target="/targets/cat.jpg")


@pytest.mark.parametrize("form", ["csv", "npz"])
def test_both_forms_round_trip(tmp_path, record, form):
    csv_path, npz_path = write_assignment(record, str(tmp_path / "m"))
    assert csv_path.endswith("m.assignment.csv") and npz_path.endswith("m.assignment.npz")
    back = read_assignment(csv_path if form == "csv" else npz_path)
    np.testing.assert_array_equal(back.tiles, record.tiles)
    np.testing.assert_array_equal(back.cell_rgb, record.cell_rgb)
    np.testing.assert_allclose(back.distances, record.distances, atol=5e-4)
    assert back.tile_paths == record.tile_paths
    assert back.target == (record.target if form == "npz" else "")


def test_csv_rows_in_any_order_are_put_back_on_the_grid(tmp_path, record):
    csv_path, _ = write_assignment(record, str(tmp_path / "m"))
    header, *lines = open(csv_path).read().splitlines(keepends=True)
    (tmp_path / "shuffled.csv").write_text(header + "".join(reversed(lines)))
    np.testing.assert_array_equal(read_assignment(tmp_path / "shuffled.csv").tiles, record.tiles)


@pytest.mark.parametrize("content, message", [
    (None, "no assignment record at"),
    ("row,col\n0,0\n", "not an assignment record: its header"),
    ("row,col,tile,tile_path,distance,cell_r,cell_g,cell_b\n0,0,x,a.jpg,1,2,3,4\n", "line 2: not a row"),
    ("row,col,tile,tile_path,distance,cell_r,cell_g,cell_b\n", "empty assignment record"),
    ("row,col,tile,tile_path,distance,cell_r,cell_g,cell_b\n0,0,1,a.jpg,1,2,3,4\n1,1,1,a.jpg,1,2,3,4\n",
     "does not cover a 2x2 grid"),
    (b"\x89PNG\r\n\x1a\n\x00\xff", "cannot read assignment record"),
])
def test_bad_records_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "a.assignment.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(MosaicError, match=message):
        read_assignment(path)
