"""Dask glue: the one place that decides which cluster a run uses, and closes only what it opened.

A stage (index, match, assembly) runs on :func:`stage_client`: the client it was
given; else dask's current client; else a connection to the scheduler the
``mosaic.cluster`` settings (or dask's ``scheduler-address``) name; else a new
LocalCluster, of worker processes, or for assembly of threads in this process.
The command line turns its flags into those settings with :func:`cluster_settings`.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import warnings
from typing import Iterator

import dask.config
import distributed
from distributed import Client, LocalCluster

from .config import config_get
from .errors import MosaicError

__all__ = ["cluster_settings", "open_cluster", "stage_client"]

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


def _not_a_close_timeout(record: logging.LogRecord) -> bool:
    """False for asyncio's report of a timed-out step of distributed's shutdown that nobody awaited.

    A LocalCluster closing on a loaded machine (after a run's error, say) can let a step of its
    close time out; asyncio then prints "Future exception was never retrieved ... TimeoutError:
    Timeout" under the run's one-line error (seen once in five fresh-clone CI runs). The cluster
    is gone either way; other asyncio reports still show.
    """
    exception = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exception, TimeoutError) and record.getMessage().startswith("Future exception was never retrieved"))


logging.getLogger("asyncio").addFilter(_not_a_close_timeout)


@contextlib.contextmanager
def open_cluster(*, scheduler: str | None = None, scheduler_file: str | os.PathLike | None = None,
                 workers: int | None = None, threads: int | None = None, dashboard_address: str | None = None,
                 in_process: bool = False, announce: bool = True) -> Iterator[Client]:
    """Connect to a running scheduler, or start a LocalCluster; close only what was started.

    The first of these decides: ``scheduler``; ``scheduler_file``; the
    ``mosaic.cluster.scheduler`` and ``scheduler-file`` settings; dask's
    ``scheduler-address`` setting (the ``DASK_SCHEDULER_ADDRESS`` environment
    variable); otherwise a new LocalCluster on loopback.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
    scheduler_file : path, optional
        A scheduler file written by ``dask scheduler --scheduler-file``.
    workers, threads : int, optional
        LocalCluster size (default: the ``mosaic.cluster`` settings, one
        single-threaded worker process per core).
    dashboard_address : str, optional
        Where a LocalCluster serves its dashboard (default ``mosaic.cluster.dashboard-address``).
    in_process : bool
        For a new LocalCluster: one worker whose ``workers * threads`` threads
        (one per core by default) run in this process, for work whose results
        are large and needed here (assembly's pixels), which are then handed
        over without being copied between processes.
    announce : bool
        Print the dashboard link to stderr.

    Yields
    ------
    distributed.Client

    Raises
    ------
    MosaicError
        If a named scheduler cannot be reached.
    """
    scheduler = scheduler or config_get("cluster.scheduler")
    _check_tls_settings()
    scheduler_file = scheduler_file or config_get("cluster.scheduler-file")
    address = scheduler or (None if scheduler_file else dask.config.get("scheduler-address", None))
    if address or scheduler_file:
        where = address or os.fspath(scheduler_file)
        timeout = config_get("cluster.connect-timeout")
        try:
            connected = Client(address=address, scheduler_file=scheduler_file and os.fspath(scheduler_file),
                               timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise MosaicError(f"cannot reach the Dask scheduler at {where} (tried for {timeout}): {exc}") from None
        with connected:  # closes the connection, never the cluster
            _announce(connected, announce)
            yield connected
        return
    # Photos are decoded by Pillow and features computed in numpy: one thread per
    # process avoids GIL contention. The nanny also sets OMP_NUM_THREADS=1 per worker.
    # In process, every format's bands compress themselves, so the writer needs little CPU: one thread per core.
    workers = workers or config_get("cluster.workers") or os.cpu_count() or 1
    threads = threads or config_get("cluster.threads")
    # A busy dashboard port moves the dashboard to a free one, which the announced link
    # shows; distributed's four-line warning about it would only break the output.
    with dask.config.set({**WORKER_MALLOC, **QUIET_MONITORING}):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
            cluster = LocalCluster(
                n_workers=1 if in_process else workers,
                threads_per_worker=workers * threads if in_process else threads,
                processes=not in_process,
                host=None if in_process else "127.0.0.1",  # a threaded cluster talks in-process (inproc://)
                dashboard_address=dashboard_address or config_get("cluster.dashboard-address"),
                # Workers log ERROR tracebacks when the scheduler goes first at shutdown (a missed
                # heartbeat); a task's own failure reaches the client as its exception anyway.
                silence_logs=logging.CRITICAL,
            )
        with cluster, Client(cluster) as started:
            _announce(started, announce)
            yield started


def _check_tls_settings() -> None:
    """A configuration that requires TLS must say where the credentials are (before distributed fails deep inside)."""
    if not dask.config.get("distributed.comm.require-encryption", False):
        return
    files = [dask.config.get(f"distributed.comm.tls.{key}", None) for key in ("ca-file", "client.cert")]
    missing = [f for f in files if f and not os.path.exists(f)]
    if None in files or missing:
        what = f"its credentials are missing ({', '.join(missing)})" if missing else "it names no credentials"
        raise MosaicError(f"this Dask configuration requires TLS (distributed.comm.require-encryption), but {what}: "
                          "run cluster-config/make-tls.sh (see the README, \"TLS\")")


def _announce(client: Client, announce: bool) -> None:
    if announce:
        print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)


def _current_client() -> Client | None:
    try:
        return distributed.default_client()
    except ValueError:  # none
        return None


_stage_depth = contextvars.ContextVar("mosaic_stage_depth", default=0)


@contextlib.contextmanager
def stage_client(client: Client | None = None, *, assembly: bool = False, announce: bool = True,
                 report_suffix: str = "") -> Iterator[Client]:
    """The client a stage runs on: ``client``, else dask's current client, else :func:`open_cluster`.

    A cluster opened here is closed at the end of the block; a given or current
    client is left as it is. The outermost stage of a run writes Dask's
    performance report when ``mosaic.cluster.performance-report`` names a file
    (with ``report_suffix`` before its extension).

    Parameters
    ----------
    client : distributed.Client, optional
        Run on this client's cluster.
    assembly : bool
        A LocalCluster started for the stage runs its threads in this process
        (see :func:`open_cluster`'s ``in_process``).
    announce : bool
        Print the dashboard link of a cluster opened here.
    report_suffix : str
        Told apart from the other stages of one run in the performance report's name.
    """
    outermost = _stage_depth.get() == 0
    depth = _stage_depth.set(_stage_depth.get() + 1)
    try:
        with contextlib.ExitStack() as stack:
            client = client or _current_client()
            if client is None:
                client = stack.enter_context(open_cluster(in_process=assembly, announce=announce))
            report = config_get("cluster.performance-report")
            if report and outermost:
                stem, extension = os.path.splitext(os.fspath(report))
                stack.enter_context(client.as_current())  # the report watches dask's current client
                stack.enter_context(distributed.performance_report(filename=f"{stem}{report_suffix}{extension}"))
            yield client
    finally:
        _stage_depth.reset(depth)


@contextlib.contextmanager
def cluster_settings(*, scheduler: str | None = None, scheduler_file: str | None = None, workers: int | None = None,
                     threads: int | None = None, dashboard_address: str | None = None,
                     performance_report: str | None = None, announce: bool = True) -> Iterator[Client | None]:
    """The command line's cluster flags, in force for the block.

    Flags given override the ``mosaic.cluster`` settings. When they, the settings
    or the environment name a running scheduler, it is connected to here, once,
    and every stage in the block runs on that connection (it is dask's current
    client); otherwise each stage starts its own LocalCluster, sized by the flags.

    Yields
    ------
    distributed.Client or None
        The connection, if one was made.
    """
    given = {"scheduler": scheduler, "scheduler-file": scheduler_file, "workers": workers, "threads": threads,
             "dashboard-address": dashboard_address, "performance-report": performance_report}
    with dask.config.set({f"mosaic.cluster.{key}": value for key, value in given.items() if value is not None}):
        remote = config_get("cluster.scheduler") or config_get("cluster.scheduler-file") \
            or dask.config.get("scheduler-address", None)
        if not remote:
            yield None
            return
        with open_cluster(announce=announce) as client:
            yield client
