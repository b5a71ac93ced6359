"""`mosaic demo`: bundled real photos -> tile cache -> a mosaic of a bundled target photo."""
from __future__ import annotations

import os
import sys
import tempfile
from importlib.resources import as_file, files

from distributed import Client

from .cluster import stage_client
from .config import or_config
from .ingest import index_library
from .make import MosaicSummary, make_mosaic

__all__ = ["run_demo"]


def run_demo(
    out_dir: str | os.PathLike = "mosaic-demo",
    *,
    cols: int | None = None,
    tile_px: int | None = None,
    progress: bool = True,
    client: Client | None = None,
) -> MosaicSummary:
    """Index the bundled demo photos into a temporary cache and make a mosaic of the bundled target.

    Writes ``demo-mosaic.jpg`` and its assignment record into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Where the mosaic goes (created if missing).
    cols, tile_px : int, optional
        Cells across and tile side (defaults ``mosaic.demo.cols`` and ``tile-px``).
    progress : bool
        Print the dashboard link and progress to stderr.
    client : distributed.Client, optional
        Run on this client's cluster (default: dask's current client, else one
        LocalCluster for the whole demo).
    """
    os.makedirs(out_dir, exist_ok=True)
    demo_data = files("pipeline") / "data" / "demo"
    with as_file(demo_data) as data, tempfile.TemporaryDirectory(prefix="mosaic-demo-") as scratch:
        with stage_client(client, announce=progress) as dask:
            cache = os.path.join(scratch, "demo-tiles.h5")
            summary = index_library(data / "library", cache, client=dask, progress=progress)
            if progress:
                print(summary, file=sys.stderr)
            return make_mosaic(data / "target.jpg", cache, os.path.join(out_dir, "demo-mosaic.jpg"),
                               cols=or_config(cols, "demo.cols"), tile_px=or_config(tile_px, "demo.tile-px"),
                               client=dask, progress=progress)
