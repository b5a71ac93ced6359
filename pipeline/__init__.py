"""Photomosaics from photo libraries of any size: ingest -> cache -> match -> render, on Dask.

The public API of the stages; the command line (``mosaic``) is a thin layer over
it. Each stage's package holds its kernels and helpers: :mod:`pipeline.features`,
:mod:`pipeline.cache`, :mod:`pipeline.ingest`, :mod:`pipeline.matching`,
:mod:`pipeline.rendering`, :mod:`pipeline.formats`; :mod:`pipeline.cluster`
decides where they run and :mod:`pipeline.config` holds the defaults.
"""
from .cache import CacheError, TileCache
from .coverage import Coverage
from .demo import run_demo
from .errors import MosaicError
from .info import describe_cache
from .ingest import IndexSummary, index_library, tile_bag
from .make import MosaicSummary, make_mosaic
from .matching import Assignment, ReuseRule, match_cells
from .record import AssignmentRecord, read_assignment, write_assignment
from .rendering import RenderResult, render_mosaic

__version__ = "0.1.0"


def __getattr__(name: str):
    # target_coverage draws with matplotlib: imported on first use, so that importing the package
    # (as every Dask worker does) does not import matplotlib.
    if name == "target_coverage":
        from .report import target_coverage

        return target_coverage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Assignment", "AssignmentRecord", "CacheError", "Coverage", "IndexSummary", "MosaicError", "MosaicSummary",
    "RenderResult", "ReuseRule", "TileCache", "describe_cache", "index_library", "make_mosaic", "match_cells",
    "read_assignment", "render_mosaic", "run_demo", "target_coverage", "tile_bag", "write_assignment",
]
