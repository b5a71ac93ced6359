"""Cell weights: under a cap the heavier cells get the better tiles, at the least weighted total cost."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pipeline import MosaicError, ReuseRule, match_cells
from support.features import clustered_grids, dense_cost


def _scarce_instance(seed):
    # Few tiles near the cells' colours: cells compete, and who wins is what the weights decide.
    return clustered_grids(400, seed, 3), clustered_grids(420, seed + 1, 8)


@pytest.mark.parametrize("seed", [21, 23])
def test_weights_give_the_least_weighted_total_cost(seed):
    cells, tiles = _scarce_instance(seed)
    weights = np.where(np.arange(len(cells)) % 5 == 0, 4.0, 1.0)
    matrix = dense_cost(cells, tiles) * weights[:, None]
    rows, cols = linear_sum_assignment(matrix)
    optimum = matrix[rows, cols].sum()
    result = match_cells(cells, tiles, rule=ReuseRule.unique(), weights=weights)
    assert len(np.unique(result.tiles)) == len(cells)
    weighted = matrix[np.arange(len(cells)), result.tiles].sum()
    assert weighted <= optimum * 1.01  # the unique rule's proven gap
    # The distances returned are the colour distances, not weighted.
    np.testing.assert_allclose(result.distances, dense_cost(cells, tiles)[np.arange(len(cells)), result.tiles],
                               rtol=1e-4)


def test_the_heavy_cells_fare_better_than_without_weights_and_the_rest_pay_for_it():
    cells, tiles = _scarce_instance(25)
    heavy = np.zeros(len(cells), bool)
    heavy[:80] = True
    plain = match_cells(cells, tiles, rule=ReuseRule.unique())
    weighted = match_cells(cells, tiles, rule=ReuseRule.unique(), weights=np.where(heavy, 4.0, 1.0))
    assert weighted.distances[heavy].mean() < 0.9 * plain.distances[heavy].mean()
    assert weighted.distances[~heavy].mean() >= plain.distances[~heavy].mean() - 1e-3
    assert weighted.distances.mean() >= plain.distances.mean() - 1e-3  # plain is the least unweighted total


def test_the_repeat_repair_re_chooses_the_lighter_cell():
    tiles = np.array([[50, 0, 0], [60, 0, 0], [70, 0, 0]], np.float32)
    cells = np.array([[50, 0, 0], [51, 0, 0], [90, 0, 0]], np.float32)  # two neighbours want tile 0
    rule = ReuseRule.nearest(1)
    assert match_cells(cells, tiles, rule=rule, cols=3).tiles.tolist() == [0, 1, 2]
    heavy_second = match_cells(cells, tiles, rule=rule, cols=3, weights=np.array([1.0, 3.0, 1.0])).tiles
    assert heavy_second.tolist() == [1, 0, 2]
    with pytest.raises(MosaicError, match="`weights` must be 3 numbers of at least 1"):
        match_cells(cells, tiles, rule=rule, cols=3, weights=np.array([1.0, 0.5, 1.0]))
