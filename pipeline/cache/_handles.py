"""Read handles on a tile cache inside worker processes: one per process and file, shared by its threads.

A worker that renders many bands of one mosaic reads the same cache again and
again; opening it once per band would throw away HDF5's chunk cache each time.
Handles are keyed by the file's stamp (size and modification time when the run
started), so a rewritten cache is never read through a stale handle, and they are
closed by :func:`release_worker_caches` at the end of the run, so none outlives it.
"""
from __future__ import annotations

import threading

from ._tile_cache import TileCache

__all__ = ["release_worker_caches", "worker_cache"]

_handles: dict[tuple[str, tuple[int, int]], TileCache] = {}
_lock = threading.Lock()


def worker_cache(path: str, stamp: tuple[int, int], chunk_cache_bytes: int = 64 << 20) -> TileCache:
    """This process's read-only handle on the cache at ``path`` as it was at ``stamp`` (opened on first use).

    Parameters
    ----------
    path : str
        Absolute path of the cache.
    stamp : (int, int)
        ``(st_size, st_mtime_ns)`` of the file when the run started.
    chunk_cache_bytes : int
        HDF5's chunk cache per dataset: large, because neighbouring bands read the same thumbnails.
    """
    key = (path, stamp)
    with _lock:
        cache = _handles.get(key)
        if cache is None:
            cache = _handles[key] = TileCache.open(path, chunk_cache_bytes=chunk_cache_bytes)
    return cache


def release_worker_caches() -> None:
    """Close every handle this process opened with :func:`worker_cache`."""
    with _lock:
        handles = list(_handles.values())
        _handles.clear()
    for cache in handles:
        cache.close()
