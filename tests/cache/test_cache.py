import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from pipeline.cache import SCHEMA_VERSION, CacheError, TileCache
from pipeline.features import compute_features


def some_tiles(n, size=8, seed=0):
    thumbs = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return thumbs, compute_features(thumbs, grid=2)


def hashes(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2**63, (n, 2)).astype(np.uint64)


def test_round_trip(tmp_path):
    path = tmp_path / "c.h5"
    thumbs, features = some_tiles(5)
    paths = [f"/photos/{i}.jpg" for i in range(5)]
    with TileCache.create(path, tile_size=8, grid=2) as cache:
        digests = hashes(5)
        cache.append_tiles(paths[:3], [1, 2, 3], [10, 20, 30], thumbs[:3], type(features)(*(f[:3] for f in features)), digests[:3])
        cache.append_tiles(paths[3:], [4, 5], [40, 50], thumbs[3:], type(features)(*(f[3:] for f in features)), digests[3:])
        cache.append_failures(["/photos/bad.jpg"], [7], [70], ["truncated"], ["image file is truncated"])
        cache.append_aliases(["/photos/copy-of-1.jpg"], [2], [25], [1])
        cache.add_root("/photos")
    with TileCache.open(path) as cache:
        assert len(cache) == 5 and cache.tile_size == 8 and cache.grid == 2
        assert cache.paths() == paths
        np.testing.assert_array_equal(cache.thumbnails([4, 0, 4]), thumbs[[4, 0, 4]])
        for got, want in zip(cache.features(), features):
            np.testing.assert_array_equal(got, want)
        assert cache.failures() == [("/photos/bad.jpg", "truncated", "image file is truncated")]
        assert cache.roots == ["/photos"]
        known = cache.known_files()
        assert known["/photos/3.jpg"].row == 3 and known["/photos/3.jpg"].size == 4
        assert known["/photos/bad.jpg"].row == -1 and known["/photos/bad.jpg"].mtime_ns == 70
        assert known["/photos/copy-of-1.jpg"].kind == "alias" and known["/photos/copy-of-1.jpg"].tile_row == 1
        assert cache.aliases() == [("/photos/copy-of-1.jpg", 1)]
        np.testing.assert_array_equal(cache.content_hashes(), digests)
    with h5py.File(path) as f:  # the schema as documented in the README
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f["tiles/thumbnails"].shape == (5, 8, 8, 3) and f["tiles/thumbnails"].compression is None
        assert f["tiles/grid_lab"].shape == (5, 2, 2, 3)


def test_replace_overwrites_in_place(tmp_path):
    thumbs, features = some_tiles(3)
    new_thumbs, new_features = some_tiles(1, seed=9)
    with TileCache.create(tmp_path / "c.h5", 8, 2) as cache:
        cache.append_tiles(["a", "b", "c"], [1, 1, 1], [1, 1, 1], thumbs, features, hashes(3))
        cache.replace_tiles([1], [2], [5], new_thumbs, new_features, hashes(1, seed=9))
        assert len(cache) == 3
        np.testing.assert_array_equal(cache.thumbnails([1])[0], new_thumbs[0])
        assert cache.known_files()["b"].mtime_ns == 5


def test_rows_of_an_interrupted_append_are_discarded(tmp_path):
    path = tmp_path / "c.h5"
    thumbs, features = some_tiles(2)
    with TileCache.create(path, 8, 2) as cache:
        cache.append_tiles(["a"], [1], [1], thumbs[:1], type(features)(*(f[:1] for f in features)), hashes(1))
    with h5py.File(path, "r+") as f:  # a writer killed after writing a row's data, before its commit record
        for name in ("thumbnails", "mean_lab", "path_span"):
            f["tiles"][name].resize(2, axis=0)
        f["tiles/text"].resize(f["tiles/text"].shape[0] + 9, axis=0)
        f["tiles/path_span"][1] = (1, 10)
    with TileCache.open(path) as cache:  # a reader ignores it
        assert len(cache) == 1 and cache.paths() == ["a"]
    with TileCache.open(path, "r+") as cache:
        assert len(cache) == 1
    with h5py.File(path, "r") as f:  # and the next writer trims it from the file, not just hides it
        assert f["tiles/thumbnails"].shape[0] == 1 and f["tiles/path_span"].shape[0] == 1
        assert f["tiles/text"].shape[0] == 1


