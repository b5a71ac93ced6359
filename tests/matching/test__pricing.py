"""The price-out against a brute-force search of every (cell, tile) pair: KD-trees here and on a Dask cluster, and dense."""
import numpy as np
import pytest

from pipeline.matching import VectorCost, grid_basis, grid_cost, grid_keys
from pipeline.matching import _pricing
from pipeline.matching._pricing import PricingData, _Depth, _price_out
from support.features import clustered_grids, dense_cost


def _instance(seed):
    cells, tiles = clustered_grids(700, seed, 4), clustered_grids(2500, seed + 1, 7)
    basis = grid_basis(tiles)
    cost = grid_cost(cells, tiles)
    matrix = dense_cost(cells, tiles)
    rng = np.random.default_rng(seed)
    # Prices like a capped assignment's: most tiles free, the ones near the cells dear, a few very dear.
    prices = np.zeros(len(tiles))
    nearest = matrix.argmin(axis=1)
    prices[nearest] = rng.uniform(0, 8, nearest.size)
    prices[rng.choice(len(tiles), 40, replace=False)] = rng.uniform(20, 60, 40)
    u = matrix.min(axis=1) + rng.uniform(0, 12, len(cells))  # each cell's current cost + price
    return grid_keys(cells, basis), grid_keys(tiles, basis), cost, matrix, prices, u


@pytest.mark.parametrize("free_tree", [True, False])
@pytest.mark.parametrize("seed", [3, 11])
def test_a_certifying_search_finds_each_cells_exact_minimum_and_every_violated_cell(seed, free_tree, monkeypatch):
    # A third of these tiles are priced: the free ones get a tree of their own, unless the static
    # tree (passing over the priced ones) is made to serve however crowded the library.
    monkeypatch.setattr(_pricing, "_CROWDED", 0.02 if free_tree else 1.0)
    cell_keys, tile_keys, cost, matrix, prices, u = _instance(seed)
    truth = (matrix + prices[None, :]).min(axis=1)
    with PricingData(cell_keys, tile_keys, cost, method="kdtree") as data:
        pricing = _price_out(data, prices, u, 8, _Depth(16, 4096, 0.0, 1e-4))
    assert pricing.certified
    np.testing.assert_allclose(pricing.best, np.minimum(truth, u), rtol=1e-6, atol=1e-6)
    violated = np.flatnonzero(truth < u - 1e-3)
    assert violated.size > 50  # the instance has something to find
    assert set(violated) <= set(pricing.cells.tolist())
    found = matrix[pricing.cells, pricing.tiles] + prices[pricing.tiles]
    assert (found < u[pricing.cells]).all()  # every edge it returns does undercut
    # Each cell's edges are its 8 most violating: a search may stop once nothing unseen beats its 8th.
    values = matrix + prices[None, :]
    crowded = 0
    for cell in violated:
        mine = np.sort(found[pricing.cells == cell])
        lowest = np.sort(values[cell][values[cell] < u[cell] - 1e-4])[:8]
        crowded += lowest.size == 8
        np.testing.assert_allclose(mine, lowest, rtol=1e-5)
    assert crowded > 20  # cells with more violating tiles than are kept, where the search stops early


def test_a_shallow_search_still_proves_a_true_lower_bound():
    cell_keys, tile_keys, cost, matrix, prices, u = _instance(5)
    truth = np.minimum((matrix + prices[None, :]).min(axis=1), u)
    with PricingData(cell_keys, tile_keys, cost, method="kdtree") as data:
        shallow = _price_out(data, prices, u, 8, _Depth(4, 4, 1.0, 1e-4))
        past_deadline = _price_out(data, prices, u, 8, _Depth(4, 4096, 0.0, 1e-4, deadline=0.0))
    for pricing in (shallow, past_deadline):
        assert not pricing.certified
        assert (pricing.best <= truth + 1e-6).all()


