"""ReuseRule: one spelling of the reuse rule, validated once, its errors naming parameters."""
import dask.config
import pytest

from pipeline import MosaicError, ReuseRule
from pipeline.errors import message_with_names


def test_rules_are_validated_once_with_the_parameter_named():
    with pytest.raises(MosaicError, match="`max_uses` must be a whole number of at least 1, got 0"):
        ReuseRule(0)
    with pytest.raises(MosaicError, match="`min_repeat_distance` must be a whole number of at least 0, got -1"):
        ReuseRule(None, -1)
    assert ReuseRule.unique(3) == ReuseRule(1, 3) and ReuseRule.unique().is_unique and not ReuseRule().is_capped


def test_the_default_rule_comes_from_the_configuration():
    # The default spreads: no tile on more than 1 % of the cells, nor within 2 cells of itself.
    assert ReuseRule.from_config() == ReuseRule(None, 2, 0.01)
    with dask.config.set({"mosaic.make.max-uses": 4, "mosaic.make.min-repeat-distance": 3, "mosaic.make.max-share": None}):
        assert ReuseRule.from_config() == ReuseRule(4, 3)


def test_a_share_cap_becomes_a_number_of_uses_for_the_grid():
    rule = ReuseRule(None, 2, 0.01)
    assert rule.for_grid(4800, 12288) == ReuseRule(48, 2)
    # A library too small to fill the grid under the share: the fewest uses that fill it.
    assert rule.for_grid(4800, 20).max_uses == 240
    # Fewer than 100 cells: still at least one use.
    assert rule.for_grid(50, 1000).max_uses == 1
    # A fixed max_uses below the share's cap wins; a rule without a share is left alone.
    assert ReuseRule(10, 0, 0.01).for_grid(4800, 12288).max_uses == 10
    assert ReuseRule.nearest().for_grid(4800, 10) == ReuseRule()
    with pytest.raises(MosaicError, match="`max_share` must be a fraction"):
        ReuseRule(None, 0, 1.5)


def test_a_rule_that_cannot_fill_the_grid_says_what_would_work():
    ReuseRule(3).check_fits(90, 30)  # exactly enough
    with pytest.raises(MosaicError) as raised:
        ReuseRule(3).check_fits(91, 30)
    assert "use `max_uses` 4 or more" in str(raised.value)
    flags = {"max_uses": "--max-uses", "cols": "--cols"}
    assert message_with_names(raised.value, flags).endswith("use --max-uses 4 or more, or fewer --cols")
    with pytest.raises(MosaicError, match="`unique` needs a distinct tile for each of 31 cells"):
        ReuseRule.unique().check_fits(31, 30)
