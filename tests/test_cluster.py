"""index + make through real `dask scheduler` and `dask worker` processes on 127.0.0.1."""
from __future__ import annotations

import contextlib
import json
import socket
import ssl
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from distributed import Client
from distributed.security import Security
from PIL import Image

from support.browser import drawn_fraction, screenshot
from support.libraries import distinct_copies

BIN = Path(sys.executable).parent
CLUSTER_CONFIG = Path(__file__).parents[1] / "cluster-config"


def member(credentials: Path) -> Security:
    """What a holder of the cluster's certificate connects with."""
    return Security(tls_ca_file=str(credentials / "ca.pem"), tls_client_cert=str(credentials / "node.pem"),
                    tls_client_key=str(credentials / "node-key.pem"), require_encryption=True)


def assert_refused_without_the_certificate(address: str, credentials: Path) -> None:
    """A client with no certificate, one with a certificate of another CA, and plain TCP are all turned away."""
    port = address.rsplit(":", 1)[1]
    stranger = credentials.parent / "stranger"
    subprocess.run(["bash", CLUSTER_CONFIG / "make-tls.sh", stranger], check=True, capture_output=True)
    # No certificate: distributed will not even build such a client, so speak TLS directly.
    context = ssl.create_default_context(cafile=str(credentials / "ca.pem"))
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"\0" * 8)
                assert tls.recv(1) != b"", "the scheduler answered a client without a certificate"
                pytest.fail("a client without a certificate was let in")
    attempts = {
        "another CA's certificate": dict(address=address, security=Security(
            tls_ca_file=str(credentials / "ca.pem"), tls_client_cert=str(stranger / "node.pem"),
            tls_client_key=str(stranger / "node-key.pem"), require_encryption=True)),
        "plain TCP": dict(address=f"tcp://127.0.0.1:{port}", security=Security()),
    }
    for what, options in attempts.items():
        with pytest.raises((OSError, TimeoutError)):
            Client(**options, timeout="3s")
            pytest.fail(f"a client with {what} was let in")


