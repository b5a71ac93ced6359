"""`mosaic info --check`: does a cache's content hold together?"""
from __future__ import annotations

import h5py
import numpy as np

from ..features import compute_features
from . import _schema

__all__ = ["check_cache"]

# Features are recomputed from the stored thumbnail and compared: float32 storage and
# summation order leave differences far below this; a garbled thumbnail is far above it.
_FEATURE_TOLERANCE = 0.05


def check_cache(file: h5py.File, sample: int = 256, seed: int = 0) -> list[str]:
    """Problems found in an open cache's committed content; empty when it is sound.

    Checks every group's columns cover its committed rows and text, every text span
    lies in the committed text, paths are unique within each group (live rows) and live
    aliases do not shadow tiles, aliases point at existing tiles, content hashes are
    not all zero, features are finite and in range, and that for ``sample`` random
    thumbnails the stored features are those of the thumbnail.
    """
    problems: list[str] = []
    for group_name in _schema.groups_in(file):
        group = file[group_name]
        rows, text_bytes = _schema.committed(group)
        for name, dataset in group.items():
            need = text_bytes if name == "text" else rows
            if dataset.shape[0] < need:
                problems.append(f"{group_name}/{name} has {dataset.shape[0]} rows, {need} committed")
        if problems:
            return problems
        for column in _schema.TEXT_COLUMNS[group_name]:
            spans = group[f"{column}_span"][:rows]
            if len(spans) and ((spans[:, 0] > spans[:, 1]).any() or spans.min() < 0 or spans.max() > text_bytes):
                problems.append(f"{group_name}/{column} points outside the committed text")
    if problems:
        return problems
    groups = _schema.groups_in(file)
    paths = {name: np.array(_schema.read_text(file[name], "path"), dtype=object) for name in groups}
    live = {name: _schema.live_rows(name, file[name]) for name in groups}
    for name in groups:
        shown = paths[name][live[name]]
        if len(set(shown)) != len(shown):
            problems.append(f"{len(shown) - len(set(shown))} {name} paths are recorded twice")
        if (shown == "").any():
            problems.append(f"{int((shown == '').sum())} {name} rows have no path")
    if set(paths["aliases"][live["aliases"]]) & set(paths["tiles"]):
        problems.append("some aliases have the path of a tile")
    tiles = file["tiles"]
    n = _schema.committed_rows(tiles)
    alias_rows = file["aliases/tile"][: _schema.committed_rows(file["aliases"])][live["aliases"]]
    if len(alias_rows) and (alias_rows.min() < 0 or alias_rows.max() >= n):
        problems.append("aliases point at tiles that do not exist")
    hashes = tiles["content_hash"][:n]
    if n and (~hashes.any(axis=1)).any():
        problems.append(f"{int((~hashes.any(axis=1)).sum())} tiles have no content hash")
    for name in ("mean_lab", "dominant_lab", "grid_lab"):
        values = tiles[name][:n]
        lightness = values[..., 0]
        if not np.isfinite(values).all() or (lightness < -0.01).any() or (lightness > 100.01).any():
            problems.append(f"tiles/{name} holds values that are not finite CIELAB colours")
    if n and not problems:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
        thumbnails = np.stack([tiles["thumbnails"][int(r)] for r in rows])
        again = compute_features(thumbnails, grid=int(file.attrs["grid"]))
        off = np.abs(again.mean_lab - tiles["mean_lab"][rows]).max(axis=1) > _FEATURE_TOLERANCE
        if off.any():
            problems.append(f"{int(off.sum())} of {len(rows)} sampled thumbnails do not match their features")
    return problems
