"""Colour features of square RGB patches (library tiles and target cells alike).

Every feature is in CIELAB, where Euclidean distance approximates perceived colour
difference (CIE76 delta E):

- ``mean_lab`` (3): the mean colour of all pixels.
- ``dominant_lab`` (3): the most common colour: pixels are binned on a coarse
  8x8x8 sRGB grid, the fullest bin wins and its pixels' mean Lab is returned.
- ``grid_lab`` (grid, grid, 3): the mean colour of each block of a grid x grid
  split, so that matching can respect where light and dark parts lie.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._color import srgb_to_lab

__all__ = ["TileFeatures", "compute_features", "DOMINANT_BINS_PER_CHANNEL"]

DOMINANT_BINS_PER_CHANNEL = 8
_BIN_SHIFT = 5  # 256 levels >> 5 = 8 bins per channel
_CHUNK_PIXELS = 32 * 64 * 64  # pixels per pass


class TileFeatures(NamedTuple):
    """Features of N patches; see the module docstring for their definitions."""

    mean_lab: np.ndarray  # (N, 3) float32
    dominant_lab: np.ndarray  # (N, 3) float32
    grid_lab: np.ndarray  # (N, grid, grid, 3) float32


def _block_edges(size: int, grid: int) -> np.ndarray:
    """Start index of each of ``grid`` near-equal blocks along an axis of ``size``."""
    return np.linspace(0, size, grid + 1).astype(np.intp)[:-1]


def _block_sums(lab: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block Lab sums (N, grid, grid, 3) in float64, and each block's pixel count."""
    n, h, w, _ = lab.shape
    rows, cols = _block_edges(h, grid), _block_edges(w, grid)
    sums = np.add.reduceat(np.add.reduceat(lab, rows, axis=1, dtype=np.float64), cols, axis=2)
    heights = np.diff(np.append(rows, h))
    widths = np.diff(np.append(cols, w))
    return sums, heights[:, None] * widths[None, :]


def _dominant(rgb: np.ndarray, lab: np.ndarray) -> np.ndarray:
    n = rgb.shape[0]
    pixels = rgb.reshape(n, -1, 3) >> _BIN_SHIFT
    nbins = DOMINANT_BINS_PER_CHANNEL**3
    bins = (pixels[..., 0].astype(np.int32) << 6) | (pixels[..., 1] << 3) | pixels[..., 2]
    bins += (np.arange(n, dtype=np.int32) * nbins)[:, None]
    counts = np.bincount(bins.ravel(), minlength=n * nbins).reshape(n, nbins)
    fullest = counts.argmax(axis=1)
    # Sum Lab per (patch, bin) with weighted bincounts, then keep only the fullest bin:
    # one pass over the pixels per channel instead of a mask times every pixel.
    flat_bins = bins.ravel()
    lab_flat = lab.reshape(-1, 3)
    picked = fullest + np.arange(n) * nbins
    sums = np.stack([np.bincount(flat_bins, weights=lab_flat[:, c], minlength=n * nbins)[picked] for c in range(3)], axis=1)
    return (sums / counts[np.arange(n), fullest][:, None]).astype(np.float32)


def compute_features(patches: np.ndarray, grid: int = 3) -> TileFeatures:
    """Compute the colour features of a batch of square RGB patches.

    Parameters
    ----------
    patches : ndarray of uint8, shape (N, H, W, 3)
        sRGB pixels. H and W must each be at least ``grid``.
    grid : int, optional
        Number of blocks along each side for ``grid_lab``.

    Returns
    -------
    TileFeatures
        ``mean_lab`` (N, 3), ``dominant_lab`` (N, 3) and ``grid_lab``
        (N, grid, grid, 3), all float32 CIELAB.
    """
    patches = np.asarray(patches)
    if patches.ndim != 4 or patches.shape[-1] != 3 or patches.dtype != np.uint8:
        raise ValueError(f"expected uint8 patches of shape (N, H, W, 3), got {patches.dtype} {patches.shape}")
    if min(patches.shape[1:3]) < grid:
        raise ValueError(f"patches of {patches.shape[1]}x{patches.shape[2]} px are smaller than a {grid}x{grid} grid")
    chunk = max(1, _CHUNK_PIXELS // (patches.shape[1] * patches.shape[2]))
    if len(patches) > chunk:
        # The float temporaries of ~128k pixels stay in cache: 1.3x faster than one big pass.
        parts = [compute_features(patches[i : i + chunk], grid) for i in range(0, len(patches), chunk)]
        return TileFeatures(*(np.concatenate(column) for column in zip(*parts)))
    lab = srgb_to_lab(patches)
    block_sums, block_counts = _block_sums(lab, grid)
    # The mean is the blocks' sums pooled: no second pass over the pixels.
    mean = block_sums.sum(axis=(1, 2)) / block_counts.sum()
    return TileFeatures(
        mean_lab=mean.astype(np.float32),
        dominant_lab=_dominant(patches, lab),
        grid_lab=(block_sums / block_counts[None, :, :, None]).astype(np.float32),
    )