def test_the_file_has_no_variable_length_data(tmp_path):
    """Variable-length values live in HDF5's global heap, which a kill can leave behind its pointers."""
    thumbs, features = some_tiles(2)
    with TileCache.create(tmp_path / "c.h5", 8, 2) as cache:
        cache.append_tiles(["/p/ä.jpg", "/p/b.jpg"], [1, 1], [1, 1], thumbs, features, hashes(2))
        cache.append_failures(["/p/x.jpg"], [1], [1], ["truncated"], ["image file is truncated"])
        cache.hand_over([0], ["/p/a2.jpg"], [2], [2])
        cache.add_root("/p")
    found = []
    with h5py.File(tmp_path / "c.h5") as f:
        def visit(name, node):
            for key in node.attrs:
                found.append((name, key, h5py.check_vlen_dtype(node.attrs.get_id(key).dtype)))
            if isinstance(node, h5py.Dataset):
                found.append((name, "", h5py.check_vlen_dtype(node.dtype)))
        visit("/", f)
        f.visititems(visit)
    assert found and all(vlen is None for *_, vlen in found), [x for x in found if x[2] is not None]
    with TileCache.open(tmp_path / "c.h5") as cache:
        assert cache.paths() == ["/p/a2.jpg", "/p/b.jpg"] and cache.roots == ["/p"]


