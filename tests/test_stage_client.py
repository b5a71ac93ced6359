"""pipeline.cluster: which cluster a stage runs on, and that a run closes only what it opened."""
import logging

import dask.config
import pytest
from distributed import Client, LocalCluster

from pipeline import MosaicError
from pipeline.cluster import cluster_settings, open_cluster, stage_client


@pytest.fixture
def other_cluster():
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster:
        yield cluster


def test_a_given_client_is_used_and_left_open(other_cluster):
    with Client(other_cluster) as client:
        with dask.config.set({"mosaic.cluster.scheduler": "tcp://127.0.0.1:9"}), stage_client(client) as used:
            assert used is client
        assert client.status == "running" and client.submit(sum, [1, 2]).result() == 3


def test_without_a_client_a_stage_runs_on_dasks_current_client(other_cluster):
    with Client(other_cluster) as current:
        with stage_client(announce=False) as used:
            assert used is current
        assert current.status == "running"


def test_scheduler_address_setting_is_honoured_and_that_cluster_left_running(other_cluster):
    with dask.config.set({"scheduler-address": other_cluster.scheduler_address}):
        with stage_client(announce=False) as client:
            assert client.scheduler.address == other_cluster.scheduler_address
    with Client(other_cluster) as check:
        assert len(check.scheduler_info()["workers"]) == 1


def test_a_started_local_cluster_is_sized_bound_to_loopback_and_closed(capsys):
    with open_cluster(workers=1, threads=2, dashboard_address="127.0.0.1:0") as client:
        address = client.scheduler.address
        assert list(client.nthreads().values()) == [2]
        assert client.dashboard_link.startswith("http://127.0.0.1:")
        assert address.startswith("tcp://127.0.0.1:")
    assert f"Dask dashboard: {client.dashboard_link}" in capsys.readouterr().err
    with pytest.raises(OSError):
        Client(address, timeout="2s")


def test_assembly_without_a_client_runs_threads_in_this_process():
    with dask.config.set({"mosaic.cluster.workers": 2, "mosaic.cluster.dashboard-address": ":0"}), \
            stage_client(assembly=True, announce=False) as client:
        assert list(client.nthreads().values()) == [2]  # one worker, a thread per worker process asked for
        assert client.scheduler.address.startswith("inproc://")


def test_command_line_settings_size_the_local_clusters_stages_start():
    with cluster_settings(workers=1, threads=3, dashboard_address=":0", announce=False) as connected:
        assert connected is None  # nothing to connect to: each stage starts its own
        with stage_client(announce=False) as client:
            assert list(client.nthreads().values()) == [3]


def test_command_line_scheduler_is_connected_once_and_shared_by_the_stages(other_cluster):
    with cluster_settings(scheduler=other_cluster.scheduler_address, announce=False) as connected:
        with stage_client(announce=False) as first, stage_client(assembly=True, announce=False) as second:
            assert first is connected and second is connected
    assert connected.status == "closed"
    with Client(other_cluster) as check:  # the cluster itself keeps running
        assert len(check.scheduler_info()["workers"]) == 1


def test_performance_report_is_written_by_the_outermost_stage(tmp_path, client):
    with dask.config.set({"mosaic.cluster.performance-report": str(tmp_path / "report.html")}):
        with stage_client(client, report_suffix=".assemble"), stage_client(client):
            assert client.submit(sum, [1, 2, 3]).result() == 6
    assert "Dask Performance Report" in (tmp_path / "report.assemble.html").read_text()
    assert not (tmp_path / "report.html").exists()  # the inner stage is part of the outer one's report


def test_unreachable_scheduler_is_a_clear_error():
    with dask.config.set({"mosaic.cluster.connect-timeout": "1s"}):
        with pytest.raises(MosaicError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 \(tried for 1s\)"):
            with open_cluster(scheduler="tcp://127.0.0.1:9"):
                pass
