"""The HDF5 tile cache: the only package that touches h5py.

:class:`TileCache` owns every read and write of the file; :mod:`._schema` holds the
schema and its rules (committed rows, retired rows); :func:`prune_cache` compacts a
cache into a sibling file; :func:`worker_cache` hands worker processes shared
read-only handles.
"""
from ._handles import release_worker_caches, worker_cache
from ._prune import forget_files, prune_cache
from ._schema import SCHEMA_VERSION
from ._tile_cache import CacheError, FileRecord, TileCache, VideoRecord

__all__ = ["SCHEMA_VERSION", "CacheError", "FileRecord", "TileCache", "VideoRecord", "forget_files", "prune_cache", "release_worker_caches",
           "worker_cache"]
