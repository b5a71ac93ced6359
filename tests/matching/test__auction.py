"""The auction on candidate graphs against OR-tools' exact min-cost flow, cold and warm-started."""
import numpy as np
import pytest

from pipeline.matching._auction import AuctionState, auction
from pipeline.matching._graph import CandidateGraph, solve_on_graph


def _random_graph(n_cells, n_tiles, degree, seed):
    """A sparse graph with costs that are distances of points in 3-D, feasible with ceil(cells / tiles) uses a tile."""
    rng = np.random.default_rng(seed)
    cell_points, tile_points = rng.normal(0, 10, (n_cells, 3)), rng.normal(0, 12, (n_tiles, 3))
    cells = np.r_[np.repeat(np.arange(n_cells), degree), np.arange(n_cells)]
    tiles = np.r_[rng.integers(0, n_tiles, n_cells * degree), rng.permutation(n_tiles)[np.arange(n_cells) % n_tiles]]

    def cost(c, t):
        return np.linalg.norm(cell_points[c] - tile_points[t], axis=1)
    graph = CandidateGraph(n_tiles)
    graph.add(cells, tiles, cost)
    return graph


def _total(graph, chosen):
    costs = {(c, t): x for c, t, x in zip(graph.cells, graph.tiles, graph.costs)}
    return sum(costs[c, t] for c, t in enumerate(chosen))


def _bound(graph, prices, max_uses):
    """The dual bound the prices prove on the graph: sum_i min_j (c_ij + p_j) - max_uses * sum_j p_j."""
    best = np.full(graph.cells.max() + 1, np.inf)
    np.minimum.at(best, graph.cells, graph.costs + prices[graph.tiles])
    return best.sum() - max_uses * prices.sum()


@pytest.mark.parametrize("n_cells, n_tiles, max_uses", [(400, 400, 1), (500, 1500, 1), (600, 250, 3)])
def test_auction_is_within_its_eps_of_the_min_cost_flow(n_cells, n_tiles, max_uses):
    graph = _random_graph(n_cells, n_tiles, 12, n_cells + n_tiles)
    optimum = _total(graph, solve_on_graph(graph, n_cells, max_uses))
    eps = 1e-4
    state = auction(graph.cells, graph.tiles, graph.costs, AuctionState(n_cells, n_tiles, max_uses), eps)
    chosen = state.tiles
    assert (chosen >= 0).all() and np.bincount(chosen, minlength=n_tiles).max() <= max_uses
    total = _total(graph, chosen)
    assert optimum - 1e-6 <= total <= optimum + n_cells * eps
    prices = state.tile_prices()
    assert prices.min() >= 0
    assert (prices[np.bincount(chosen, minlength=n_tiles) < max_uses] == 0).all()  # a tile with room is free
    bound = _bound(graph, prices, max_uses)
    assert optimum - n_cells * eps <= bound <= optimum + 1e-6  # the prices prove the optimum within n eps


def test_a_warm_start_on_a_grown_graph_reaches_the_grown_graphs_optimum():
    graph = _random_graph(800, 2000, 6, 7)
    state = auction(graph.cells, graph.tiles, graph.costs, AuctionState(800, 2000, 1), 1e-4)
    before = _total(graph, state.tiles)
    rng = np.random.default_rng(8)
    cell_points, tile_points = rng.normal(0, 10, (800, 3)), rng.normal(0, 12, (2000, 3))
    graph.add(rng.integers(0, 800, 4000), rng.integers(0, 2000, 4000),
              lambda c, t: np.linalg.norm(cell_points[c] - tile_points[t], axis=1) * 0.5)  # cheap new edges
    optimum = _total(graph, solve_on_graph(graph, 800, 1))
    assert optimum < before - 1  # the new edges matter
    state = auction(graph.cells, graph.tiles, graph.costs, state, 1e-4, warm=True)
    assert len(np.unique(state.tiles)) == 800
    assert optimum - 1e-6 <= _total(graph, state.tiles) <= optimum + 800 * 1e-4
    assert _bound(graph, state.tile_prices(), 1) <= optimum + 1e-6