def test_the_search_on_a_cluster_gives_what_it_gives_here(client):
    cell_keys, tile_keys, cost, matrix, prices, u = _instance(7)
    depth = _Depth(16, 4096, 0.0, 1e-4)
    with PricingData(cell_keys, tile_keys, cost, method="kdtree") as data:
        local = _price_out(data, prices, u, 8, depth)
    with PricingData(cell_keys, tile_keys, cost, client, method="kdtree") as data:
        remote = _price_out(data, prices, u, 8, depth)
        remote_again = _price_out(data, prices, u, 8, depth)  # the workers' static trees, reused
        assert data.sent_bytes > 0
    np.testing.assert_array_equal(remote.best, local.best)
    assert sorted(zip(remote.cells, remote.tiles)) == sorted(zip(local.cells, local.tiles))
    np.testing.assert_array_equal(remote_again.best, local.best)


@pytest.mark.parametrize("mirrored, weighted", [(False, False), (True, True)])
def test_a_dense_price_out_finds_each_cells_exact_minimum_and_its_most_violating_tiles(mirrored, weighted):
    cell_keys, tile_keys, cost, matrix, prices, u = _instance(13)
    rng = np.random.default_rng(13)
    if mirrored:  # each tile may also be used mirrored: a second way round, the cheaper counts
        turned = rng.permutation(cost.tile_ways[0])
        matrix = np.minimum(matrix, dense_cost(cost.cell_vectors, turned))
        cost = VectorCost(cost.cell_vectors, [cost.tile_ways[0], turned], cost.scale)
    if weighted:
        weights = rng.uniform(1, 3, len(cell_keys))
        matrix, cost = matrix * weights[:, None], cost.weighted(weights)
    values = matrix + prices[None, :]
    with PricingData(cell_keys, tile_keys, cost, method="dense") as data:
        pricing = _price_out(data, prices, u, 8, _Depth(16, 16, 0.0, 1e-4))
    assert pricing.certified
    np.testing.assert_allclose(pricing.best, values.min(axis=1), rtol=1e-9)
    assert (pricing.best <= values.min(axis=1) + 1e-9).all()  # a bound: never above the true least
    violating = values < (u - 1e-4)[:, None]
    assert violating.sum() > 8 * 50  # plenty to choose from
    # The tiles are screened in float32, lowered by a bound on its rounding: a tile within that of
    # violating may come too, but every one returned is at most that far from violating.
    rounding = 0.02
    assert (values[pricing.cells, pricing.tiles] < u[pricing.cells] - 1e-4 + rounding).all()
    for cell in range(len(u)):  # each cell's edges are its lowest cost + price
        mine = np.sort(values[cell, pricing.tiles[pricing.cells == cell]])
        lowest = np.sort(values[cell][violating[cell]])[:8]
        assert lowest.size <= mine.size <= 8
        np.testing.assert_allclose(mine[:lowest.size], lowest, atol=rounding)


@pytest.mark.parametrize("method", ["kdtree", "dense"])
def test_the_bound_counts_tiles_within_the_tolerance_though_it_returns_no_edge_to_them(method):
    # The tolerance only says which edges are worth adding; every cell's bound stays its exact least value.
    cell_keys, tile_keys, cost, matrix, prices, u = _instance(17)
    truth = np.minimum((matrix + prices[None, :]).min(axis=1), u)
    tolerance = 2.0
    assert ((truth > u - tolerance) & (truth < u - 1e-3)).sum() > 20  # cells that only the tolerance would hide
    with PricingData(cell_keys, tile_keys, cost, method=method) as data:
        pricing = _price_out(data, prices, u, 8, _Depth(16, 4096, 0.0, tolerance))
    assert pricing.certified
    # Up to u, each cell's exact least value (a dense sweep goes on past u, a KD-tree search stops there).
    np.testing.assert_allclose(np.minimum(pricing.best, u), truth, rtol=1e-6, atol=1e-6)
    found = matrix[pricing.cells, pricing.tiles] + prices[pricing.tiles]
    assert (found < u[pricing.cells] - tolerance + 0.02).all()  # the dense screen's rounding, as above
