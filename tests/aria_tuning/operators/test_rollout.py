"""Canary rollout and rollback against the Vertex emulator: traffic, aliases and what stays deployed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from aria_tuning.hooks import VertexHook
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.operators.rollback import RollbackOperator
from aria_tuning.operators.rollout import CanaryRolloutOperator
from aria_tuning.production_history import LABEL_PROMOTED_AT, LABEL_ROLLED_BACK_AT
from aria_tuning.resources import location_of, resource_region
from google.api_core.exceptions import InternalServerError

from scripts.emulators import emulator_control
from tests.aria_tuning.conftest import FAST, new_ti, run_direct, tuning_operator
from tests.aria_tuning.operators.test_registry_deploy import register

pytestmark = pytest.mark.usefixtures("transport")


@pytest.fixture(autouse=True)
def monitoring(vertex: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cloud Monitoring is the emulator's REST port, whichever transport the test's Vertex calls use."""
    monkeypatch.setenv("ARIA_MONITORING_API_ENDPOINT", vertex)


def roll_out(version: str, endpoint: str, **kwargs: Any) -> Any:
    operator = CanaryRolloutOperator(
        task_id="deploy_model", model_version=version, endpoint_display_name=endpoint, **FAST, **kwargs
    )
    return run_direct(operator, new_ti("deploy_model"))


def roll_back(parent: str, location: str, endpoint: str, version: str = "previous production") -> Any:
    operator = RollbackOperator(
        task_id="roll_back",
        model_display_name=parent,
        location=location,
        endpoint_display_name=endpoint,
        version=version,
        **FAST,
    )
    return run_direct(operator, new_ti("roll_back"))


def state(endpoint: str) -> Any:
    return EndpointHook().get_endpoint(endpoint)


def serialized(endpoint: str) -> bytes:
    found = state(endpoint)
    return bytes(type(found).serialize(found))


def aliases(version: str) -> list[str]:
    return list(ModelRegistryHook().get_model(version).version_aliases)


def labels(version: str) -> dict[str, str]:
    return dict(ModelRegistryHook().get_model(version).labels)


@pytest.fixture(scope="module")
def versions(vertex_emulator: str, airflow_db: None, datasets: dict[str, str]) -> list[str]:
    """Three versions of one parent (tuned once each; the tests share them, each with its own endpoint)."""
    from tests.support import airflow as airflow_support

    parent = f"ARIA-text-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as patch:
        airflow_support.use_emulators(vertex_emulator, patch)
        return [
            register(run_direct(tuning_operator(datasets), new_ti()), parent)["model_version"]
            for _ in range(3)
        ]


def test_a_first_rollout_takes_all_traffic_and_production(versions: list[str]) -> None:
    endpoint = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    result = roll_out(versions[0], endpoint, traffic_percentage=10, soak_seconds=0)
    # Nothing else serves: a canary has nothing to compare with, so it gets everything at once.
    assert result["steps"] == [] and result["traffic_split"] == {result["deployed_model_id"]: 100}
    assert "production" in aliases(versions[0]) and labels(versions[0])[LABEL_PROMOTED_AT].isdigit()


def test_a_canary_steps_up_to_all_traffic_then_the_replaced_version_is_undeployed(
    versions: list[str],
) -> None:
    endpoint = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    first = roll_out(versions[0], endpoint, traffic_percentage=100)
    result = roll_out(versions[1], endpoint, traffic_percentage=10, canary_steps=[50], soak_seconds=0.2)
    assert [step["share"] for step in result["steps"]] == [10, 50]
    assert all("error rate 0.00%" in step["verdict"] for step in result["steps"])
    assert result["retired"] == [versions[0]]
    after = state(result["endpoint"])
    assert dict(after.traffic_split) == {result["deployed_model_id"]: 100}
    assert [d.id for d in after.deployed_models] == [result["deployed_model_id"]]
    assert first["deployed_model_id"] not in {d.id for d in after.deployed_models}
    assert "production" in aliases(versions[1]) and "production" not in aliases(versions[0])
    # A retry of the finished rollout changes nothing.
    before = serialized(result["endpoint"])
    assert roll_out(versions[1], endpoint, soak_seconds=0)["traffic_split"] == result["traffic_split"]
    assert serialized(result["endpoint"]) == before


