"""Stage 1, ingest: a photo library scanned, decoded and described on a Dask bag, written to the tile cache.

:func:`tile_bag` is the library as a lazy bag of per-photo records;
:func:`index_library` computes the same bag's batches and writes them, from this
process alone, into a :class:`pipeline.TileCache` (:class:`CacheWriter` keeps
each file one live record); :func:`index_batch` is one task's work.
"""
from ._bag import batch_bag, batches_of, photo_records, tile_bag
from ._batch import VideoSegment, index_batch
from ._index import IndexSummary, index_library
from ._scan import FileEntry, ScanProblem, scan_library
from ._writer import POLICY_REASONS, CacheWriter, IndexedBatch, VideoPart

__all__ = ["POLICY_REASONS", "CacheWriter", "FileEntry", "IndexSummary", "IndexedBatch", "ScanProblem", "VideoPart",
           "VideoSegment", "batch_bag",
           "batches_of", "index_batch", "index_library", "photo_records", "scan_library", "tile_bag"]
