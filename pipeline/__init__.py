"""Photomosaics from photo libraries of any size: index -> match -> assemble, on Dask.

The public API; the command line (`mosaic`) is a thin layer over these.
"""
from ._cache import SCHEMA_VERSION, CacheError, TileCache
from ._cluster import dask_client
from ._color import srgb_to_lab
from ._errors import MosaicError
from ._features import TileFeatures, compute_features
from ._photo import PhotoError, decode_square_thumbnail, load_rgb, load_square_thumbnail, read_photo
from ._image_out import write_image, write_strips
from .assemble import blend_tiles, resize_tiles, tile_canvas
from .coverage import Coverage, colour_coverage, hue_sectors
from .demo import run_demo
from .index import IndexSummary, index_batch, index_library
from .info import describe_cache
from .make import MosaicSummary, TargetCells, cell_patches, describe_target, grid_shape, make_mosaic
from .match import Assignment, match_cells, nearest_tiles
from .record import AssignmentRecord, read_assignment, write_assignment
from .render import RenderResult, render_assignment, render_mosaic

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION", "Assignment", "AssignmentRecord", "RenderResult", "CacheError", "Coverage", "IndexSummary", "MosaicError", "MosaicSummary", "PhotoError",
    "TargetCells", "TileCache", "TileFeatures", "cell_patches", "colour_coverage", "compute_features", "dask_client", "decode_square_thumbnail", "read_photo",
    "describe_cache", "describe_target", "grid_shape", "hue_sectors",
    "index_batch", "index_library", "load_rgb", "load_square_thumbnail", "make_mosaic", "match_cells",
    "nearest_tiles", "read_assignment", "render_assignment", "render_mosaic", "resize_tiles", "run_demo", "srgb_to_lab",
    "tile_canvas", "write_assignment", "write_image", "write_strips", "blend_tiles",
]
