"""Seeded fault rules: a rule's `seed`, or the emulator's `--fault-seed`, fixes which calls a
rate-based rule strikes, so a run with random faults can be repeated exactly."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import Gapic, gapic_clients


@pytest.fixture
def faults(vertex_emulator: str) -> Iterator[None]:
    yield
    emulator_control(vertex_emulator, "faults", method="DELETE")


def struck(gapic: Gapic, endpoint: str, calls: int) -> list[bool]:
    """Which of `calls` reads of `endpoint` a 503 rule struck."""
    pattern = []
    for _ in range(calls):
        try:
            gapic.endpoints.get_endpoint(name=endpoint, retry=None)
            pattern.append(False)
        except exceptions.ServiceUnavailable:
            pattern.append(True)
    return pattern


def expected_strikes(seed: int, rule_id: int, rate: float, calls: int) -> list[bool]:
    """What faults.py promises: the rule's own stream, seeded from the seed and the rule id."""
    stream = random.Random(f"{seed}/{rule_id}")
    return [stream.random() < rate for _ in range(calls)]


def test_a_seeded_rule_strikes_the_calls_its_seed_says(
    gapic: Gapic, gpu_parent: str, vertex_emulator: str, faults: None
) -> None:
    endpoint = gapic.endpoints.create_endpoint(
        parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name="seeded")
    ).result()
    rule = emulator_control(
        vertex_emulator, "faults", {"status": 503, "rate": 0.5, "path": f"{endpoint.name}$", "seed": 1234}
    )
    assert rule["seed"] == 1234 and rule["when"] == "before" and rule["mode"] == "error"
    pattern = struck(gapic, endpoint.name, 32)
    assert pattern == expected_strikes(1234, rule["id"], 0.5, 32)
    assert 0 < sum(pattern) < 32  # a real mix: the comparison above is not all-or-nothing


def test_fault_seed_on_the_command_line_seeds_rules_without_their_own(
    vertex_emulator_factory: Callable[..., Any], project: str
) -> None:
    emulator = vertex_emulator_factory(extra_args=("--fault-seed", "7"))
    gapic = gapic_clients(emulator.url)
    endpoint = gapic.endpoints.create_endpoint(
        parent=f"projects/{project}/locations/us-central1", endpoint=aiplatform_v1.Endpoint(display_name="s")
    ).result()
    unseeded = emulator_control(emulator.url, "faults", {"status": 503, "rate": 0.5, "path": "endpoints/"})
    pattern = struck(gapic, endpoint.name, 32)
    assert pattern == expected_strikes(7, unseeded["id"], 0.5, 32)
