"""index + make through a real `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client
from PIL import Image

BIN = Path(sys.executable).parent


@pytest.fixture
def scheduler_file(tmp_path):
    path = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen(
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
         "--scheduler-file", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    processes = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert path.exists(), "the scheduler did not start"
        for i in range(2):
            processes.append(subprocess.Popen(
                [BIN / "dask", "worker", "--scheduler-file", path, "--nthreads", "1", "--host", "127.0.0.1",
                 "--no-dashboard", "--name", f"test-worker-{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        with Client(scheduler_file=str(path), timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield path
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_index_and_make_on_scheduler_and_two_workers(scheduler_file, small_library, tmp_path, demo_target):
    address = json.loads(scheduler_file.read_text())["address"]
    cache, out = tmp_path / "photos.h5", tmp_path / "mosaic.jpg"
    index = subprocess.run([BIN / "mosaic", "index", small_library, "--cache", cache, "--scheduler-file", scheduler_file,
                            "--batch-size", "10"], capture_output=True, text=True, timeout=300)
    assert index.returncode == 0, index.stderr
    assert "120 added" in index.stdout and "Dask dashboard: http://127.0.0.1:" in index.stderr
    make = subprocess.run([BIN / "mosaic", "make", demo_target, "--cache", cache, "--out", out, "--scheduler", address,
                           "--cols", "100", "--tile-px", "8", "--max-uses", "60"], capture_output=True, text=True, timeout=300)
    assert make.returncode == 0, make.stderr
    with Image.open(out) as im:
        assert im.size == (800, 65 * 8)
    with Client(address) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        names = client.run(lambda dask_worker: dask_worker.name)
    # Both external workers did real work: 12 index batches plus the partitioned KD-tree queries.
    assert sorted(names.values()) == ["test-worker-0", "test-worker-1"]
    assert all(n >= 2 for n in executed.values()), executed
    assert sum(executed.values()) >= 12 + 2
