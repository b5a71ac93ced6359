"""The capped assignment against scipy's exact solver, and every reuse rule's guarantee."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pipeline import MosaicError, ReuseRule, match_cells
from pipeline.matching import assign_capacitated, grid_basis, grid_cost, grid_keys
import pipeline.matching._greedy as greedy_module
from pipeline.matching._greedy import _claim, _fill_by_lightness, greedy_feasible
from support.features import clustered_grids, dense_cost


@pytest.mark.parametrize("price_out", ["dense", "kdtree"])
@pytest.mark.parametrize("n_cells, n_tiles", [(300, 300), (300, 700), (500, 2000)])
def test_unique_matches_linear_sum_assignment(n_cells, n_tiles, price_out):
    cells, tiles = clustered_grids(n_cells, 1, 4), clustered_grids(n_tiles, 2, 7)
    matrix = dense_cost(cells, tiles)
    rows, cols = linear_sum_assignment(matrix)
    optimum = matrix[rows, cols].sum()
    basis = grid_basis(tiles)
    result = assign_capacitated(grid_keys(cells, basis), grid_keys(tiles, basis), 1, grid_cost(cells, tiles),
                                price_out=price_out)
    assert len(np.unique(result.tiles)) == n_cells
    total = matrix[np.arange(n_cells), result.tiles].sum()
    np.testing.assert_allclose(result.costs.sum(), total, rtol=1e-5)
    assert total <= optimum * 1.001
    assert result.lower_bound <= optimum + 1e-6  # the bound is a true lower bound


def test_capacity_matches_linear_sum_assignment_on_repeated_tiles():
    cells, tiles = clustered_grids(400, 3, 3), clustered_grids(150, 4, 8)
    matrix = dense_cost(cells, np.repeat(tiles, 3, axis=0))  # every tile three times: max uses 3
    rows, cols = linear_sum_assignment(matrix)
    basis = grid_basis(tiles)
    result = assign_capacitated(grid_keys(cells, basis), grid_keys(tiles, basis), 3, grid_cost(cells, tiles))
    assert np.bincount(result.tiles).max() <= 3
    assert result.costs.sum() <= matrix[rows, cols].sum() * 1.001


@pytest.mark.parametrize("rule", [ReuseRule.unique(), ReuseRule(2), ReuseRule(5)])
def test_no_tile_over_its_cap(rule):
    cells, tiles = clustered_grids(1200, 5), clustered_grids(1300, 6)
    assignment = match_cells(cells, tiles, rule=rule)
    assert np.bincount(assignment.tiles).max() <= rule.max_uses
    nearest = match_cells(cells, tiles)
    assert assignment.distances.mean() >= nearest.distances.mean() - 1e-4  # a cap can only cost


def test_unique_uses_every_tile_when_there_are_as_many_as_cells():
    cells, tiles = clustered_grids(800, 7), clustered_grids(800, 8)
    assert sorted(match_cells(cells, tiles, rule=ReuseRule.unique()).tiles) == list(range(800))


@pytest.mark.parametrize("distance, max_uses", [(1, None), (3, None), (2, 4)])
def test_no_repeat_within_min_distance(distance, max_uses):
    cols = 30
    cells, tiles = clustered_grids(30 * 20, 9, 2), clustered_grids(200, 10, 3)
    tiles_of = match_cells(cells, tiles, rule=ReuseRule(max_uses, distance), cols=cols).tiles
    grid = tiles_of.reshape(-1, cols)
    for r, c in np.ndindex(grid.shape):
        window = grid[max(0, r - distance):r + distance + 1, max(0, c - distance):c + distance + 1]
        assert (window == grid[r, c]).sum() == 1, (r, c)
    if max_uses:
        assert np.bincount(tiles_of).max() <= max_uses
    nearest = match_cells(cells, tiles).tiles.reshape(-1, cols)
    assert (nearest[:, 1:] == nearest[:, :-1]).any()  # the rule is not vacuous here: nearest alone repeats


def test_structure_scoring_puts_light_where_the_cell_is_light():
    light_top = np.array([[90, 0, 0]] * 3 + [[50, 0, 0]] * 3 + [[10, 0, 0]] * 3, np.float32).ravel()
    tiles = np.stack([light_top, light_top.reshape(3, 3, 3)[::-1].ravel()])  # same mean colour, flipped
    cell = light_top[None] + 1
    assert match_cells(cell, tiles).tiles[0] == 0


def test_unique_with_too_few_tiles_suggests_the_smallest_max_uses():
    with pytest.raises(MosaicError, match=r"`unique` .* 100 cells .* 30; use `max_uses` 4 \(the smallest"):
        match_cells(clustered_grids(100, 1), clustered_grids(30, 2), rule=ReuseRule.unique())


def test_claim_gives_each_row_its_first_candidate_with_uses_left_in_priority_order():
    rng = np.random.default_rng(9)
    candidates = rng.integers(0, 40, (500, 6))
    uses = rng.integers(0, 2, 40)
    before = uses.copy()
    chosen = _claim(candidates, rng.permutation(500), uses, max_uses=3)
    taken = chosen[chosen >= 0]
    np.testing.assert_array_equal(uses, before + np.bincount(taken, minlength=40))
    assert uses.max() <= 3
    for row in np.flatnonzero(chosen < 0):  # left out only when every candidate filled up
        assert (uses[candidates[row]] == 3).all()
    for row in np.flatnonzero(chosen >= 0):  # and never passing over a candidate with uses left
        first = list(candidates[row]).index(chosen[row])
        assert (uses[candidates[row, :first]] == 3).all()


@pytest.mark.parametrize("max_uses", [1, 3])
def test_a_greedy_start_over_its_search_cap_fills_the_cells_left_within_capacity(max_uses, monkeypatch):
    # Crowded cells (one colour) and a library with few tiles of it: most cells lose their first
    # candidates, as 2,000,000 target cells did, where doubling the search depth took over 21 GB.
    cells, tiles = clustered_grids(3000, 31, 1), clustered_grids(4000 // max_uses, 32, 5)
    basis = grid_basis(tiles)
    cell_keys, tile_keys = grid_keys(cells, basis), grid_keys(tiles, basis)
    searched = []
    real_query = greedy_module._kd_query
    monkeypatch.setattr(greedy_module, "_kd_query", lambda *a: searched.append(len(a[1]) * a[2]) or real_query(*a))
    monkeypatch.setattr(greedy_module, "_ROUND_CANDIDATES", 4000)
    nearest = real_query(greedy_module.KDTree(tile_keys), cell_keys, 4)
    chosen = greedy_feasible(cell_keys, tile_keys, max_uses, nearest)
    assert (chosen >= 0).all()
    assert np.bincount(chosen, minlength=len(tiles)).max() <= max_uses
    assert max(searched, default=0) <= 4000  # no round searched past the cap: the fill took the rest
    missed = chosen != nearest[1][:, 0]
    assert missed.sum() > 1000  # the instance is crowded enough to need the fill


def test_the_lightness_fill_gives_each_cell_a_distinct_use_near_its_lightness():
    rng = np.random.default_rng(6)
    cell_lightness, tile_lightness = rng.uniform(0, 100, 500), rng.uniform(0, 100, 300)
    tiles, uses_left = np.arange(1000, 1300), rng.integers(1, 4, 300)
    chosen = _fill_by_lightness(cell_lightness, tile_lightness, tiles, uses_left)
    assert (np.bincount(chosen - 1000, minlength=300) <= uses_left).all()
    # Every use taken, by lightness order: the k-th lightest cell takes a use of a tile no darker than the
    # (k-1)-th's, so the matching keeps both orders.
    taken = tile_lightness[chosen - 1000]
    assert (np.diff(taken[np.argsort(cell_lightness, kind="stable")]) >= 0).all()
    # With as many uses as cells, each cell is as near its lightness as the sorted matching puts it.
    even = _fill_by_lightness(cell_lightness[:300], tile_lightness, tiles, np.ones(300, np.int64))
    np.testing.assert_array_equal(np.sort(tile_lightness[even - 1000]), np.sort(tile_lightness))
    assert (np.argsort(np.argsort(tile_lightness[even - 1000])) == np.argsort(np.argsort(cell_lightness[:300]))).all()


def test_a_capped_greedy_start_still_reaches_the_optimum(monkeypatch):
    monkeypatch.setattr(greedy_module, "_ROUND_CANDIDATES", 1000)
    cells, tiles = clustered_grids(400, 33, 1), clustered_grids(700, 34, 5)
    matrix = dense_cost(cells, tiles)
    rows, cols = linear_sum_assignment(matrix)
    basis = grid_basis(tiles)
    result = assign_capacitated(grid_keys(cells, basis), grid_keys(tiles, basis), 1, grid_cost(cells, tiles),
                                price_out="kdtree")
    assert len(np.unique(result.tiles)) == 400
    assert matrix[np.arange(400), result.tiles].sum() <= matrix[rows, cols].sum() * 1.001


def test_a_time_budget_keeps_the_first_rounds_feasible_matching():
    cells, tiles = clustered_grids(2000, 10), clustered_grids(2500, 11)
    basis = grid_basis(tiles)
    keys = grid_keys(cells, basis), grid_keys(tiles, basis)
    hurried = assign_capacitated(*keys, 1, grid_cost(cells, tiles), time_budget=1e-9)
    patient = assign_capacitated(*keys, 1, grid_cost(cells, tiles))
    assert hurried.rounds == 1 < patient.rounds
    assert len(np.unique(hurried.tiles)) == 2000
    assert patient.costs.sum() <= hurried.costs.sum()


def test_price_out_as_dask_tasks_finds_the_same_assignment(client):
    cells, tiles = clustered_grids(1500, 14), clustered_grids(2000, 15)
    basis = grid_basis(tiles)
    keys = grid_keys(cells, basis), grid_keys(tiles, basis)
    local = assign_capacitated(*keys, 1, grid_cost(cells, tiles), price_out="kdtree")
    distributed = assign_capacitated(*keys, 1, grid_cost(cells, tiles), price_out="kdtree", client=client)
    assert distributed.rounds == local.rounds > 1  # the price-out ran, on the workers
    np.testing.assert_array_equal(distributed.tiles, local.tiles)
    assert distributed.lower_bound == pytest.approx(local.lower_bound)


@pytest.fixture(scope="module")
def gap_instance():
    """1,500 cells, 3,000 tiles, every pair's cost and the exact optimum (computed once for every gap test)."""
    cells, tiles = clustered_grids(1500, 21, 4), clustered_grids(3000, 22, 7)
    matrix = dense_cost(cells, tiles)
    rows, cols = linear_sum_assignment(matrix)
    return cells, tiles, matrix, matrix[rows, cols].sum()


