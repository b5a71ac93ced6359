"""Region priority: how much each part of the target matters, so that under a cap the important cells get the better tiles.

A priority map is a 0..1 level over the target's pixels: a grey mask the user
drew (white: most important), or found by :func:`auto_priority` (faces and
salient regions). Each cell's weight is ``1 + (strength - 1) * level``, its mean
level: matching then minimises the weighted total colour distance, so a cell of
full priority counts its error ``strength`` times. Weights are never below 1, which
keeps the matching's KD-tree bounds (key distance <= cost) true for the weighted cost.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MosaicError
from ..features import TileAspect
from ..target import cell_patches

__all__ = ["AUTO", "PriorityMap", "auto_priority", "cell_levels", "cell_weights", "priority_map"]

AUTO = "auto"
_AUTO_SIDE = 1024  # auto priority looks at the target at most this large: faces and salient regions are not fine detail
_FACE_MARGIN = 0.25  # a found face's box grows by this share of its side each way: hair, chin and ears matter too


class PriorityMap(NamedTuple):
    """A 0..1 importance over the target (any size of the target's aspect), and what it came from."""

    levels: np.ndarray  # (h, w) float32
    source: str  # e.g. "mask.png" or "auto: 1 face and saliency"


def auto_priority(pixels: np.ndarray) -> PriorityMap:
    """Faces (OpenCV's Haar cascade, level 1) over spectral-residual saliency (scaled to 0..1) of an RGB target."""
    import cv2  # only for --priority auto: OpenCV is large to import

    height, width = pixels.shape[:2]
    scale = min(1.0, _AUTO_SIDE / max(height, width))
    small = cv2.resize(pixels, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else np.ascontiguousarray(pixels)
    found, saliency = cv2.saliency.StaticSaliencySpectralResidual_create().computeSaliency(
        cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    levels = np.zeros(small.shape[:2], np.float32)
    if found:
        # The spectral residual is sparse and peaky: its 99th percentile is "fully salient".
        levels = np.clip(saliency / max(float(np.percentile(saliency, 99)), 1e-6), 0, 1).astype(np.float32)
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    least = max(16, min(small.shape[:2]) // 20)
    faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(least, least))
    boxes = np.asarray(faces, dtype=np.int64).reshape(-1, 4).tolist()  # () when none are found
    for x, y, w, h in boxes:
        dx, dy = round(w * _FACE_MARGIN), round(h * _FACE_MARGIN)
        levels[max(0, y - dy):y + h + dy, max(0, x - dx):x + w + dx] = 1.0
    count = len(boxes)
    return PriorityMap(levels, f"auto: {count} face{'s' if count != 1 else ''} and saliency")


def _read_mask(path: str, target_shape: tuple[int, int]) -> PriorityMap:
    try:
        with Image.open(path) as image:
            mask = ImageOps.exif_transpose(image).convert("L")
    except (OSError, UnidentifiedImageError) as exc:
        raise MosaicError(f"cannot read priority mask {path}: {exc}") from None
    height, width = target_shape
    if abs(mask.width * height - mask.height * width) > 0.01 * mask.height * width:
        raise MosaicError(f"priority mask {path} is {mask.width}x{mask.height} but the target is {width}x{height}: "
                          "draw the mask on the target, at its shape")
    return PriorityMap(np.asarray(mask, np.float32) / 255, os.path.basename(path))


def priority_map(spec: str | os.PathLike, pixels: np.ndarray) -> PriorityMap:
    """The priority of a target's regions: ``"auto"``, or the path of a grey mask of the target's shape.

    Raises
    ------
    MosaicError
        If the mask cannot be read or is not the target's shape.
    """
    spec = os.fspath(spec)
    return auto_priority(pixels) if spec == AUTO else _read_mask(spec, pixels.shape[:2])


def cell_levels(priority: PriorityMap, rows: int, cols: int, aspect: TileAspect) -> np.ndarray:
    """(rows * cols,) mean priority (0..1) of each cell, row-major, the map cut into cells as the target is."""
    grey = np.round(np.clip(priority.levels, 0, 1) * 255).astype(np.uint8)
    patches = cell_patches(np.repeat(grey[:, :, None], 3, axis=2), rows, cols, 4, aspect=aspect)
    return patches.mean(axis=(1, 2, 3)) / 255.0


def cell_weights(levels: np.ndarray, strength: float) -> np.ndarray:
    """Matching weights of cells of priority ``levels`` (0..1): ``1 + (strength - 1) * level``, never below 1."""
    if not strength >= 1:
        raise MosaicError(f"`priority_strength` must be at least 1, got {strength}")
    return 1.0 + (strength - 1.0) * np.asarray(levels, np.float64)
