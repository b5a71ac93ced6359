import h5py
import numpy as np
import pytest

from pipeline import SCHEMA_VERSION, CacheError, TileCache, compute_features


def some_tiles(n, size=8, seed=0):
    thumbs = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return thumbs, compute_features(thumbs, grid=2)


def test_round_trip(tmp_path):
    path = tmp_path / "c.h5"
    thumbs, features = some_tiles(5)
    paths = [f"/photos/{i}.jpg" for i in range(5)]
    with TileCache.create(path, tile_size=8, grid=2) as cache:
        cache.append_tiles(paths[:3], [1, 2, 3], [10, 20, 30], thumbs[:3], type(features)(*(f[:3] for f in features)))
        cache.append_tiles(paths[3:], [4, 5], [40, 50], thumbs[3:], type(features)(*(f[3:] for f in features)))
        cache.append_failures(["/photos/bad.jpg"], [7], [70], ["truncated"], ["image file is truncated"])
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
    with h5py.File(path) as f:  # the schema as documented in the README
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f["tiles/thumbnails"].shape == (5, 8, 8, 3) and f["tiles/thumbnails"].compression == "gzip"
        assert f["tiles/grid_lab"].shape == (5, 2, 2, 3)


def test_replace_overwrites_in_place(tmp_path):
    thumbs, features = some_tiles(3)
    new_thumbs, new_features = some_tiles(1, seed=9)
    with TileCache.create(tmp_path / "c.h5", 8, 2) as cache:
        cache.append_tiles(["a", "b", "c"], [1, 1, 1], [1, 1, 1], thumbs, features)
        cache.replace_tiles([1], [2], [5], new_thumbs, new_features)
        assert len(cache) == 3
        np.testing.assert_array_equal(cache.thumbnails([1])[0], new_thumbs[0])
        assert cache.known_files()["b"].mtime_ns == 5


def test_rows_of_an_interrupted_append_are_discarded(tmp_path):
    path = tmp_path / "c.h5"
    thumbs, features = some_tiles(2)
    with TileCache.create(path, 8, 2) as cache:
        cache.append_tiles(["a"], [1], [1], thumbs[:1], type(features)(*(f[:1] for f in features)))
    with h5py.File(path, "r+") as f:  # a writer killed after growing the data but before the paths
        f["tiles/thumbnails"].resize(2, axis=0)
        f["tiles/mean_lab"].resize(2, axis=0)
    with TileCache.open(path, "r+") as cache:
        assert len(cache) == 1
        assert cache.file["tiles/thumbnails"].shape[0] == 1 and cache.file["tiles/mean_lab"].shape[0] == 1


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
