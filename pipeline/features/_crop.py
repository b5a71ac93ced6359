"""Where to cut a square from a photo: the centre, or the window that holds its subject.

``smart`` scores every square window along the photo's long side by its edge
energy (the sum of absolute lightness differences between neighbouring pixels:
a subject has edges and texture, sky and studio backdrops have few), weighted
by a gentle preference for the centre, and takes the best. It looks at a copy
of the photo at most ``ANALYSIS_SIDE`` px on its short side, so it costs a few
microseconds a photo whatever its size.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ANALYSIS_SIDE", "CROP_MODES", "salient_square_offset"]

CROP_MODES = ("centre", "smart")
ANALYSIS_SIDE = 32
# A window at the photo's edge keeps this share of its edge score against one at the centre:
# a subject clearly off-centre wins, a near tie stays centred.
_EDGE_PREFERENCE = 0.8


def salient_square_offset(lightness: np.ndarray) -> float:
    """Where the most salient square window starts along the long side, as a fraction of the slack.

    Parameters
    ----------
    lightness : ndarray, shape (H, W)
        The photo's lightness (any scale), small: see ``ANALYSIS_SIDE``.

    Returns
    -------
    float
        0: the window at the top or left; 1: at the bottom or right; 0.5: centred.
        A square photo returns 0.5.
    """
    lightness = np.asarray(lightness, dtype=np.float32)
    if lightness.ndim != 2:
        raise ValueError(f"expected a 2-D lightness array, got shape {lightness.shape}")
    if lightness.shape[0] > lightness.shape[1]:
        lightness = lightness.T  # the long side runs along axis 1
    height, width = lightness.shape
    slack = width - height
    if slack <= 0 or height < 2:
        return 0.5
    # Inside a window [s, s + height): the vertical differences of its columns, and the
    # horizontal ones between its own neighbouring columns (not the one across its edge).
    vertical = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(lightness, axis=0)).sum(axis=0, dtype=np.float64))])
    horizontal = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(lightness, axis=1)).sum(axis=0, dtype=np.float64))])
    starts_px = np.arange(slack + 1)
    window_energy = (vertical[starts_px + height] - vertical[starts_px]
                     + horizontal[starts_px + height - 1] - horizontal[starts_px])
    # A photo with no edges anywhere (or windows all alike) keeps the centre: ties go to the prior.
    window_energy += 1e-6 * max(1.0, float(window_energy.max()))
    starts = np.arange(slack + 1) / slack
    score = window_energy * (1.0 - (1.0 - _EDGE_PREFERENCE) * np.abs(2.0 * starts - 1.0))
    return float(starts[int(np.argmax(score))])
