"""index + make end to end on a real LocalCluster, with real JPEG photos and real HDF5 files."""
import csv
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from pipeline import MosaicError, TileCache, index_batch, index_library, load_square_thumbnail, make_mosaic
from pipeline._scan import FileEntry


def photo_files(root):
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def test_index_batch_sorts_every_file(small_library):
    files = [FileEntry(p, os.path.getsize(p), 0) for p in photo_files(small_library)]
    batch = index_batch(files, tile_size=16, grid=2)
    reasons = {os.path.basename(e.path): r for e, r, _ in batch.failures}
    assert reasons == {"empty.jpg": "empty", "notes.jpg": "not-an-image"}
    assert batch.ignored == 1  # sidecar.xmp: no image extension, no image signature
    assert len(batch.tiles) == 120 and batch.thumbnails.shape == (120, 16, 16, 3)
    assert batch.features.grid_lab.shape == (120, 2, 2, 3)


def test_index_then_make(small_library, tmp_path, client, demo_target):
    cache_path = tmp_path / "tiles.h5"
    summary = index_library(small_library, cache_path, tile_size=32, client=client, batch_size=16, progress=False)
    assert (summary.added, summary.tiles_in_cache, summary.ignored) == (120, 120, 1)
    assert dict(summary.failures) == {"empty": 1, "not-an-image": 1}

    with TileCache.open(cache_path) as cache:
        paths = cache.paths()
        assert sorted(paths) == [p for p in photo_files(small_library) if p.lower().endswith(".jpg") and "empty" not in p and "notes" not in p]
        assert len(set(paths)) == len(paths)
        assert cache.roots == [str(small_library)]
        # The cached thumbnail is what the photo function makes of that file.
        row = 17
        np.testing.assert_array_equal(cache.thumbnails([row])[0], load_square_thumbnail(paths[row], 32))

    out = tmp_path / "mosaic.png"
    result = make_mosaic(demo_target, cache_path, out, cols=20, tile_px=10, max_uses=10, client=client, progress=False)
    assert (result.rows, result.cols) == (13, 20)  # the target is 1001x648
    with Image.open(out) as im:
        assert im.size == (200, 130)
    with open(result.assignment_csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 260 and {(int(r["row"]), int(r["col"])) for r in rows} == {(r, c) for r in range(13) for c in range(20)}
    assert set(r["tile_path"] for r in rows) <= set(paths)
    uses = np.bincount([int(r["tile"]) for r in rows])
    assert uses.max() <= 10 and result.most_uses == uses.max() and result.distinct_tiles == np.count_nonzero(uses)


def test_mosaic_resembles_its_target(small_library, tmp_path, client, demo_target):
    cache_path = tmp_path / "tiles.h5"
    index_library(small_library, cache_path, client=client, progress=False)
    make_mosaic(demo_target, cache_path, tmp_path / "m.png", cols=24, tile_px=8, client=client, progress=False)
    with Image.open(tmp_path / "m.png") as mosaic, Image.open(demo_target) as target:
        small = lambda im: np.asarray(im.convert("L").resize((24, 15), Image.Resampling.BOX), dtype=float)
        a, b = small(mosaic).ravel(), small(target).ravel()
    # The mosaic's brightness pattern follows the target's, cell for cell.
    assert np.corrcoef(a, b)[0, 1] > 0.8


def test_second_run_adds_only_new_or_changed_files(small_library, tmp_path, client, demo_photos):
    cache_path = tmp_path / "tiles.h5"
    index_library(small_library, cache_path, client=client, progress=False)
    again = index_library(small_library, cache_path, client=client, progress=False)
    assert (again.added, again.replaced, sum(again.failures.values())) == (0, 0, 0)
    assert again.unchanged == again.files_seen - 1  # only the non-image sidecar is looked at again

    changed = sorted((small_library / "album0").glob("*.jpg"))[3]
    with TileCache.open(cache_path) as cache:
        row = cache.paths().index(str(changed))
    shutil.copy(demo_photos[-1], changed)  # different bytes, new size and mtime
    shutil.copy(demo_photos[-2], small_library / "album2" / "new.jpg")
    third = index_library(small_library, cache_path, client=client, progress=False)
    assert (third.added, third.replaced) == (1, 1)
    with TileCache.open(cache_path) as cache:
        assert len(cache) == 121 and cache.paths()[row] == str(changed)
        np.testing.assert_array_equal(cache.thumbnails([row])[0], load_square_thumbnail(str(changed), 64))


def test_cache_built_with_other_settings_is_refused(small_library, tmp_path, client):
    cache_path = tmp_path / "tiles.h5"
    index_library(small_library, cache_path, tile_size=16, client=client, progress=False)
    with pytest.raises(MosaicError, match="tile size 16, not 32"):
        index_library(small_library, cache_path, tile_size=32, client=client, progress=False)