@contextlib.contextmanager
def dask_processes(folder: Path, env: dict, worker_prefix: tuple = (), security: Security | None = None):
    """Start a scheduler and two single-threaded workers; yield the scheduler file's contents."""
    scheduler_file = folder / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    processes = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--dashboard-address", "127.0.0.1:0", "--scheduler-file", scheduler_file], **quiet)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), "the scheduler did not start"
        for i in range(2):
            processes.append(subprocess.Popen([*worker_prefix, str(BIN / "dask"), "worker", "--scheduler-file", str(scheduler_file),
                                               "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", "--name", f"test-worker-{i}"], **quiet))
        with Client(scheduler_file=str(scheduler_file), timeout="30s", security=security) as client:
            client.wait_for_workers(2, timeout=60)
        yield json.loads(scheduler_file.read_text())
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_config_folder_cluster_with_dashboard_while_running(tmp_path, demo_photos, demo_target, cluster_config,
                                                            tls_credentials):
    """cluster-config/ as shipped: TLS only (credentials by make-tls.sh), index and make through it."""
    env = {**os.environ, "DASK_CONFIG": str(cluster_config)}
    library = distinct_copies(tmp_path / "library", demo_photos, copies=24)  # 18,432 real JPEGs: ~10 s, longer than a screenshot under load
    with dask_processes(tmp_path, env, security=member(tls_credentials)) as info:
        address, dashboard = info["address"], f"http://127.0.0.1:{info['services']['dashboard']}/status"
        assert address.startswith("tls://127.0.0.1:")
        assert_refused_without_the_certificate(address, tls_credentials)
        client_env = {**env, "DASK_SCHEDULER_ADDRESS": address}  # found without any flag
        index = subprocess.Popen([BIN / "mosaic", "index", library, "--cache", tmp_path / "photos.h5", "--batch-size", "16"],
                                 env=client_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with Client(address, security=member(tls_credentials)) as client:  # wait until the run is under way
            deadline = time.monotonic() + 60
            while not any(client.processing().values()) and time.monotonic() < deadline:
                time.sleep(0.05)
        with urllib.request.urlopen(dashboard, timeout=10) as response:
            assert response.status == 200 and b"Dask" in response.read()
        canvases = screenshot(dashboard, tmp_path / "status.png", wait_for="canvas")
        assert index.poll() is None, "the run ended before the dashboard was looked at"
        out, err = index.communicate(timeout=300)
        assert index.returncode == 0, err
        assert "18432 added" in out and f"Dask dashboard: http://127.0.0.1:{info['services']['dashboard']}/status" in err
        assert canvases >= 5
        assert drawn_fraction(tmp_path / "status.png", top=60) > 0.05  # plots drawn, not an empty page

        report = tmp_path / "make-report.html"
        make = subprocess.run([BIN / "mosaic", "make", demo_target, "--cache", tmp_path / "photos.h5", "--out", tmp_path / "m.jpg",
                               "--tile-px", "8", "--max-uses", "3", "--performance-report", report],
                              env={**client_env, "DASK_MOSAIC__MAKE__COLS": "120"}, capture_output=True, text=True, timeout=300)
        assert make.returncode == 0, make.stderr
        with Image.open(tmp_path / "m.jpg") as im:
            assert im.size == (120 * 8, 78 * 8)  # cols from the DASK_MOSAIC__MAKE__COLS setting
        assert "Dask Performance Report" in report.read_text()
        assert "Dask Performance Report" in (tmp_path / "make-report.assemble.html").read_text()
        with Client(address, security=member(tls_credentials)) as client:
            # Scheduler and workers read cluster-config/ too, and both workers ran tasks.
            assert client.run_on_scheduler(lambda: __import__("dask").config.get("distributed.scheduler.allowed-failures")) == 5
            settings = client.run(lambda: __import__("dask").config.get("distributed.scheduler.allowed-failures"))
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        assert list(settings.values()) == [5, 5]
        assert all(n >= 10 for n in executed.values()), executed


def test_scheduler_file_and_address_flags(tmp_path, small_library, demo_target):
    with dask_processes(tmp_path, dict(os.environ)) as info:
        cache = tmp_path / "photos.h5"
        index = subprocess.run([BIN / "mosaic", "index", small_library, "--cache", cache, "--scheduler-file", tmp_path / "scheduler.json",
                                "--batch-size", "10"], capture_output=True, text=True, timeout=300)
        assert index.returncode == 0, index.stderr
        assert "120 added" in index.stdout
        make = subprocess.run([BIN / "mosaic", "make", demo_target, "--cache", cache, "--out", tmp_path / "m.png",
                               "--scheduler", info["address"], "--cols", "100", "--tile-px", "8", "--max-uses", "60"],
                              capture_output=True, text=True, timeout=300)
        assert make.returncode == 0, make.stderr
        with Image.open(tmp_path / "m.png") as im:
            assert im.size == (800, 65 * 8)
        with Client(info["address"]) as client:
            assert sorted(client.run(lambda dask_worker: dask_worker.name).values()) == ["test-worker-0", "test-worker-1"]
            # The cluster outlives the runs: the CLI closes only what it created.
            assert len(client.scheduler_info()["workers"]) == 2


def test_workers_that_cannot_see_the_library(tmp_path, small_library):
    # The workers run in their own mount namespace, where an empty tmpfs hides the library
    # the client scanned: the situation of a cluster node without the shared mount.
    hide = ("unshare", "--mount", "sh", "-c", f'mount -t tmpfs none "{small_library}" && exec "$0" "$@"')
    with dask_processes(tmp_path, dict(os.environ), worker_prefix=hide) as info:
        cache = tmp_path / "photos.h5"
        index = subprocess.run([BIN / "mosaic", "index", small_library, "--cache", cache, "--scheduler", info["address"]],
                               capture_output=True, text=True, timeout=300)
        assert index.returncode == 0, index.stderr
        assert "0 added" in index.stdout and "failed: 122 missing" in index.stdout  # 120 photos, empty.jpg, notes.jpg
        listing = subprocess.run([BIN / "mosaic", "info", cache, "--failures"], capture_output=True, text=True).stdout
        lines = [line for line in listing.splitlines() if line.startswith("  missing\t")]
        assert len(lines) == 122 and all("on worker tcp://127.0.0.1:" in line for line in lines)


def test_a_timed_out_close_step_nobody_awaited_is_not_printed_under_the_error(tmp_path):
    # A LocalCluster closing on a loaded machine can leave a timed-out future unretrieved; asyncio's
    # report of it printed three lines under `make`'s one-line disk-full error in a CI run. Other
    # unretrieved exceptions are still reported.
    script = tmp_path / "unretrieved.py"
    script.write_text(
        "import asyncio, gc\n"
        "import pipeline.cluster\n"
        "async def main():\n"
        "    loop = asyncio.get_running_loop()\n"
        "    for exc in (TimeoutError('Timeout'), ValueError('kept')):\n"
        "        future = loop.create_future(); future.set_exception(exc); del future\n"
        "    gc.collect()\n"
        "asyncio.run(main())\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert "TimeoutError" not in result.stderr, result.stderr
    assert "Future exception was never retrieved" in result.stderr and "ValueError: kept" in result.stderr