def test_clear_errors(tmp_path):
    with pytest.raises(CacheError, match="no tile cache"):
        TileCache.open(tmp_path / "absent.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(CacheError, match=r"text.h5 is not a tile cache \(not an HDF5 file\)"):
        TileCache.open(tmp_path / "text.h5")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(CacheError, match=r"empty.h5 is empty \(0 bytes\)"):
        TileCache.open(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(CacheError, match="not a mosaic tile cache"):
        TileCache.open(tmp_path / "other.h5")
    TileCache.create(tmp_path / "c.h5", 8, 2).close()
    with pytest.raises(CacheError, match="cannot create"):
        TileCache.create(tmp_path / "c.h5", 8, 2)
    (tmp_path / "cut.h5").write_bytes((tmp_path / "c.h5").read_bytes()[:104])
    with pytest.raises(CacheError, match=r"cut.h5 is damaged \(truncated at 104 bytes\): remove it and run the same command again"):
        TileCache.open(tmp_path / "cut.h5", "r+")
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(CacheError, match=f"newer mosaic \\(cache schema v{SCHEMA_VERSION + 1}"):
        TileCache.open(tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        f.attrs["schema_version"] = 2
    with pytest.raises(CacheError, match="cache schema v2, older"):
        TileCache.open(tmp_path / "c.h5")


def test_in_use_is_said_only_while_a_live_writer_holds_the_cache(tmp_path):
    path = tmp_path / "c.h5"
    TileCache.create(path, 8, 2).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(CacheError, match="is in use by another process"):
            TileCache.open(path, "r+")
    finally:
        holder.kill()
        holder.wait()
    with TileCache.open(path, "r+") as cache:  # the killed writer's lock went with it
        assert len(cache) == 0


HOLD_OPEN = """
import sys, time
from pipeline.cache import TileCache
cache = TileCache.open(sys.argv[1], "r+")
print("open", flush=True)
time.sleep(60)
"""


def test_creation_is_atomic_and_clears_what_killed_creations_left(tmp_path):
    path = tmp_path / "c.h5"
    # What a creation killed before its rename leaves: a hidden work file of a dead process.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".c.h5.{socket.gethostname()}.{int(dead.stdout)}.0123abcd.partial"
    leftover.write_bytes(b"\x89HDF\r\n\x1a\n half")
    with TileCache.create(path, 8, 2) as cache:
        assert len(cache) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5"]


def test_check_finds_what_is_wrong(tmp_path):
    path = tmp_path / "c.h5"
    thumbs, features = some_tiles(20)
    with TileCache.create(path, 8, 2) as cache:
        cache.append_tiles([f"/p/{i}.jpg" for i in range(20)], [1] * 20, [1] * 20, thumbs, features, hashes(20))
        cache.append_aliases(["/p/copy.jpg"], [1], [1], [3])
        assert cache.check() == []
    with h5py.File(path, "r+") as f:
        f["tiles/thumbnails"][5] = 255 - f["tiles/thumbnails"][5]  # garbled pixels
    with TileCache.open(path) as cache:
        assert cache.check() == ["1 of 20 sampled thumbnails do not match their features"]
    with h5py.File(path, "r+") as f:
        f["tiles/thumbnails"][5] = thumbs[5]
        f["tiles/path_span"][7] = f["tiles/path_span"][6]  # two rows, one path
        f["aliases/tile"][0] = 99
        f["tiles/mean_lab"][2] = np.nan
    with TileCache.open(path) as cache:
        problems = cache.check()
    assert "1 tiles paths are recorded twice" in problems
    assert "aliases point at tiles that do not exist" in problems
    assert "tiles/mean_lab holds values that are not finite CIELAB colours" in problems


def test_dropped_aliases_and_failures_are_no_longer_live(tmp_path):
    thumbs, features = some_tiles(1)
    with TileCache.create(tmp_path / "c.h5", 8, 2) as cache:
        cache.append_tiles(["/p/a.jpg"], [1], [1], thumbs, features, hashes(1))
        cache.append_aliases(["/p/b.jpg", "/p/c.jpg"], [1, 1], [2, 2], [0, 0])
        cache.append_failures(["/p/d.jpg", "/p/a.jpg"], [3, 4], [3, 4], ["truncated", "corrupt"], ["", ""])
        known = cache.known_files()
        # a.jpg was indexed, then went bad: the failure is what it is now, and it keeps its tile row.
        assert (known["/p/a.jpg"].kind, known["/p/a.jpg"].tile_row) == ("failure", 0)
        cache.drop_records("alias", [0])
        cache.drop_records("failure", [1])
    with TileCache.open(tmp_path / "c.h5") as cache:
        assert cache.aliases() == [("/p/c.jpg", 0)]
        assert cache.failures() == [("/p/d.jpg", "truncated", "")]
        known = cache.known_files()
        assert "/p/b.jpg" not in known and known["/p/a.jpg"].kind == "tile"


def _as_v4(path):
    """Make a cache look as one written before videos: no ``videos`` group, schema v4."""
    with h5py.File(path, "r+") as f:
        del f["videos"]
        f.attrs["schema_version"] = 4


def test_a_v4_cache_is_read_as_is_and_gains_videos_when_written(tmp_path):
    path = tmp_path / "c.h5"
    with TileCache.create(path, tile_size=8, grid=2) as cache:
        cache.append_tiles(["a", "b", "c"], [1, 2, 3], [4, 5, 6], *some_tiles(3), hashes(3))
    _as_v4(path)
    with TileCache.open(path) as cache:  # read-only: left as it is
        assert cache.schema_version == 4 and cache.videos() == {} and cache.check() == [] and len(cache) == 3
    with h5py.File(path, "r+") as f:  # a kill in the middle of an earlier upgrade left half a group
        f.create_group("videos.partial").create_dataset("size", data=np.zeros(3, np.int64))
    with TileCache.open(path, "r+") as cache:
        assert cache.schema_version == SCHEMA_VERSION and cache.videos() == {}
        cache.append_videos(["/v/a.mp4"], [10], [20], [4], [1])
        assert cache.videos()["/v/a.mp4"].frames == 4 and cache.check() == []
    with h5py.File(path, "r") as f:
        assert "videos.partial" not in f and sorted(f) == ["aliases", "failures", "tiles", "videos"]


def test_dropped_videos_are_no_longer_live(tmp_path):
    with TileCache.create(tmp_path / "c.h5", tile_size=8, grid=2) as cache:
        cache.append_videos(["/v/a.mp4", "/v/b.mp4"], [1, 2], [3, 4], [5, 0], [1, 0])
        cache.drop_records("video", [cache.videos()["/v/a.mp4"].index])
        assert list(cache.videos()) == ["/v/b.mp4"]
