"""Mirrored tiles: a cell may take a tile either way round, one use either way; the better way is chosen and recorded."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pipeline import ReuseRule, match_cells
from support.features import clustered_grids, dense_cost


def _mirror(grids: np.ndarray) -> np.ndarray:
    """3x3 grids (n, 27) mirrored left to right: each row of blocks reversed."""
    return np.ascontiguousarray(grids.reshape(-1, 3, 3, 3)[:, :, ::-1, :].reshape(len(grids), 27))


def _lopsided(n, seed):
    """Grids light on one side, as photos often are: mirroring them matters."""
    grids = clustered_grids(n, seed, 4).reshape(n, 3, 3, 3)
    side = np.random.default_rng(seed).choice([-25.0, 25.0], n)
    grids[:, :, 0, 0] += side[:, None]
    grids[:, :, 2, 0] -= side[:, None]
    return grids.reshape(n, 27).astype(np.float32)


def test_nearest_takes_the_better_way_round_of_every_tile():
    cells, tiles = _lopsided(300, 31), _lopsided(500, 31)  # the same colours, either side lighter
    result = match_cells(cells, tiles, mirrored=_mirror(tiles))
    straight, turned = dense_cost(cells, tiles), dense_cost(cells, _mirror(tiles))
    either = np.minimum(straight, turned)
    rows = np.arange(len(cells))
    # Within the search's approximation (SEARCH_EPS): near every cell's best tile of both ways round.
    assert either[rows, result.tiles].mean() <= either.min(axis=1).mean() * 1.01
    assert result.flipped.dtype == bool and 0.2 < result.flipped.mean() < 0.8
    chosen_way = np.where(result.flipped, turned[rows, result.tiles], straight[rows, result.tiles])
    np.testing.assert_allclose(result.distances, chosen_way, rtol=1e-4)
    plain = match_cells(cells, tiles)
    assert plain.flipped is None and result.distances.mean() < 0.97 * plain.distances.mean()


@pytest.mark.parametrize("max_uses", [1, 2])
def test_a_tile_and_its_mirror_are_one_tile_under_a_cap(max_uses):
    cells, tiles = _lopsided(400, 33), _lopsided(220 if max_uses == 2 else 450, 34)
    either = np.minimum(dense_cost(cells, tiles), dense_cost(cells, _mirror(tiles)))
    rows, cols = linear_sum_assignment(np.repeat(either, max_uses, axis=1))
    optimum = either.repeat(max_uses, axis=1)[rows, cols].sum()
    result = match_cells(cells, tiles, rule=ReuseRule(max_uses), mirrored=_mirror(tiles))
    assert np.bincount(result.tiles).max() <= max_uses  # either way round counts as a use
    total = either[np.arange(len(cells)), result.tiles].sum()
    assert total <= optimum * 1.01
    np.testing.assert_allclose(result.distances.sum(), total, rtol=1e-4)
