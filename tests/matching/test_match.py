import numpy as np
import pytest

from pipeline import MosaicError, ReuseRule, match_cells
from pipeline.matching import nearest_tiles, pair_scoring, ranked_candidates
from support.features import clustered_grids, dense_cost


def random_lab(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 3)) * [100, 160, 160] - [0, 80, 80]).astype(np.float32)


def test_nearest_agrees_with_brute_force():
    cells, tiles = random_lab(500, 1), random_lab(300, 2)
    distances, indices = nearest_tiles(cells, tiles, k=3)
    brute = np.linalg.norm(cells[:, None] - tiles[None], axis=2)
    np.testing.assert_array_equal(indices, np.argsort(brute, axis=1)[:, :3])
    np.testing.assert_allclose(distances, np.sort(brute, axis=1)[:, :3], rtol=1e-5, atol=1e-3)


def test_match_nearest_default_on_dask_equals_local(client):
    cells, tiles = random_lab(5000, 3), random_lab(400, 4)
    local = match_cells(cells, tiles)
    distributed = match_cells(cells, tiles, client=client)
    np.testing.assert_array_equal(local.tiles, distributed.tiles)
    brute = np.linalg.norm(cells[:, None] - tiles[None], axis=2)
    np.testing.assert_allclose(local.distances, brute.min(axis=1), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("max_uses", [1, 2, 5])
def test_max_uses_is_never_exceeded(max_uses):
    cells, tiles = random_lab(600, 5), random_lab(600 // max_uses + 7, 6)
    assignment = match_cells(cells, tiles, rule=ReuseRule(max_uses))
    assert (assignment.tiles >= 0).all()
    assert np.bincount(assignment.tiles).max() <= max_uses
    brute = np.linalg.norm(cells - tiles[assignment.tiles], axis=1)
    np.testing.assert_allclose(assignment.distances, brute, rtol=1e-5, atol=1e-3)


def test_max_uses_with_room_to_spare_is_plain_nearest():
    cells, tiles = random_lab(50, 7), random_lab(500, 8)
    capped = match_cells(cells, tiles, rule=ReuseRule(50))
    np.testing.assert_array_equal(capped.tiles, match_cells(cells, tiles).tiles)


def test_impossible_cap_says_what_would_work():
    with pytest.raises(MosaicError, match="use `max_uses` 4 or more"):
        match_cells(random_lab(100, 1), random_lab(30, 2), rule=ReuseRule(3))
    with pytest.raises(MosaicError, match="no tiles"):
        match_cells(random_lab(10, 1), np.empty((0, 3), np.float32))


def test_structure_aware_nearest_is_within_a_hair_of_every_cells_best_tile(client):

    cells, tiles = clustered_grids(2000, 11), clustered_grids(40000, 12)
    tiles_sq = (tiles.astype(np.float64) ** 2).sum(1)
    best = np.concatenate([np.sqrt(np.maximum(0, (part ** 2).sum(1)[:, None] - 2 * part @ tiles.T.astype(np.float64)
                                              + tiles_sq).min(1) / 9)
                           for part in np.array_split(cells.astype(np.float64), 8)])
    local = match_cells(cells, tiles)
    assert local.distances.mean() <= 1.01 * best.mean()  # an approximate search, but barely
    assert (local.distances <= best + 1e-3).mean() >= 0.8  # most cells get their very best
    np.testing.assert_allclose(local.distances[:50], np.diag(dense_cost(cells[:50], tiles[local.tiles[:50]])), rtol=1e-5)
    np.testing.assert_array_equal(match_cells(cells, tiles, client=client).tiles, local.tiles)


def test_ranked_candidates_in_blocks_on_dask_equal_one_local_search(client):
    cell_keys, tile_keys, cost = pair_scoring(clustered_grids(5000, 13), clustered_grids(3000, 14))
    local = ranked_candidates(cell_keys, tile_keys, cost, 8, None)
    blocks = ranked_candidates(cell_keys, tile_keys, cost, 8, client, block_pairs=64 * 2048)  # 2,048 cells a block
    np.testing.assert_array_equal(blocks[1], local[1])
    np.testing.assert_array_equal(blocks[0], local[0])
    assert (np.diff(local[0], axis=1) >= 0).all()  # best first


def _no_repeat_within(tiles: np.ndarray, cols: int, distance: int) -> bool:
    grid = tiles.reshape(-1, cols)
    rows = len(grid)
    for dr in range(0, distance + 1):
        for dc in range(-distance, distance + 1):
            if (dr, dc) <= (0, 0):
                continue
            a = grid[: rows - dr, max(0, -dc): cols - max(0, dc)]  # cell (r, c) against (r + dr, c + dc)
            b = grid[dr:, max(0, dc): cols + min(0, dc)]
            if (a == b).any():
                return False
    return True


def test_a_cap_the_repeat_distance_already_keeps_changes_nothing_and_one_it_does_not_still_holds():
    # A flat 30 x 30 target: most cells share one nearest tile, which the distance spreads out.
    rng = np.random.default_rng(9)
    cells = (np.array([60.0, 10.0, -20.0]) + rng.normal(0, 2, (900, 3))).astype(np.float32)
    tiles = random_lab(400, 10)
    assert np.bincount(match_cells(cells, tiles).tiles).max() > 200
    spread_only = match_cells(cells, tiles, rule=ReuseRule(None, 2), cols=30)
    most = int(np.bincount(spread_only.tiles).max())
    assert most <= 100 and _no_repeat_within(spread_only.tiles, 30, 2)  # one use in every 3 x 3 block at most
    # A cap the spread choice already keeps: the same choice, without the capacitated solve.
    kept = match_cells(cells, tiles, rule=ReuseRule(most, 2), cols=30)
    np.testing.assert_array_equal(kept.tiles, spread_only.tiles)
    # A tighter cap: both rules hold.
    tighter = match_cells(cells, tiles, rule=ReuseRule(most // 2, 2), cols=30)
    assert np.bincount(tighter.tiles).max() <= most // 2 and _no_repeat_within(tighter.tiles, 30, 2)
