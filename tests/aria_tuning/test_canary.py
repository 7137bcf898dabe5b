"""The canary plan and its error check."""

from __future__ import annotations

import pytest
from aria_tuning import canary
from aria_tuning.errors import ConfigurationError


def test_the_shares_go_first_then_the_steps_above_it_then_all() -> None:
    assert canary.shares(10) == [10, 100]
    assert canary.shares(10, [50, 25, 5]) == [10, 25, 50, 100]
    assert canary.shares("10", "[25, 50]") == [10, 25, 50, 100]
    assert canary.shares(100, [50]) == [100]
    assert canary.next_share([10, 50, 100], 10) == 50 and canary.next_share([10, 50, 100], 50) == 100


@pytest.mark.parametrize("bad", [0, 101, "ten"])
def test_a_share_outside_1_to_100_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"1\.\.100"):
        canary.shares(bad)


def test_the_others_keep_the_rest_in_proportion() -> None:
    assert canary.split_with({"a": 100}, "c", 10) == {"c": 10, "a": 90}
    assert canary.split_with({"a": 50, "b": 50, "c": 0}, "c", 20) == {"c": 20, "a": 40, "b": 40}
    assert canary.split_with({"a": 100, "c": 10}, "c", 100) == {"c": 100}


def test_a_rise_in_errors_beyond_the_allowance_is_unhealthy() -> None:
    assert canary.error_verdict((100, 1), (900, 9), 0.01).healthy
    assert not canary.error_verdict((100, 5), (900, 9), 0.01).healthy
    assert "exceeds the baseline" in canary.error_verdict((10, 10), (90, 0), 0.01).reason
    assert canary.error_verdict((0, 0), (0, 0), 0.0).healthy  # no traffic: nothing rose
