"""Traffic split arithmetic of the deploy operator, and which deployed model serves a version."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aria_tuning.errors import ConfigurationError
from aria_tuning.traffic import canary_split, find_deployed, percentage, scaled_split, split_without


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


def _endpoint(*deployed: tuple[str, str, str], traffic: dict[str, int] | None = None) -> SimpleNamespace:
    """An endpoint as the GAPIC client returns it: deployed models (id, model, model_version_id)."""
    models = [SimpleNamespace(id=i, model=model, model_version_id=version) for i, model, version in deployed]
    return SimpleNamespace(deployed_models=models, traffic_split=traffic or {})


MODEL = "projects/p/locations/us-central1/models/42"


@pytest.mark.parametrize(
    ("deployed", "wanted", "expected"),
    [
        ([], f"{MODEL}@1", None),
        ([("7", MODEL, "1")], f"{MODEL}@1", "7"),
        ([("7", MODEL, "1"), ("8", MODEL, "2")], f"{MODEL}@2", "8"),
        ([("7", MODEL, "1")], f"{MODEL}@2", None),  # another version of the same model
        ([("7", f"{MODEL}0", "1")], f"{MODEL}@1", None),  # a model whose id starts the same
        ([("7", f"{MODEL}@3", "")], f"{MODEL}@3", "7"),  # Vertex left model_version_id empty
        # A reply without model_version_id cannot tell versions apart: any version of the model matches.
        ([("7", f"{MODEL}@3", "")], f"{MODEL}@4", "7"),
        ([("7", "projects/p/locations/us-central1/models/43", "1")], f"{MODEL}@1", None),
    ],
)
def test_find_deployed_names_the_deployed_model_serving_that_version(
    deployed: list[tuple[str, str, str]], wanted: str, expected: str | None
) -> None:
    assert find_deployed(_endpoint(*deployed), wanted) == expected


@pytest.mark.parametrize(
    ("traffic", "removed", "keep", "expected"),
    [
        ({"1": 90, "2": 10}, "2", "1", {"1": 100}),
        ({"1": 90, "2": 10}, "2", "2", {"1": 100}),  # keeping the one removed keeps nothing of it
        ({"1": 60, "2": 39, "3": 1}, "1", None, {"2": 98, "3": 2}),
        ({"1": 99, "2": 1}, "1", None, {"2": 100}),  # a 1% share is a share
        ({"1": 100, "2": 0}, "1", None, {}),
        ({}, "1", None, {}),
    ],
)
def test_traffic_without_a_removed_model(
    traffic: dict[str, int], removed: str, keep: str | None, expected: dict[str, int]
) -> None:
    assert split_without(_endpoint(traffic=traffic), removed, keep) == expected


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("100", 100), (" 7 ", 7), (50, 50)])
def test_a_percentage_is_a_whole_number_from_1_to_100(value: object, expected: int) -> None:
    assert percentage(value) == expected


@pytest.mark.parametrize(
    ("value", "name", "message"),
    [
        (0, "traffic_percentage", "traffic_percentage must be 1..100, got 0"),
        (101, "traffic_percentage", "traffic_percentage must be 1..100, got 101"),
        ("ten", "canary", "canary must be 1..100, got 'ten'"),
        (None, "traffic_percentage", "traffic_percentage must be 1..100, got None"),
        (12.5, "traffic_percentage", "traffic_percentage must be 1..100, got 12.5"),
    ],
)
def test_anything_else_is_refused_by_name(value: object, name: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        percentage(value) if name == "traffic_percentage" else percentage(value, name)
    assert str(refused.value) == message
