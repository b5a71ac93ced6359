"""Ingest on a Dask bag: tile_bag's records compose as a bag, and index_library computes the same partitions."""
import logging

import numpy as np
import pytest
from dask.utils import key_split
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from pipeline import TileCache, index_library, tile_bag
from pipeline.ingest import scan_library
from pipeline.ingest._index import WAVE_BATCHES
from support.libraries import distinct_copies


def test_tile_bag_is_a_bag_of_per_photo_records_that_composes(small_library, client):
    bag = tile_bag(small_library, tile_size=16, grid=2, batch_size=32)
    assert bag.npartitions == 4  # 125 files in batches of 32: a task each
    records = client.compute(bag).result()
    tiles = [r for r in records if r["failure"] is None]
    failures = sorted((r["path"].rsplit("/", 1)[1], r["failure"]) for r in records if r["failure"])
    assert len(tiles) == 120 and failures == [("empty.jpg", "empty"), ("notes.jpg", "not-an-image")]
    assert tiles[0]["thumbnail"].shape == (16, 16, 3) and tiles[0]["grid_lab"].shape == (2, 2, 3)
    dark = bag.filter(lambda r: r["failure"] is None and r["mean_lab"][0] < 40).pluck("path")
    expected = sorted(r["path"] for r in tiles if r["mean_lab"][0] < 40)
    assert 0 < len(expected) < 120 and sorted(client.compute(dark).result()) == expected
    assert len(bag.take(3, npartitions=1, compute=False).compute(scheduler="sync")) == 3


def test_tile_bag_features_as_a_dataframe(small_library, client):
    bag = tile_bag(small_library, tile_size=16)
    frame = (bag.filter(lambda r: r["failure"] is None)
             .map(lambda r: {"path": r["path"], "L": float(r["mean_lab"][0]), "a": float(r["mean_lab"][1]),
                             "b": float(r["mean_lab"][2])})
             .to_dataframe())
    table = client.compute(frame).result()
    assert len(table) == 120 and list(table.columns) == ["path", "L", "a", "b"]
    assert table["L"].between(0, 100).all()


def test_index_writes_what_the_bag_describes(small_library, tmp_path, client):
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, tile_size=16, grid=2, client=client, progress=False)
    records = {r["path"]: r for r in client.compute(tile_bag(small_library, tile_size=16, grid=2)).result()
               if r["failure"] is None}
    with TileCache.open(cache) as tiles:
        paths = tiles.paths()
        assert sorted(paths) == sorted(records)
        np.testing.assert_array_equal(tiles.thumbnails(np.arange(len(paths))),
                                      np.stack([records[p]["thumbnail"] for p in paths]))
        np.testing.assert_array_equal(tiles.features().grid_lab, np.stack([records[p]["grid_lab"] for p in paths]))
    assert paths == list(records)  # rows in the library's scan order, whichever task finished first


class _MostKnown(SchedulerPlugin):
    """The most index tasks the scheduler knew of at once: all of a run's, or only those in flight."""

    name = "most-known-index-tasks"

    def __init__(self):
        self.known, self.most = set(), 0

    def transition(self, key, start, finish, *args, **kwargs):
        if key_split(key) != "index-batch":
            return
        if finish == "forgotten":
            self.known.discard(key)
        else:
            self.known.add(key)
            self.most = max(self.most, len(self.known))


@pytest.fixture
def watched_client():
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster, set_as_default=False) as client:
        client.register_plugin(_MostKnown())
        yield client


def test_a_small_library_is_one_graph_the_dashboard_shows_whole(small_library, tmp_path, watched_client):
    index_library(small_library, tmp_path / "tiles.h5", batch_size=8, client=watched_client, progress=False)
    most = watched_client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins["most-known-index-tasks"].most)
    assert most == 16  # 125 files in batches of 8, all known at once; a few at a time would be 2 * threads + 2 = 4


class _Waves(SchedulerPlugin):
    """The distinct bags (waves) of index tasks a run submitted, and each task's place in the scan as it finished."""

    name = "index-waves"

    def __init__(self):
        self.bags, self.finished = set(), []

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        if key_split(key) == "index-batch":
            self.bags.add(key[0])
            if finish == "memory":
                self.finished.append(-self.scheduler.tasks[key].annotations["priority"])


def test_a_library_of_several_waves_runs_and_is_written_in_scan_order(demo_photos, tmp_path, client):
    # 1,536 files in batches of 8: 192 tasks, more than one wave (WAVE_BATCHES), so the next wave
    # goes in while results of the last are still being fetched in the background.
    library = distinct_copies(tmp_path / "library", demo_photos, 2)
    client.register_plugin(_Waves())
    index_library(library, tmp_path / "tiles.h5", tile_size=16, batch_size=8, client=client, progress=False)
    waves, finished = client.run_on_scheduler(
        lambda dask_scheduler: (len(dask_scheduler.plugins["index-waves"].bags), dask_scheduler.plugins["index-waves"].finished))
    assert waves >= 2 and 1536 > 8 * WAVE_BATCHES
    # Tasks finish in scan order, but for a straggler now and then. Left to dask's own order a
    # wave ran backwards, its first batch last, and the writer waited for the whole wave.
    assert sorted(finished) == list(range(192))
    displacement = np.abs(np.array(finished) - np.arange(192))
    # Seen in order: median 0-1, 90th percentile 1-2 (a straggler at most 19); a wave run
    # backwards (the priorities inverted): median 48, 90th percentile 108.
    assert np.median(displacement) <= 4 and np.percentile(displacement, 90) <= 16
    with TileCache.open(tmp_path / "tiles.h5") as tiles:
        assert tiles.paths() == [entry.path for entry in scan_library(str(library))]
