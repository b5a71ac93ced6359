"""Dask glue: the one place that decides which cluster a run uses."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

import dask.config
import distributed
from distributed import Client, LocalCluster

from ._config import config_get
from ._errors import MosaicError

__all__ = ["dask_client"]

# distributed sets MALLOC_TRIM_THRESHOLD_=65536 in every worker, and setting any malloc
# threshold stops glibc from raising its mmap threshold: each ~1 MB numpy temporary is
# then mmapped and unmapped, page faults and all, which made index's workers 25 % slower
# than the same code in a plain process (tests/benchmarks/bench_ingest.py). Large
# thresholds keep freed memory for reuse; workers hold at most 64 MiB of it.
WORKER_MALLOC = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 64 * 2**20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 16 * 2**20,
}

# An idle LocalCluster of two workers used ~5 % of a 2-core laptop with distributed's
# defaults: the statistical profiler samples every 10 ms, the system monitor and the
# memory monitor poll several times a second, the event loop ticks every 20 ms. These
# intervals keep the dashboard's profile, memory and CPU plots useful at about a sixth
# of that overhead (measured with two idle workers over 10 s).
QUIET_MONITORING = {
    "distributed.worker.profile.interval": "100ms",
    "distributed.admin.system-monitor.interval": "1s",
    "distributed.admin.tick.interval": "200ms",
    "distributed.worker.memory.monitor-interval": "500ms",
}


@contextlib.contextmanager
def dask_client(
    client: Client | None = None,
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    dashboard_address: str | None = None,
    performance_report: str | os.PathLike | None = None,
    announce: bool = True,
    processes: bool = True,
) -> Iterator[Client]:
    """Yield a Dask client, and close only what this call created.

    The first of these that is given decides: ``client``; ``scheduler``;
    ``scheduler_file``; the ``scheduler-address`` dask setting (for example from
    the ``DASK_SCHEDULER_ADDRESS`` environment variable); otherwise a new
    LocalCluster sized by the arguments or the ``mosaic.cluster`` settings.

    Parameters
    ----------
    client : distributed.Client, optional
        Use this client as it is; it is left open.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
    scheduler_file : path, optional
        A scheduler file written by ``dask scheduler --scheduler-file``.
    n_workers, threads_per_worker : int, optional
        LocalCluster size (default: one single-threaded worker process per core).
    dashboard_address : str, optional
        Where a LocalCluster serves its dashboard (default ``127.0.0.1:8787``).
    performance_report : path, optional
        Write Dask's performance report of everything run inside the block here (HTML).
    announce : bool
        Print the dashboard link to stderr (for a cluster this call connects to or starts).
    processes : bool
        For a new LocalCluster: worker processes (the default), or one worker
        whose ``n_workers * threads_per_worker`` threads run in this process,
        for work whose results are large and needed here (assembly's pixels):
        they are then handed over without being copied between processes.

    Yields
    ------
    distributed.Client
    """
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(_connect_or_start(scheduler, scheduler_file, n_workers, threads_per_worker,
                                                           dashboard_address, processes))
            if announce:
                print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
        if performance_report is not None:
            stack.enter_context(distributed.performance_report(filename=os.fspath(performance_report)))
        yield client


@contextlib.contextmanager
def _connect_or_start(scheduler, scheduler_file, n_workers, threads_per_worker, dashboard_address,
                      processes) -> Iterator[Client]:
    address = scheduler or (None if scheduler_file else dask.config.get("scheduler-address", None))
    if address or scheduler_file:
        where = address or os.fspath(scheduler_file)
        timeout = config_get("cluster.connect-timeout")
        try:
            connected = Client(address=address, scheduler_file=scheduler_file, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise MosaicError(f"cannot reach the Dask scheduler at {where} (tried for {timeout}): {exc}") from None
        with connected:  # closes the connection, never the cluster
            yield connected
        return
    # Photos are decoded by Pillow and features computed in numpy: one thread per
    # process avoids GIL contention. The nanny also sets OMP_NUM_THREADS=1 per worker.
    workers = n_workers or config_get("cluster.workers") or os.cpu_count() or 1
    threads = threads_per_worker or config_get("cluster.threads")
    with dask.config.set({**WORKER_MALLOC, **QUIET_MONITORING}), LocalCluster(
        n_workers=workers if processes else 1,
        threads_per_worker=threads if processes else workers * threads,
        processes=processes,
        host="127.0.0.1" if processes else None,  # a threaded cluster talks in-process (inproc://)
        dashboard_address=dashboard_address or config_get("cluster.dashboard-address"),
        silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as started:
        yield started
