"""The client's side of index: apply what workers hand back to the tile cache, one batch at a time.

Each file ends as exactly one live record: a tile, an alias (its bytes are a tile's under
another path) or a failure. Retired records are dropped before new ones are appended, so
a writer killed in between leaves the path with no record, and the next run indexes it
again: never two live records.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..cache import FileRecord, TileCache, VideoRecord
from ..features import TileFeatures
from ..video import is_named_video, split_source
from ._scan import FileEntry, ScanProblem

__all__ = ["IndexedBatch", "CacheWriter", "VideoPart", "WriteCounts", "POLICY_REASONS"]

POLICY_REASONS = frozenset({"too-small", "too-large"})


class VideoPart(NamedTuple):
    """One time segment of a video, done: how many frames it kept and how many near-identical ones it skipped."""

    entry: FileEntry
    segment: int
    segments: int
    frames: int
    skipped: int


class IndexedBatch(NamedTuple):
    """What a worker hands back for one batch of files: numpy arrays and plain lists."""

    tiles: list[FileEntry]
    thumbnails: np.ndarray  # (n, s, s, 3) uint8
    features: TileFeatures | None
    content_hashes: np.ndarray  # (n, 2) uint64: xxh3-128 of each file's bytes
    failures: list[tuple[FileEntry, str, str]]  # (file, reason, detail)
    ignored: int  # files that are not images at all (no image extension, no image signature)
    # (path, text) of what C decoders printed for photos that still decoded; path "" when
    # decodes ran side by side in one process and the text cannot be told apart.
    messages: list[tuple[str, str]] = []
    videos: list[VideoPart] = []  # the video segments this batch read; their frames are among ``tiles``


@dataclass
class WriteCounts:
    """What the writer did to the cache."""

    added: int = 0
    replaced: int = 0
    aliases: int = 0
    failures: Counter = field(default_factory=Counter)
    ignored: int = 0
    videos: int = 0  # videos whose frames are all in
    frames: int = 0  # frames those videos kept
    frames_skipped: int = 0  # frames passed over as near-identical to the one kept before


def _own_tile(record: FileRecord | None) -> int:
    """The tile row indexed from this very path (an alias shows another path's tile)."""
    return record.tile_row if record is not None and record.kind != "alias" else -1


class CacheWriter:
    """Applies batches to an open, writable cache, keeping its path and content indexes in memory.

    Parameters
    ----------
    cache : TileCache
        Opened ``"r+"`` (or just created) by this process, the only writer.
    """

    def __init__(self, cache: TileCache):
        self.cache = cache
        self.known: dict[str, FileRecord] = cache.known_files()
        hashes = cache.content_hashes()
        self._row_of_hash: dict[bytes, int] = {}
        for row in range(len(hashes) - 1, -1, -1):  # the first row of equal contents wins
            self._row_of_hash[hashes[row].tobytes()] = row
        self.counts = WriteCounts()
        self._aliases_of_row: dict[int, list[str]] | None = None
        # Skips that depend on --min-size or --max-pixels are looked at again by every run,
        # so that changing the policy takes effect on unchanged files.
        self._policy_skips = {path for path, reason, _ in cache.failures() if reason in POLICY_REASONS}
        self.videos: dict[str, VideoRecord] = cache.videos()
        self._video_parts: dict[str, list[VideoPart]] = {}  # videos under way: the parts written so far
        self._frames_of: dict[str, list[str]] | None = None  # video -> its frames' paths, built when first needed
        self.stale: set[str] = set()  # frames of changed videos that their new version no longer has

    def is_current(self, entry: FileEntry) -> bool:
        """Whether the cache already holds this file at this size and mtime (a video: all its frames)."""
        if entry.path in self.videos or is_named_video(entry.path):
            video = self.videos.get(entry.path)
            return video is not None and (video.size, video.mtime_ns) == (entry.size, entry.mtime_ns)
        record = self.known.get(entry.path)
        if record is None or entry.path in self._policy_skips:
            return False
        return (record.size, record.mtime_ns) == (entry.size, entry.mtime_ns)

    def record_problems(self, problems: list[ScanProblem]) -> None:
        """Record what the scan could not read (folders, vanished entries) as failures."""
        fresh = [p for p in problems if p.path not in self.known]
        entries = [FileEntry(p.path, -1, 0) for p in fresh]
        self._append_failures([(e, p.reason, p.detail, -1) for e, p in zip(entries, fresh)])

    def write(self, batch: IndexedBatch) -> None:
        """Write one batch; a file delivered twice (a task run again) is written once."""
        appends, replaces, aliases, drops = [], [], [], []
        next_row = len(self.cache)
        for i, entry in enumerate(batch.tiles):
            if self.is_current(entry):
                continue  # already written in this run
            self._policy_skips.discard(entry.path)
            previous = self.known.get(entry.path)
            digest = batch.content_hashes[i].tobytes()
            own_row = _own_tile(previous)
            if previous is not None and previous.kind != "tile":
                drops.append(previous)
            same_bytes = self._row_of_hash.get(digest, -1)
            if own_row >= 0:  # the path has a tile: the new content takes its row
                replaces.append(i)
                drops += self._forget_content_of(own_row)
                self.known[entry.path] = FileRecord(entry.size, entry.mtime_ns, "tile", own_row, own_row)
                self._row_of_hash.setdefault(digest, own_row)
            elif same_bytes >= 0:
                aliases.append((entry, same_bytes))
            else:
                appends.append(i)
                self.known[entry.path] = FileRecord(entry.size, entry.mtime_ns, "tile", next_row, next_row)
                self._row_of_hash[digest] = next_row
                next_row += 1
        failures = []
        for entry, reason, detail in batch.failures:
            if self.is_current(entry) or self._failed_already(entry):
                continue
            self._policy_skips.discard(entry.path)
            previous = self.known.get(entry.path)
            if previous is not None and previous.kind != "tile":
                drops.append(previous)
            failures.append((entry, reason, detail, _own_tile(previous)))
        self._commit_batch(batch, appends, replaces, aliases, failures, drops)
        self.counts.ignored += batch.ignored
        for part in batch.videos:
            self._video_part_done(part)

    def _failed_already(self, entry: FileEntry) -> bool:
        """Whether an earlier segment of this very version of a video has recorded its failure (each segment says it)."""
        record = self.known.get(entry.path)
        return (record is not None and record.kind == "failure" and entry.path in self._video_parts
                and (record.size, record.mtime_ns) == (entry.size, entry.mtime_ns))

    def _video_part_done(self, part: VideoPart) -> None:
        """Count a segment in; after a video's last one, record the video (its frames are all written by then)."""
        path = part.entry.path
        parts = self._video_parts.setdefault(path, [])
        parts.append(part)
        if len(parts) < part.segments:
            return
        del self._video_parts[path]
        key = (part.entry.size, part.entry.mtime_ns)
        frames, skipped = sum(p.frames for p in parts), sum(p.skipped for p in parts)
        previous = self.known.get(path)
        if previous is not None and previous.kind == "failure" and (previous.size, previous.mtime_ns) != key:
            # The old version's failure; one of this version's segments would have written its own over it.
            self.cache.drop_records("failure", [previous.index])
            del self.known[path]
        self.stale.update(p for p in self._frames(path) if (self.known[p].size, self.known[p].mtime_ns) != key)
        if path in self.videos:
            self.cache.drop_records("video", [self.videos[path].index])
        start = self.cache.record_count("videos")
        self.cache.append_videos([path], [key[0]], [key[1]], [frames], [skipped])
        self.videos[path] = VideoRecord(*key, frames, skipped, start)
        self.counts.videos += 1
        self.counts.frames += frames
        self.counts.frames_skipped += skipped

    def _frames(self, video: str) -> list[str]:
        """The paths of a video's frames the cache holds (any version).

        The index is built once, from the records as they stand when a video first
        completes; frames written later are of their video's new version, never stale.
        """
        if self._frames_of is None:
            self._frames_of = {}
            for path, record in self.known.items():
                if record.kind != "failure" and "#t=" in path:
                    file, seconds = split_source(path)
                    if seconds is not None:
                        self._frames_of.setdefault(file, []).append(path)
        return [p for p in self._frames_of.get(video, []) if p in self.known]

    def _forget_content_of(self, row: int) -> list[FileRecord]:
        """Before a tile row takes new content: unmap its old bytes, and retire the aliases
        of those bytes (their files are unchanged, so the next run indexes them anew)."""
        old = self.cache.content_hash(row)
        if self._row_of_hash.get(old) == row:
            del self._row_of_hash[old]
        if self._aliases_of_row is None:  # built on the first change of a tile: most runs never need it
            self._aliases_of_row = {}
            for path, record in self.known.items():
                if record.kind == "alias":
                    self._aliases_of_row.setdefault(record.tile_row, []).append(path)
        stale = [self.known.pop(path) for path in self._aliases_of_row.pop(row, [])
                 if path in self.known and self.known[path].kind == "alias" and self.known[path].tile_row == row]
        return stale

    def _commit_batch(self, batch, appends, replaces, aliases, failures, drops) -> None:
        cache = self.cache
        # Drops first: a writer killed after them leaves the paths unrecorded, to be redone.
        for kind in ("alias", "failure"):
            cache.drop_records(kind, [r.index for r in drops if r.kind == kind])
        for rows, replace in ((appends, False), (replaces, True)):
            if not rows:
                continue
            entries = [batch.tiles[i] for i in rows]
            columns = ([e.size for e in entries], [e.mtime_ns for e in entries], batch.thumbnails[rows],
                       TileFeatures(*(f[rows] for f in batch.features)), batch.content_hashes[rows])
            if replace:
                cache.replace_tiles([self.known[e.path].tile_row for e in entries], *columns)
            else:
                cache.append_tiles([e.path for e in entries], *columns)
        self.counts.added += len(appends)
        self.counts.replaced += len(replaces)
        self._append_aliases(aliases)
        self._append_failures(failures)

    def _append_aliases(self, aliases: list[tuple[FileEntry, int]]) -> None:
        if not aliases:
            return
        start = self.cache.record_count("aliases")
        self.cache.append_aliases([e.path for e, _ in aliases], [e.size for e, _ in aliases],
                                  [e.mtime_ns for e, _ in aliases], [row for _, row in aliases])
        for k, (entry, row) in enumerate(aliases):
            self.known[entry.path] = FileRecord(entry.size, entry.mtime_ns, "alias", start + k, row)
            if self._aliases_of_row is not None:
                self._aliases_of_row.setdefault(row, []).append(entry.path)
        self.counts.aliases += len(aliases)

    def _append_failures(self, failures: list[tuple[FileEntry, str, str, int]]) -> None:
        """``failures`` holds (file, reason, detail, the path's own tile row or -1)."""
        if not failures:
            return
        start = self.cache.record_count("failures")
        self.cache.append_failures([f[0].path for f in failures], [f[0].size for f in failures],
                                   [f[0].mtime_ns for f in failures], [f[1] for f in failures], [f[2] for f in failures])
        for k, (entry, reason, _, tile_row) in enumerate(failures):
            self.known[entry.path] = FileRecord(entry.size, entry.mtime_ns, "failure", start + k, tile_row)
            self.counts.failures[reason] += 1
