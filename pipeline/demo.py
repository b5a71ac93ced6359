"""`mosaic demo`: bundled real photos -> tile cache -> a mosaic of a bundled target photo."""
from __future__ import annotations

import os
import sys
import tempfile
from importlib.resources import as_file, files

from distributed import Client

from ._cluster import dask_client
from .index import index_library
from .make import MosaicSummary, make_mosaic

__all__ = ["run_demo"]


def run_demo(
    out_dir: str | os.PathLike = "mosaic-demo",
    *,
    cols: int = 64,
    tile_px: int = 24,
    progress: bool = True,
    client: Client | None = None,
    **cluster_options,
) -> MosaicSummary:
    """Index the bundled demo photos into a temporary cache and make a mosaic of the bundled target.

    Writes ``demo-mosaic.jpg`` and its assignment CSV into ``out_dir``. ``client`` and
    ``cluster_options`` choose the cluster as in :func:`pipeline.dask_client`.
    """
    os.makedirs(out_dir, exist_ok=True)
    demo_data = files("pipeline") / "data" / "demo"
    with as_file(demo_data) as data, tempfile.TemporaryDirectory(prefix="mosaic-demo-") as scratch:
        with dask_client(client, announce=progress, **cluster_options) as dask:
            cache = os.path.join(scratch, "demo-tiles.h5")
            summary = index_library(data / "library", cache, client=dask, progress=progress)
            if progress:
                print(summary, file=sys.stderr)
            return make_mosaic(
                data / "target.jpg", cache, os.path.join(out_dir, "demo-mosaic.jpg"),
                cols=cols, tile_px=tile_px, client=dask, progress=progress,
            )
