"""make_mosaic's defaults: arguments left out take the configured values, not numbers of its own."""
import json

import dask.config

from pipeline import ReuseRule, index_library, make_mosaic


def test_arguments_left_out_take_the_configured_defaults(small_library, tmp_path, demo_target, client):
    cache = tmp_path / "tiles.h5"
    index_library(small_library, cache, tile_size=16, client=client, progress=False)
    settings = {"mosaic.make.cols": 12, "mosaic.make.tile-px": 8, "mosaic.make.max-uses": 2,
                "mosaic.make.min-repeat-distance": 1, "mosaic.make.max-share": None}
    with dask.config.set(settings):
        summary = make_mosaic(demo_target, cache, tmp_path / "m.png", report=False, client=client, progress=False)
    assert (summary.cols, summary.tile_shape) == (12, (8, 8)) and summary.most_uses <= 2
    assert json.load(open(summary.quality))["rule"] == {"max_uses": 2, "min_repeat_distance": 1, "max_share": None, "min_uses": 0}
    default = make_mosaic(demo_target, cache, tmp_path / "d.png", cols=12, report=False, client=client, progress=False)
    # The package's defaults: 32 px tiles, and the spread rule's share cap (1 % of 96 cells, raised to the
    # fewest uses that fill them from this library), not the cap of 2 set above.
    share_cap = max(1, 96 // 100, -(-96 // default.tiles_in_cache))
    assert default.tile_shape == (32, 32) and default.most_uses <= share_cap
    assert json.load(open(default.quality))["rule"] == {"max_uses": share_cap, "min_repeat_distance": 2, "max_share": 0.01, "min_uses": 0}
    nearest = make_mosaic(demo_target, cache, tmp_path / "n.png", cols=12, rule=ReuseRule.nearest(), report=False,
                          client=client, progress=False)
    assert nearest.most_uses > share_cap
    given = make_mosaic(demo_target, cache, tmp_path / "u.png", cols=10, rule=ReuseRule.unique(), report=False,
                        client=client, progress=False)
    assert given.cols == 10 and given.most_uses == 1
    # --unique proves how near the least total cost it is, within mosaic.make.gap, and says so
    assert 0 <= given.proven_gap <= 0.01 and json.load(open(given.quality))["proven_gap"] == given.proven_gap
    assert f"proven within {100 * given.proven_gap:.2f} %" in str(given)
