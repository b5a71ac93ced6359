"""`mosaic info`: what a tile cache holds."""
from __future__ import annotations

import os
from collections import Counter

from .cache import TileCache

__all__ = ["describe_cache"]


def describe_cache(cache_path: str | os.PathLike, list_failures: bool = False) -> str:
    """A human-readable description of a tile cache (optionally listing every failure)."""
    with TileCache.open(cache_path) as cache:
        failures = cache.failures()
        reasons = Counter(reason for _, reason, _ in failures)
        lines = [
            f"cache:         {os.fspath(cache_path)} ({os.path.getsize(cache_path) / 2**20:.1f} MiB, schema v{cache.schema_version})",
            f"tiles:         {len(cache)} of {cache.tile_size}x{cache.tile_size} px",
            f"aliases:       {len(cache.aliases())} (files whose bytes are a tile's under another path)",
            f"failures:      {len(failures)}" + (f" ({', '.join(f'{n} {r}' for r, n in reasons.most_common())})" if failures else ""),
            f"features:      mean_lab (3), dominant_lab (3), grid_lab ({cache.grid}x{cache.grid}x3)",
            "library roots: " + ("\n               ".join(cache.roots) or "none"),
        ]
        lines += [f"  {name}: {text}" for name, text in cache.feature_definitions.items()]
        if list_failures:
            lines.append("failures (reason, path, detail):")
            lines += [f"  {reason}\t{path}\t{detail}" for path, reason, detail in failures]
    return "\n".join(lines)
