"""index + make end to end on a real LocalCluster, with real JPEG photos and real HDF5 files."""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline import MosaicError, ReuseRule, TileCache, index_library, make_mosaic, read_assignment, render_mosaic
from pipeline.ingest import FileEntry, index_batch
from pipeline.photo import load_thumbnail


def photo_files(root):
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def test_index_batch_sorts_every_file(small_library):
    files = [FileEntry(p, os.path.getsize(p), 0) for p in photo_files(small_library)]
    batch = index_batch(files, thumbnail=16, grid=2)
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
        paths, grid = cache.paths(), cache.grid
        assert sorted(paths) == [p for p in photo_files(small_library) if p.lower().endswith(".jpg") and "empty" not in p and "notes" not in p]
        assert len(set(paths)) == len(paths)
        assert cache.roots == [str(small_library)]
        # The cached thumbnail is what the photo function makes of that file.
        row = 17
        np.testing.assert_array_equal(cache.thumbnails([row])[0], load_thumbnail(paths[row], 32))

    out = tmp_path / "mosaic.png"
    result = make_mosaic(demo_target, cache_path, out, cols=20, tile_px=10, rule=ReuseRule(10), client=client, progress=False)
    assert (result.rows, result.cols) == (13, 20)  # the target is 1001x648
    with Image.open(out) as im:
        assert im.size == (200, 130)
    with open(result.assignment_csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 260 and {(int(r["row"]), int(r["col"])) for r in rows} == {(r, c) for r in range(13) for c in range(20)}
    assert set(r["tile_path"] for r in rows) <= set(paths)
    uses = np.bincount([int(r["tile"]) for r in rows])
    assert uses.max() <= 10 and result.most_uses == uses.max() and result.distinct_tiles == np.count_nonzero(uses)
    with open(result.quality) as f:
        quality = json.load(f)  # the match quality, written beside the mosaic
    assert (quality["most_uses"], quality["distinct_tiles"], quality["cells"]) == (uses.max(), np.count_nonzero(uses), 260)
    assert quality["mean_distance"] == pytest.approx(np.mean([float(r["distance"]) for r in rows]), rel=1e-4)
    assert f"{grid}x{grid} CIELAB grid" in quality["distance"] and quality["rule"]["max_uses"] == 10
    assert f"RMS over each cell's {grid}x{grid} blocks" in str(result)


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
        np.testing.assert_array_equal(cache.thumbnails([row])[0], load_thumbnail(str(changed), 64))


def test_cache_built_with_other_settings_is_refused(small_library, tmp_path, client):
    cache_path = tmp_path / "tiles.h5"
    index_library(small_library, cache_path, tile_size=16, client=client, progress=False)
    with pytest.raises(MosaicError, match="tile size 16, not 32"):
        index_library(small_library, cache_path, tile_size=32, client=client, progress=False)


def test_copies_become_aliases_and_prune_forgets_what_is_gone(small_library, tmp_path, client, demo_photos):
    cache_path = tmp_path / "tiles.h5"
    original = sorted((small_library / "album1").glob("*.jpg"))[0]
    copy = small_library / "album2" / "same-bytes.jpg"
    shutil.copy(original, copy)
    first = index_library(small_library, cache_path, client=client, progress=False)
    assert (first.added, first.aliases) == (120, 1)
    with TileCache.open(cache_path) as cache:
        paths = cache.paths()
        assert str(copy) not in paths and cache.aliases() == [(str(copy), paths.index(str(original)))]
        gone = sorted((small_library / "album0").glob("*.jpg"))[5]
        kept_row_features = {p: f for p, f in zip(paths, cache.features().mean_lab)}

    gone.unlink()
    original.unlink()  # its copy remains: the tile must survive under the copy's path
    (small_library / "album0" / "empty.jpg").unlink()
    pruned = index_library(small_library, cache_path, client=client, progress=False, prune=True)
    assert pruned.pruned == 1
    with TileCache.open(cache_path) as cache:
        paths = cache.paths()
        assert len(paths) == 119 and str(gone) not in paths and str(original) not in paths and str(copy) in paths
        assert cache.aliases() == []
        assert [os.path.basename(p) for p, _, _ in cache.failures()] == ["notes.jpg"]
        for path, mean in zip(paths, cache.features().mean_lab):  # rows moved, features moved with them
            np.testing.assert_array_equal(mean, kept_row_features[str(original) if path == str(copy) else path])
        np.testing.assert_array_equal(cache.thumbnails([paths.index(str(copy))])[0], load_thumbnail(str(copy), 64))


def test_a_fixed_file_loses_its_failure_and_a_broken_one_keeps_its_tile_until_pruned(small_library, tmp_path, client, demo_photos):
    cache_path = tmp_path / "tiles.h5"
    index_library(small_library, cache_path, client=client, progress=False)
    broken = sorted((small_library / "album1").glob("*.jpg"))[2]
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])  # truncated
    shutil.copy(demo_photos[1], small_library / "album0" / "notes.jpg")  # the text file becomes a photo
    second = index_library(small_library, cache_path, client=client, progress=False)
    assert dict(second.failures) == {"truncated": 1} and second.added == 1, second
    with TileCache.open(cache_path) as cache:
        failures = {os.path.basename(p): r for p, r, _ in cache.failures()}
        assert failures == {"empty.jpg": "empty", broken.name: "truncated"}
        assert str(broken) in cache.paths()  # the photo as it was, until --prune
    third = index_library(small_library, cache_path, client=client, progress=False, prune=True)
    assert third.unchanged == third.files_seen - 1 and third.pruned == 1
    with TileCache.open(cache_path) as cache:
        assert str(broken) not in cache.paths() and len(cache) == 120


