"""Pair costs and their KD-tree keys: the key distance bounds the cost from below, and tightly enough to matter."""
import numpy as np
from pykdtree.kdtree import KDTree

from pipeline.matching import grid_basis, grid_cost, grid_keys


def _grids(n, seed):
    rng = np.random.default_rng(seed)
    colour = rng.uniform([0, -60, -60], [100, 60, 60], (n, 3))
    return (np.tile(colour, 9) + rng.normal(0, 12, (n, 27)) * rng.uniform(0, 1, (n, 1))).astype(np.float32)


def test_key_distance_never_exceeds_the_cost():
    cells, tiles = _grids(5000, 1), _grids(5000, 2)
    basis = grid_basis(tiles)
    cell_keys, tile_keys = grid_keys(cells, basis), grid_keys(tiles, basis)
    assert cell_keys.shape == (5000, basis.shape[1] + 1)
    pairs = np.random.default_rng(3).integers(0, 5000, (2, 20000))
    key_distance = np.linalg.norm(cell_keys[pairs[0]].astype(np.float64) - tile_keys[pairs[1]], axis=1)
    cost = grid_cost(cells, tiles)(*pairs)
    assert (key_distance <= cost + 1e-3).all()
    assert (key_distance >= np.linalg.norm(cell_keys[pairs[0], :-1].astype(np.float64) - tile_keys[pairs[1], :-1], axis=1)
            - 1e-6).all()  # the residual's length only adds to the projection's bound


def test_the_residual_length_proves_more_cells_best_tile_among_their_nearest_keys():
    cells, tiles = _grids(2000, 5), _grids(20000, 6)
    basis = grid_basis(tiles)
    cost = grid_cost(cells, tiles)
    proven = {}
    for name, keep in (("projection", slice(0, -1)), ("with residual", slice(None))):
        cell_keys, tile_keys = grid_keys(cells, basis)[:, keep], grid_keys(tiles, basis)[:, keep]
        key_distance, nearest = KDTree(np.ascontiguousarray(tile_keys)).query(np.ascontiguousarray(cell_keys), k=16)
        best = cost(np.repeat(np.arange(len(cells)), 16), nearest.ravel()).reshape(nearest.shape).min(axis=1)
        proven[name] = (best <= key_distance[:, -1]).mean()  # no tile beyond the 16th key can cost less
    assert proven["with residual"] > proven["projection"] + 0.05, proven  # 0.39 -> 0.48 here; 0.31 -> 0.67 on real photos


def test_last_key_is_the_length_of_what_the_projection_leaves_out():
    grids = _grids(100, 4)
    basis = grid_basis(grids)
    keys = grid_keys(grids, basis)
    scaled = grids.astype(np.float64) / 3  # blocks = 9
    residual = scaled - (scaled @ basis) @ basis.T
    np.testing.assert_allclose(keys[:, :-1], scaled @ basis, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(keys[:, -1], np.linalg.norm(residual, axis=1), rtol=1e-4, atol=1e-3)
