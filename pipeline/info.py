"""`mosaic info`: what a tile cache holds."""
from __future__ import annotations

import os
from collections import Counter

from .cache import CacheError, TileCache

__all__ = ["check_cache_file", "describe_cache"]


def check_cache_file(cache_path: str | os.PathLike, sample: int = 256) -> tuple[bool, str]:
    """Verify a tile cache: ``(sound, one-line verdict)``; see :meth:`pipeline.TileCache.check`."""
    path = os.fspath(cache_path)
    try:
        with TileCache.open(path) as cache:
            problems, tiles = cache.check(sample), len(cache)
            counts = (f"{len(cache):,} tiles, {int(cache.live_rows('aliases').sum()):,} aliases, "
                      f"{int(cache.live_rows('failures').sum()):,} failures")
    except CacheError as exc:
        return False, f"{path}: not sound: {exc}"
    except Exception as exc:  # damage deep inside the file surfaces as any of HDF5's error types
        return False, f"{path}: not sound: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    if problems:
        return False, f"{path}: not sound: " + "; ".join(problems)
    return True, f"{path}: sound ({counts}; {min(sample, tiles)} thumbnails checked against their features)"


def _first_frame(cache: TileCache, block: int = 65536) -> str | None:
    """The first tile that is a video frame, read a block of paths at a time (not all of a large cache's)."""
    for start in range(0, len(cache), block):
        frame = next((path for path in cache.paths(slice(start, start + block)) if "#t=" in path), None)
        if frame is not None:
            return frame
    return None


def _videos_line(cache: TileCache) -> str:
    videos = cache.videos()
    frames, skipped = sum(v.frames for v in videos.values()), sum(v.skipped for v in videos.values())
    if not videos:
        return "videos:        none"
    example = _first_frame(cache)
    return (f"videos:        {len(videos)}: {frames} frames kept ({cache.frames}), {skipped} near-identical frames skipped"
            + (f"; a frame's source reads e.g. {example}" if example else ""))


def describe_cache(cache_path: str | os.PathLike, list_failures: bool = False, list_videos: bool = False) -> str:
    """A human-readable description of a tile cache (optionally listing every failure, every video)."""
    with TileCache.open(cache_path) as cache:
        failures = cache.failures()
        reasons = Counter(reason for _, reason, _ in failures)
        height, width = cache.thumbnail_shape
        lines = [
            f"cache:         {os.fspath(cache_path)} ({os.path.getsize(cache_path) / 2**20:.1f} MiB, schema v{cache.schema_version})",
            f"tiles:         {len(cache)} of {width}x{height} px (aspect {cache.tile_aspect}), cut from each photo at the "
            f"{cache.crop}" + (" (the window holding the subject)" if cache.crop == "smart" else ""),
            f"aliases:       {len(cache.aliases())} (files whose bytes are a tile's under another path)",
            f"failures:      {len(failures)}" + (f" ({', '.join(f'{n} {r}' for r, n in reasons.most_common())})" if failures else ""),
            _videos_line(cache),
            f"features:      mean_lab (3), dominant_lab (3), grid_lab ({cache.grid}x{cache.grid}x3)",
            "library roots: " + ("\n               ".join(cache.roots) or "none"),
        ]
        lines += [f"  {name}: {text}" for name, text in cache.feature_definitions.items()]
        if list_videos:
            lines.append("videos (frames kept, near-identical frames skipped, path):")
            lines += [f"  {v.frames}\t{v.skipped}\t{path}" for path, v in cache.videos().items()]
        if list_failures:
            lines.append("failures (reason, path, detail):")
            lines += [f"  {reason}\t{path}\t{detail}" for path, reason, detail in failures]
    return "\n".join(lines)
