"""The k least of many values, for the numba kernels: a bounded heap, which compiles in a fraction of the time
``np.partition`` and ``np.argsort`` take (the first run of a command pays for every kernel it compiles)."""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["least_k"]


@njit(cache=True, nogil=True)
def least_k(values: np.ndarray, k: int, chosen: np.ndarray) -> int:
    """Put the positions of the ``k`` least of ``values`` (in no order) in ``chosen[:k]``; return how many there are.

    ``chosen[:size]`` is a max-heap of positions while it fills: a value below its root replaces it.
    """
    size = 0
    for i in range(values.size):
        value = values[i]
        if size < k:
            pos = size
            size += 1
            while pos > 0:  # sift the new position up past smaller parents
                parent = (pos - 1) >> 1
                if values[chosen[parent]] >= value:
                    break
                chosen[pos] = chosen[parent]
                pos = parent
            chosen[pos] = i
        elif value < values[chosen[0]]:
            pos = 0
            while True:  # the root leaves: sift the new position down past larger children
                child = 2 * pos + 1
                if child >= size:
                    break
                if child + 1 < size and values[chosen[child + 1]] > values[chosen[child]]:
                    child += 1
                if values[chosen[child]] <= value:
                    break
                chosen[pos] = chosen[child]
                pos = child
            chosen[pos] = i
    return size