def test_a_canary_whose_errors_rise_is_rolled_back_and_rejected(vertex: str, versions: list[str]) -> None:
    endpoint_name = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    production = roll_out(versions[0], endpoint_name, traffic_percentage=100)
    endpoint = production["endpoint"]
    # The canary at 10%, then its model server starts failing while users send requests.
    EndpointHook().deploy(
        endpoint,
        {"model": versions[2], "automatic_resources": {"min_replica_count": 1}},
        {"0": 10, production["deployed_model_id"]: 90},
    )
    emulator_control(vertex, f"models/{versions[2]}:fail", {})
    try:
        # Users' requests, not retried (a user's retry would land on the same deployed model anyway).
        client = VertexHook().client("prediction", resource_region(endpoint))
        failures = 0
        for n in range(80):
            try:
                client.predict(
                    endpoint=endpoint, instances=[{"prompt": f"¿Dónde está mi pedido {n}?"}], retry=None
                )
            except InternalServerError:  # the canary's share fails: what users would see
                failures += 1
        assert 0 < failures < 80  # some requests reached the canary, most the production version
        with pytest.raises(AirflowFailException, match="rolled back") as failed:
            roll_out(versions[2], endpoint_name, traffic_percentage=10, soak_seconds=0)
    finally:
        emulator_control(vertex, f"models/{versions[2]}:restore", {})
    assert "error rate" in str(failed.value)
    after = state(endpoint)
    assert dict(after.traffic_split) == {production["deployed_model_id"]: 100}
    assert [d.id for d in after.deployed_models] == [production["deployed_model_id"]]
    assert "rejected" in aliases(versions[2]) and "production" in aliases(versions[0])


def test_rollback_restores_the_previous_production_in_one_run_and_is_idempotent(versions: list[str]) -> None:
    endpoint_name = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    location = location_of(versions[0])
    parent = ModelRegistryHook().get_model(versions[0]).display_name
    roll_out(versions[0], endpoint_name, traffic_percentage=100)
    promoted = roll_out(versions[1], endpoint_name, traffic_percentage=100)
    assert [f"{d.model}@{d.model_version_id}" for d in state(promoted["endpoint"]).deployed_models] == [
        versions[1]
    ]

    restored = roll_back(parent, location, endpoint_name)
    # The previous production version was undeployed by the rollout: deployed again, all traffic.
    assert restored["model_version"] == versions[0] and restored["rolled_back_from"] == versions[1]
    assert restored["deployed_models"] == [versions[0]]
    assert restored["traffic_split"] == {restored["deployed_model_id"]: 100}
    assert "production" in aliases(versions[0]) and "production" not in aliases(versions[1])
    assert LABEL_ROLLED_BACK_AT in labels(versions[1])

    before = serialized(restored["endpoint"])
    again = roll_back(parent, location, endpoint_name)
    assert again["model_version"] == versions[0] and again["rolled_back_from"] is None
    assert serialized(restored["endpoint"]) == before  # nothing changed the second time


def test_rollback_refuses_a_version_that_is_not_in_the_registry(versions: list[str]) -> None:
    endpoint_name = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    location = location_of(versions[0])
    parent = ModelRegistryHook().get_model(versions[0]).display_name
    result = roll_out(versions[0], endpoint_name, traffic_percentage=100)
    before = serialized(result["endpoint"])
    with pytest.raises(AirflowFailException, match=r"'99' of .* is not in the Model Registry"):
        roll_back(parent, location, endpoint_name, version="99")
    with pytest.raises(AirflowFailException, match="no model named"):
        roll_back("ARIA-text-none", location, endpoint_name, version="1")
    assert serialized(result["endpoint"]) == before
