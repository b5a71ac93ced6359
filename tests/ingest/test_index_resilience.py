"""index under fire: the client killed, a worker killed, a second writer, all on real clusters and files."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import h5py
import pytest
from distributed import Client, LocalCluster

from support.libraries import distinct_copies
from pipeline import TileCache, index_library

BIN = Path(sys.executable).parent


@pytest.fixture
def library(tmp_path, demo_photos):
    """3,072 distinct real JPEGs: at 16 per task, ~200 tasks and a few seconds of work."""
    return distinct_copies(tmp_path / "library", demo_photos, copies=4)


def content(cache_path) -> dict:
    """What a cache holds, independent of row order: path -> (stat key, features, thumbnail checksum)."""
    with TileCache.open(cache_path) as cache:
        paths = cache.paths()
        assert len(set(paths)) == len(paths), "a path indexed twice"
        features = cache.features()
        with h5py.File(cache_path, "r") as file:  # the file as it is on disk
            sizes = file["tiles/size"][: len(paths)]
        thumbs = cache.thumbnails(np.arange(len(paths))).reshape(len(paths), -1).sum(axis=1)
        tiles = {p: (int(sizes[i]), *(f[i].tobytes() for f in features), int(thumbs[i])) for i, p in enumerate(paths)}
        return {"tiles": tiles, "aliases": sorted(p for p, _ in cache.aliases()), "failures": sorted(cache.failures())}


def start_index(library, cache_path, *extra) -> subprocess.Popen:
    # Its own session, so that the LocalCluster's worker processes can be cleaned up with it.
    return subprocess.Popen([BIN / "mosaic", "index", library, "--cache", cache_path, "--batch-size", "16", "--workers", "2",
                             "--dashboard-address", ":0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_until_written(process: subprocess.Popen, cache_path: Path, at_least: int) -> None:
    """Wait until the cache file has grown to ``at_least`` bytes (a batch's data is written before its commit)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if cache_path.exists() and cache_path.stat().st_size >= at_least:
            return
        time.sleep(0.02)
    pytest.fail(f"the run ended or stalled before writing {at_least} bytes: {process.communicate()}")


def test_sigkill_mid_run_then_the_same_command_finishes_the_clean_content(library, tmp_path, client):
    clean = tmp_path / "clean.h5"
    index_library(library, clean, client=client, progress=False)
    killed = tmp_path / "killed.h5"
    # The file grows when a batch's data is written, before the batch is committed: at 1 MB (the
    # first batch's write) a kill often found no tile committed, five times in a row on a slow
    # machine. At 4 MB some ten batches of 16 are written, of the whole run's ~39 MB, so a kill
    # lands mid-run; a run that still holds none is killed afresh.
    for attempt in range(5):
        killed.unlink(missing_ok=True)
        run = start_index(library, killed)
        try:
            wait_until_written(run, killed, at_least=4_000_000)
            os.kill(run.pid, signal.SIGKILL)  # the client only: it was writing the cache
            run.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # none left if none had started
                os.killpg(run.pid, signal.SIGKILL)  # then its orphaned LocalCluster workers
        with TileCache.open(killed) as cache:  # opens whenever the kill came
            held = len(cache)
        if held > 0:
            break
    assert 0 < held < 3072  # it holds part of the work
    again = subprocess.run([BIN / "mosaic", "index", library, "--cache", killed, "--quiet", "--dashboard-address", ":0"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert content(killed) == content(clean)


def test_a_worker_killed_mid_run_leaves_every_file_indexed_exactly_once(library, tmp_path):
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        victim = sorted(client.scheduler_info()["workers"])[0]
        pid = client.run(os.getpid, workers=[victim])[victim]
        killed = threading.Event()

        def kill_when_busy():
            with Client(cluster.scheduler_address) as watcher:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if watcher.processing().get(victim):
                        time.sleep(0.5)  # well into the run
                        os.kill(pid, signal.SIGKILL)
                        killed.set()
                        return
                    time.sleep(0.01)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        summary = index_library(library, tmp_path / "tiles.h5", client=client, batch_size=16, progress=False)
        killer.join()
        assert killed.is_set(), "the worker was never killed"
        assert victim not in client.scheduler_info()["workers"]  # the nanny started a new process
    assert summary.added == 3072 and not summary.failures
    with TileCache.open(tmp_path / "tiles.h5") as cache:
        paths = cache.paths()
    assert len(paths) == len(set(paths)) == 3072
    assert set(paths) == {str(p) for p in library.rglob("*.jpg")}


def test_a_second_index_on_a_cache_being_written_is_refused_and_harms_nothing(library, tmp_path, client):
    cache_path = tmp_path / "tiles.h5"
    first = start_index(library, cache_path, "--quiet")
    try:
        wait_until_written(first, cache_path, at_least=200_000)
        second = subprocess.run([BIN / "mosaic", "index", library, "--cache", cache_path, "--quiet"],
                                capture_output=True, text=True, timeout=60)
        assert first.poll() is None, "the first run ended before the second tried"
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr.count("\n") == 1 and "in use by another process" in second.stderr, second.stderr
    assert first.returncode == 0 and "3072 added" in out, err
    clean = tmp_path / "clean.h5"
    index_library(library, clean, client=client, progress=False)
    assert content(cache_path) == content(clean)
