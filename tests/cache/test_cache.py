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
    with h5py.File(path, "r+") as f:  # a writer killed after growing the data but before the paths
        f["tiles/thumbnails"].resize(2, axis=0)
        f["tiles/mean_lab"].resize(2, axis=0)
    with TileCache.open(path, "r+") as cache:
        assert len(cache) == 1
    with h5py.File(path, "r") as f:  # trimmed in the file, not just hidden
        assert f["tiles/thumbnails"].shape[0] == 1 and f["tiles/mean_lab"].shape[0] == 1


def test_clear_errors(tmp_path):
    with pytest.raises(CacheError, match="no tile cache"):
        TileCache.open(tmp_path / "absent.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(CacheError, match="not a readable tile cache"):
        TileCache.open(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(CacheError, match="not a mosaic tile cache"):
        TileCache.open(tmp_path / "other.h5")
    TileCache.create(tmp_path / "c.h5", 8, 2).close()
    with pytest.raises(CacheError, match="cannot create"):
        TileCache.create(tmp_path / "c.h5", 8, 2)


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
