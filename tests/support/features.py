"""Feature arrays shaped like real ones, for the matching tests."""
from __future__ import annotations

import numpy as np


def clustered_grids(n, seed, centres=6):
    """Grid features crowded around a few colours, as photo libraries are: the optimum is not local."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([0, -60, -60], [100, 60, 60], (centres, 3))
    colour = base[rng.integers(0, centres, n)] + rng.normal(0, 6, (n, 3))
    return (np.tile(colour, 9) + rng.normal(0, 4, (n, 27))).astype(np.float32)


def dense_cost(cells, tiles):
    """Every pair's cost: root mean square CIE76 over the 9 blocks of 3x3 grids."""
    return np.sqrt(((cells[:, None, :].astype(np.float64) - tiles[None]) ** 2).sum(-1) / 9)
