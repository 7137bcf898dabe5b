"""Traffic split arithmetic of the deploy operator."""

from __future__ import annotations

import pytest
from aria_tuning.traffic import canary_split, scaled_split


@pytest.mark.parametrize(
    ("current", "percent", "expected"),
    [
        ({}, 10, {"0": 100}),
        ({"1": 100}, 100, {"0": 100}),
        ({"1": 100}, 10, {"0": 10, "1": 90}),
        ({"1": 50, "2": 50}, 20, {"0": 20, "1": 40, "2": 40}),
        ({"1": 67, "2": 33, "3": 0}, 10, {"0": 10, "1": 61, "2": 29}),
    ],
)
def test_canary_split_sums_to_100(current: dict, percent: int, expected: dict) -> None:
    split = canary_split(current, percent)
    assert split == expected and sum(split.values()) == 100


@pytest.mark.parametrize(
    ("shares", "total", "expected"),
    [
        ({"1": 90}, 100, {"1": 100}),
        ({"1": 1, "2": 1, "3": 1}, 100, {"1": 34, "2": 33, "3": 33}),
        ({"1": 30, "2": 10}, 80, {"1": 60, "2": 20}),
    ],
)
def test_scaled_split_adds_up_to_exactly_the_total(shares: dict, total: int, expected: dict) -> None:
    assert scaled_split(shares, total) == expected
