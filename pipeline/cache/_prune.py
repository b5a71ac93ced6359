"""`mosaic index --prune`: forget files that are gone, and compact the cache they leave holes in."""
from __future__ import annotations

import os
from typing import Callable

import h5py
import numpy as np

from ..files import partial_sibling
from . import _schema
from ._schema import TEXT_COLUMNS
from ._tile_cache import FileRecord, TileCache

__all__ = ["forget_files", "prune_cache"]

_BLOCK_ROWS = 4096


def prune_cache(cache: TileCache, known: dict[str, FileRecord], seen: set[str], library: str,
                file_of: Callable[[str], str] | None = None) -> int:
    """Remove what the cache holds of files below ``library`` that a full scan did not see.

    Aliases, failures and video records of vanished files are dropped in place. A tile
    whose file vanished or no longer decodes is removed, unless a live alias still has its
    bytes: then that alias's path takes the tile over. Removing tiles rewrites the cache
    into a sibling file that replaces the original only when complete, so an interrupted
    prune loses nothing.

    Parameters
    ----------
    cache : TileCache
        Open for writing; after a compaction it is reopened on the new file.
    known : dict
        The writer's path records (``CacheWriter.known``), updated in place.
    seen : set of str
        Every file the scan of ``library`` found.
    library : str
        Absolute path of the scanned folder; files outside it are left alone.
    file_of : callable, optional
        The file a recorded path comes from (a video frame's source names its video and a
        time); default: the path itself.

    Returns
    -------
    int
        Number of tiles removed.
    """
    below = library.rstrip(os.sep) + os.sep
    file_of = file_of or (lambda path: path)
    gone = {path for path in known if path.startswith(below) and file_of(path) not in seen}
    videos = cache.videos()
    cache.drop_records("video", [record.index for path, record in videos.items() if path.startswith(below) and path not in seen])
    return forget_files(cache, known, gone, failing_too=True)


def forget_files(cache: TileCache, known: dict[str, FileRecord], gone: set[str], failing_too: bool = False) -> int:
    """Remove the tiles, aliases and failures of the paths in ``gone``; the number of tiles removed.

    With ``failing_too``, tiles whose file now fails go as well (``--prune``). A removed
    tile that a live alias shares bytes with is handed to the alias instead.
    """
    for kind in ("alias", "failure"):
        cache.drop_records(kind, [known[p].index for p in gone if known[p].kind == kind])
    dead_rows = {r.tile_row for p, r in known.items()
                 if r.tile_row >= 0 and r.kind != "alias" and (p in gone or (failing_too and r.kind == "failure"))}
    heirs = {}  # dead tile row -> a live alias of the same bytes
    for path, record in known.items():
        if record.kind == "alias" and path not in gone and record.tile_row in dead_rows:
            heirs.setdefault(record.tile_row, (path, record))
    if heirs:
        _hand_over(cache, heirs)
        dead_rows -= set(heirs)
    for path in gone:
        del known[path]
    if not dead_rows:
        return 0
    keep = np.ones(len(cache), bool)
    keep[list(dead_rows)] = False
    _compact(cache, keep)
    known.clear()
    known.update(cache.known_files())
    return int((~keep).sum())


def _hand_over(cache: TileCache, heirs: dict[int, tuple[str, FileRecord]]) -> None:
    """Give dead tiles the path and stat key of a live alias of theirs, and retire the alias."""
    cache.drop_records("alias", [record.index for _, record in heirs.values()])
    rows = sorted(heirs)
    cache.hand_over(rows, [heirs[r][0] for r in rows], [heirs[r][1].size for r in rows],
                    [heirs[r][1].mtime_ns for r in rows])


def _compact(cache: TileCache, keep: np.ndarray) -> None:
    """Rewrite the cache without the rows not in ``keep``, then swap it in atomically."""
    source = cache._file
    path = source.filename
    new_row = np.cumsum(keep) - 1
    with partial_sibling(path) as temporary:
        with h5py.File(temporary, "w-", fs_strategy="none") as target:
            _schema.create_layout(target, cache.tile_size, cache.grid, cache.crop, cache.tile_aspect)
            target.attrs.update(dict(source.attrs))
            _copy_rows(source["tiles"], target["tiles"], keep)
            live_alias = cache.live_rows("aliases")
            tile = cache.column("aliases", "tile")
            live_alias[live_alias] = keep[tile[live_alias]]
            _copy_rows(source["aliases"], target["aliases"], live_alias, remap={"tile": new_row})
            _copy_rows(source["failures"], target["failures"], cache.live_rows("failures"))
            _copy_rows(source["videos"], target["videos"], cache.live_rows("videos"))
        source.close()
        os.replace(temporary, path)
    cache._file = h5py.File(path, "r+")


def _copy_rows(source: h5py.Group, target: h5py.Group, keep: np.ndarray, remap: dict | None = None) -> None:
    """Copy the committed rows in ``keep`` of one group into the same, empty group of a new file."""
    n_keep = int(keep.sum())
    texts = {}
    for column in TEXT_COLUMNS[source.name.strip("/")]:
        values = _schema.read_text(source, column)
        texts[column] = [value for value, kept in zip(values, keep) if kept]
    text_end = 0
    for column, values in texts.items():
        span, text_end = _schema.write_text(target, values, text_end)
        target[f"{column}_span"].resize(n_keep, axis=0)
        target[f"{column}_span"][:] = span
    for name, dataset in source.items():
        if name == "text" or name.endswith("_span"):
            continue
        out = target[name]
        out.resize(n_keep, axis=0)
        written = 0
        for start in range(0, len(keep), _BLOCK_ROWS):
            mask = keep[start : start + _BLOCK_ROWS]
            if not mask.any():
                continue
            values = dataset[start : start + len(mask)][mask]
            if remap and name in remap:
                values = remap[name][values]
            out[written : written + len(values)] = values
            written += len(values)
    target.file.flush()
    _schema.set_committed(target, n_keep, text_end)
