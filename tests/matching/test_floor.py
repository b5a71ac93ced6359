"""A floor of uses (every photo at least once, or MIN to MAX times): met exactly, at the least total cost."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from pipeline import MosaicError, ReuseRule, match_cells
from pipeline.matching import assign_capacitated, grid_basis, grid_cost, grid_keys
from support.features import clustered_grids, dense_cost


def _exact(matrix: np.ndarray, min_uses: int, max_uses: int) -> float:
    """The least total cost with every tile used min_uses..max_uses times (the transport LP, integral by unimodularity)."""
    n_cells, n_tiles = matrix.shape
    one_tile_per_cell = sp.kron(sp.eye(n_cells), np.ones((1, n_tiles)))
    uses = sp.kron(np.ones((1, n_cells)), sp.eye(n_tiles))
    result = linprog(matrix.ravel(), A_ub=sp.vstack([uses, -uses]),
                     b_ub=np.r_[np.full(n_tiles, max_uses), np.full(n_tiles, -min_uses)],
                     A_eq=one_tile_per_cell, b_eq=np.ones(n_cells), bounds=(0, 1), method="highs")
    assert result.status == 0
    return result.fun


@pytest.mark.parametrize("n_cells, n_tiles, min_uses, max_uses", [
    (300, 120, 1, 300),  # every photo at least once, no cap
    (300, 100, 2, 4),
    (240, 80, 3, 3),  # exactly three times each: no freedom in the counts
    (200, 200, 1, 1),  # a permutation
])
def test_floors_are_met_at_the_least_total_cost(n_cells, n_tiles, min_uses, max_uses):
    # Tiles crowd around other colours than the cells: the nearest choice leaves many unused.
    cells, tiles = clustered_grids(n_cells, 11, 4), clustered_grids(n_tiles, 12, 7)
    matrix = dense_cost(cells, tiles)
    assert (np.bincount(matrix.argmin(axis=1), minlength=n_tiles) < min_uses).sum() > n_tiles // 4
    optimum = _exact(matrix, min_uses, max_uses)
    basis = grid_basis(tiles)
    result = assign_capacitated(grid_keys(cells, basis), grid_keys(tiles, basis), max_uses, grid_cost(cells, tiles),
                                min_uses=min_uses)
    uses = np.bincount(result.tiles, minlength=n_tiles)
    assert uses.min() >= min_uses and uses.max() <= max_uses
    total = matrix[np.arange(n_cells), result.tiles].sum()
    assert total <= optimum * 1.001
    assert result.lower_bound <= optimum + 1e-6 and result.lower_bound >= optimum * 0.99


@pytest.mark.parametrize("min_uses, distance", [(1, 2), (2, 1)])
def test_match_cells_keeps_the_floor_under_the_repeat_distance(min_uses, distance):
    cols = 24
    cells, tiles = clustered_grids(24 * 18, 13, 3), clustered_grids(150, 14, 6)
    rule = ReuseRule(None, distance, 0.05, min_uses)
    tiles_of = match_cells(cells, tiles, rule=rule, cols=cols).tiles
    uses = np.bincount(tiles_of, minlength=len(tiles))
    assert uses.min() >= min_uses
    assert uses.max() <= rule.for_grid(len(cells), len(tiles)).max_uses
    if min_uses == 1:  # a floor of one never holds a repeat in place: the distance is kept everywhere
        grid = tiles_of.reshape(-1, cols)
        for r, c in np.ndindex(grid.shape):
            window = grid[max(0, r - distance):r + distance + 1, max(0, c - distance):c + distance + 1]
            assert (window == grid[r, c]).sum() == 1, (r, c)


def test_a_floor_beyond_the_grid_names_the_numbers_and_what_would_work():
    cells, tiles = clustered_grids(96, 15), clustered_grids(150, 16)
    with pytest.raises(MosaicError, match=r"every tile at least once needs 150 cells \(150 tiles x 1\) but the grid "
                                          r"has 96; use more `cols`"):
        match_cells(cells, tiles, rule=ReuseRule(min_uses=1))
    with pytest.raises(MosaicError, match="use `cols` 15 or more"):
        ReuseRule(min_uses=1).check_fits(96, 150, enough_cols=15)
    with pytest.raises(MosaicError, match="`min_uses` 3 is above `max_uses` 2"):
        ReuseRule(2, min_uses=3)