@pytest.mark.parametrize("gap, price_out", [(0.01, "kdtree"), (0.001, "kdtree"), (0.001, "dense")])
def test_the_gap_asked_for_is_proven_against_the_true_optimum(gap, price_out, gap_instance):
    cells, tiles, matrix, optimum = gap_instance
    basis = grid_basis(tiles)
    result = assign_capacitated(grid_keys(cells, basis), grid_keys(tiles, basis), 1, grid_cost(cells, tiles), gap=gap,
                                price_out=price_out)
    total = matrix[np.arange(1500), result.tiles].sum()
    assert len(np.unique(result.tiles)) == 1500
    assert result.gap <= gap
    assert result.lower_bound <= optimum + 1e-6 <= total + 1e-6  # a true bound, a true assignment
    assert total <= (1 + gap) * result.lower_bound + 1e-6


def test_a_time_budget_ends_on_a_certifying_search_that_proves_a_true_bound(gap_instance):
    cells, tiles, matrix, optimum = gap_instance
    basis = grid_basis(tiles)
    keys = grid_keys(cells, basis), grid_keys(tiles, basis)
    shallow = assign_capacitated(*keys, 1, grid_cost(cells, tiles), price_out="kdtree", max_rounds=1)
    hurried = assign_capacitated(*keys, 1, grid_cost(cells, tiles), price_out="kdtree", time_budget=1e-9)
    assert hurried.rounds == 2  # the first round's shallow search, then the certifying one
    assert len(np.unique(hurried.tiles)) == 1500
    assert shallow.lower_bound < hurried.lower_bound <= optimum + 1e-6
    assert hurried.gap < 0.5 * shallow.gap
