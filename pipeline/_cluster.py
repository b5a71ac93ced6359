"""Dask glue: the one place that decides which cluster a run uses."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

from distributed import Client, LocalCluster

from ._errors import MosaicError

__all__ = ["dask_client"]


@contextlib.contextmanager
def dask_client(
    client: Client | None = None,
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike | None = None,
    n_workers: int | None = None,
    announce: bool = True,
) -> Iterator[Client]:
    """Yield a Dask client, and close only what this call created.

    Parameters
    ----------
    client : distributed.Client, optional
        Use this client as it is; it is left open.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
    scheduler_file : path, optional
        A scheduler file written by ``dask scheduler --scheduler-file``.
    n_workers : int, optional
        Workers of the LocalCluster started when none of the above is given
        (default: one single-threaded worker process per core).
    announce : bool
        Print the dashboard link to stderr (for a cluster this call connects to or starts).

    Yields
    ------
    distributed.Client
    """
    if client is not None:
        yield client
        return
    if scheduler or scheduler_file:
        where = scheduler or os.fspath(scheduler_file)
        try:
            created = Client(address=scheduler, scheduler_file=scheduler_file, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise MosaicError(f"cannot reach the Dask scheduler at {where}: {exc}") from None
        with created:
            if announce:
                _announce(created)
            yield created
        return
    # Photos are decoded by Pillow and features computed in numpy: one thread per
    # process avoids GIL contention. The nanny also sets OMP_NUM_THREADS=1 per worker.
    cluster = LocalCluster(
        n_workers=n_workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:8787",
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as created:
        if announce:
            _announce(created)
        yield created


def _announce(client: Client) -> None:
    print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
