"""pipeline.dask_client: which cluster a run uses, and that it closes only what it created."""
import logging

import dask.config
import pytest
from distributed import Client, LocalCluster

from pipeline import MosaicError, dask_client


@pytest.fixture
def other_cluster():
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster:
        yield cluster


def test_a_given_client_is_used_and_left_open(other_cluster):
    with Client(other_cluster) as client:
        with dask_client(client=client, scheduler="tcp://127.0.0.1:9") as used:
            assert used is client
        assert client.status == "running" and client.submit(sum, [1, 2]).result() == 3


def test_scheduler_address_setting_is_honoured_and_that_cluster_left_running(other_cluster):
    with dask.config.set({"scheduler-address": other_cluster.scheduler_address}):
        with dask_client(announce=False) as client:
            assert client.scheduler.address == other_cluster.scheduler_address
    with Client(other_cluster) as check:
        assert len(check.scheduler_info()["workers"]) == 1


def test_a_started_local_cluster_is_sized_bound_to_loopback_and_closed(capsys):
    with dask_client(n_workers=1, threads_per_worker=2, dashboard_address="127.0.0.1:0") as client:
        address = client.scheduler.address
        assert list(client.nthreads().values()) == [2]
        assert client.dashboard_link.startswith("http://127.0.0.1:")
        assert address.startswith("tcp://127.0.0.1:")
    assert f"Dask dashboard: {client.dashboard_link}" in capsys.readouterr().err
    with pytest.raises(OSError):
        Client(address, timeout="2s")


def test_performance_report_is_written(tmp_path, client):
    with dask_client(client=client, performance_report=tmp_path / "report.html"):
        assert client.submit(sum, [1, 2, 3]).result() == 6
    assert "Dask Performance Report" in (tmp_path / "report.html").read_text()


def test_unreachable_scheduler_is_a_clear_error():
    with dask.config.set({"mosaic.cluster.connect-timeout": "1s"}):
        with pytest.raises(MosaicError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 \(tried for 1s\)"):
            with dask_client(scheduler="tcp://127.0.0.1:9"):
                pass