def test_min_size_and_vanished_files_are_recorded(tmp_path, demo_photos):
    Image.new("RGB", (600, 20), (1, 2, 3)).save(tmp_path / "strip.jpg")
    shutil.copy(demo_photos[0], tmp_path / "ok.jpg")
    files = [FileEntry(str(tmp_path / n), 1, 0) for n in ("strip.jpg", "ok.jpg", "vanished.jpg")]
    batch = index_batch(files, thumbnail=16, grid=2, min_size=32)
    assert {os.path.basename(e.path): r for e, r, _ in batch.failures} == {"strip.jpg": "too-small", "vanished.jpg": "missing"}
    assert [os.path.basename(e.path) for e in batch.tiles] == ["ok.jpg"]
    assert batch.content_hashes.shape == (1, 2) and batch.content_hashes.dtype == np.uint64


def test_unreadable_files_folders_and_link_loops_are_skipped_with_a_reason(tmp_path, demo_photos):
    root = tmp_path / "lib"
    (root / "locked").mkdir(parents=True)
    shutil.copy(demo_photos[0], root / "locked" / "inside.jpg")
    shutil.copy(demo_photos[1], root / "secret.jpg")
    shutil.copy(demo_photos[2], root / "fine.jpg")
    (root / "loop").symlink_to(root)  # a folder link back to the top
    (root / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.chmod(root / "locked", 0)
    os.chmod(root / "secret.jpg", 0)
    script = (
        "import sys, os; from pipeline.ingest import index_batch, scan_library\n"
        "problems = []; files = list(scan_library(sys.argv[1], problems))\n"
        "batch = index_batch(files, 16, 2)\n"
        "for p in problems: print('scan', os.path.basename(p.path), p.reason)\n"
        "for e, r, _ in batch.failures: print('file', os.path.basename(e.path), r)\n"
        "for e in batch.tiles: print('tile', os.path.basename(e.path))\n"
    )
    # Root reads anything: as root, look from a new user namespace, where root's override of
    # file permissions no longer applies (util-linux's unshare, installed by .ci/run).
    prefix = ["unshare", "--user"] if os.getuid() == 0 else []
    out = subprocess.run([*prefix, sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = set(out.stdout.splitlines())
    assert lines == {"scan locked unreadable", "scan dangling.jpg missing", "file secret.jpg unreadable", "tile fine.jpg"}


def test_when_a_tile_changes_its_aliases_are_indexed_anew(small_library, tmp_path, client, demo_photos):
    cache_path = tmp_path / "tiles.h5"
    original = sorted((small_library / "album1").glob("*.jpg"))[0]
    copy = small_library / "album2" / "same-bytes.jpg"
    shutil.copy(original, copy)
    index_library(small_library, cache_path, client=client, progress=False)
    shutil.copy(demo_photos[-1], original)  # the tile's file now shows another photo
    second = index_library(small_library, cache_path, client=client, progress=False)
    assert second.replaced == 1
    with TileCache.open(cache_path) as cache:
        assert cache.aliases() == []  # the copy no longer has the bytes of any tile
    third = index_library(small_library, cache_path, client=client, progress=False)
    assert third.added == 1
    with TileCache.open(cache_path) as cache:
        paths = cache.paths()
        np.testing.assert_array_equal(cache.thumbnails([paths.index(str(copy))])[0], load_thumbnail(str(copy), 64))
        np.testing.assert_array_equal(cache.thumbnails([paths.index(str(original))])[0], load_thumbnail(str(original), 64))


def test_a_lower_min_size_takes_effect_on_unchanged_files(tmp_path, client, demo_photos):
    library = tmp_path / "lib"
    library.mkdir()
    shutil.copy(demo_photos[0], library / "photo.jpg")
    Image.fromarray(np.full((20, 300, 3), 90, np.uint8)).save(library / "strip.jpg")
    first = index_library(library, tmp_path / "c.h5", client=client, progress=False, min_size=32)
    assert dict(first.failures) == {"too-small": 1} and first.added == 1
    again = index_library(library, tmp_path / "c.h5", client=client, progress=False, min_size=32)
    assert dict(again.failures) == {"too-small": 1} and again.added == 0  # looked at again, same verdict
    lower = index_library(library, tmp_path / "c.h5", client=client, progress=False, min_size=16)
    assert lower.added == 1 and not lower.failures
    with TileCache.open(tmp_path / "c.h5") as cache:
        assert len(cache) == 2 and cache.failures() == []


def test_a_smart_crop_cache_cuts_each_photo_around_its_subject_and_keeps_to_it(tmp_path, client, demo_photos):
    # Wide frames: a real photo at one end, a plain sky at the other; the centre square would be mostly sky.
    library = tmp_path / "wide"
    library.mkdir()
    subjects = []
    for i, photo in enumerate(demo_photos[:6]):
        with Image.open(photo) as image:
            subject = np.asarray(image.convert("RGB").resize((96, 96)))
        sky = np.full((96, 192, 3), (90, 140, 200), np.uint8)
        Image.fromarray(np.concatenate([subject, sky] if i % 2 else [sky, subject], axis=1)).save(library / f"{i}.png")
        subjects.append(subject)
    smart, centre = tmp_path / "smart.h5", tmp_path / "centre.h5"
    index_library(library, smart, tile_size=16, crop="smart", client=client, progress=False)
    index_library(library, centre, tile_size=16, client=client, progress=False)
    sky = np.array([90, 140, 200])
    with TileCache.open(smart) as s, TileCache.open(centre) as c:
        assert (s.crop, c.crop) == ("smart", "centre")
        assert [os.path.basename(p) for p in s.paths()] == [os.path.basename(p) for p in c.paths()]
        smart_sky = [np.abs(t.astype(int) - sky).mean() for t in s.thumbnails(np.arange(6))]
        centre_sky = [np.abs(t.astype(int) - sky).mean() for t in c.thumbnails(np.arange(6))]
    assert min(smart_sky) > 2 * max(centre_sky), (smart_sky, centre_sky)  # every smart tile is the photo, not sky
    with pytest.raises(MosaicError, match="was built with crop smart, not centre"):
        index_library(library, smart, crop="centre", client=client, progress=False)
    # Re-reading the originals cuts them as the cache did.
    made = make_mosaic(demo_photos[0], smart, tmp_path / "m.png", cols=3, rows=2, tile_px=16, correct=0.0,
                       rule=ReuseRule.unique(), report=False, client=client, progress=False)
    record = read_assignment(made.assignment_npz)
    render_mosaic(made.assignment_npz, smart, tmp_path / "sharp.png", tile_px=24, from_originals=True, client=client,
                  progress=False)
    sharp = np.asarray(Image.open(tmp_path / "sharp.png"))
    for (r, c), row in np.ndenumerate(record.tiles):
        expected = load_thumbnail(record.tile_paths[int(row)], 24, crop="smart")
        np.testing.assert_array_equal(sharp[r * 24:(r + 1) * 24, c * 24:(c + 1) * 24], expected)
