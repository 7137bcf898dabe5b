"""Register and deploy against the Vertex emulator: both idempotent, aliases and traffic as promised."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from aria_tuning.errors import ConfigurationError, VertexError
from aria_tuning.hooks import VertexHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.operators.deploy import DeployModelOperator
from aria_tuning.operators.registry import LABEL_TUNING_JOB, RegisterModelOperator
from aria_tuning.resources import resource_id, resource_region

from scripts.emulators import emulator_control
from tests.aria_tuning.conftest import FAST, Emulator, new_ti, run_direct, submit, tuning_operator
from tests.support import airflow as airflow_support

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")


def tune(datasets: dict[str, str], model: str = "text-bison@001") -> dict[str, Any]:
    return run_direct(tuning_operator(datasets, model), new_ti())


def register(tuned: dict[str, Any], parent: str, ti: Any = None) -> dict[str, Any]:
    operator = RegisterModelOperator(
        task_id="register",
        tuned_model=tuned["tuned_model"],
        tuning_job=tuned["job"],
        model_display_name=parent,
        base_model="text-bison@001",
        dataset_version="2024-01-01",
        train_steps=5,
    )
    return run_direct(operator, ti or new_ti("register"))


def deploy_operator(version: str, endpoint: str, **kwargs: Any) -> DeployModelOperator:
    return DeployModelOperator(
        task_id="deploy", model_version=version, endpoint_display_name=endpoint, **FAST, **kwargs
    )


def deploy(version: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
    return run_direct(deploy_operator(version, endpoint, **kwargs), new_ti("deploy"))


def versions(model: str, job_label: str | None = None) -> list[Any]:
    client = VertexHook().client("model", resource_region(model))
    request = {"name": model, "filter": f'labels.{LABEL_TUNING_JOB}="{job_label}"' if job_label else ""}
    return list(client.list_model_versions(request=request))


def endpoint_state(name: str) -> Any:
    return VertexHook().client("endpoint", resource_region(name)).get_endpoint(name=name)


@pytest.fixture(scope="module")
def two_tuned(vertex_emulator: str, airflow_db: None, datasets: dict[str, str]) -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:  # the connection of `vertex`, for this module's setup
        airflow_support.use_emulators(vertex_emulator, patch)
        return [tune(datasets), tune(datasets)]


def test_register_is_idempotent_and_moves_the_candidate_alias(two_tuned: list[dict[str, Any]]) -> None:
    parent = f"ARIA-text-{uuid.uuid4().hex[:6]}"
    first, again = register(two_tuned[0], parent), register(two_tuned[0], parent)
    assert first["created"] and not again["created"]
    assert again["model_version"] == first["model_version"] and "candidate" in first["aliases"]
    assert len(versions(first["model"], resource_id(two_tuned[0]["job"]))) == 1

    second = register(two_tuned[1], parent)
    assert second["model"] == first["model"] and second["version_id"] != first["version_id"]
    by_version = {v.version_id: list(v.version_aliases) for v in versions(first["model"])}
    assert (
        "candidate" in by_version[second["version_id"]] and "candidate" not in by_version[first["version_id"]]
    )
    labels = dict(versions(first["model"], resource_id(two_tuned[1]["job"]))[0].labels)
    assert labels["base-model"] == "text-bison-001" and labels["dataset-version"] == "2024-01-01"
    assert labels["train-steps"] == "5" and labels["aria-dag-run"]


def test_a_tuned_model_with_the_parent_name_is_not_taken_for_the_parent(datasets: dict[str, str]) -> None:
    name = f"ARIA-text-{uuid.uuid4().hex[:6]}"
    tuned = run_direct(tuning_operator(datasets, tuned_model_display_name=name), new_ti())
    registered = register(tuned, name)
    assert registered["model"] != tuned["tuned_model"].split("@", 1)[0] and registered["version_id"] == "1"


def test_deploy_is_idempotent_canary_and_undeploys_older(two_tuned: list[dict[str, Any]]) -> None:
    parent, endpoint = f"ARIA-text-{uuid.uuid4().hex[:6]}", f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    v1, v2 = register(two_tuned[0], parent), register(two_tuned[1], parent)

    first = deploy(v1["model_version"], endpoint)
    again = deploy(v1["model_version"], endpoint)
    assert first["deployed"] and not again["deployed"]
    assert again["deployed_model_id"] == first["deployed_model_id"] and again["endpoint"] == first["endpoint"]
    assert len(endpoint_state(first["endpoint"]).deployed_models) == 1
    assert first["traffic_split"] == {first["deployed_model_id"]: 100}

    canary = deploy(v2["model_version"], endpoint, traffic_percentage=10)
    assert canary["traffic_split"] == {canary["deployed_model_id"]: 10, first["deployed_model_id"]: 90}

    full = deploy(v1["model_version"], endpoint, traffic_percentage=100)  # already there: changes nothing
    assert not full["deployed"] and full["traffic_split"] == canary["traffic_split"]


def test_deploy_all_traffic_then_undeploy_older(two_tuned: list[dict[str, Any]]) -> None:
    parent, endpoint = f"ARIA-text-{uuid.uuid4().hex[:6]}", f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    v1, v2 = register(two_tuned[0], parent), register(two_tuned[1], parent)
    deploy(v1["model_version"], endpoint)
    result = deploy(v2["model_version"], endpoint, traffic_percentage=100, undeploy_older=True)
    deployed = endpoint_state(result["endpoint"]).deployed_models
    assert [d.id for d in deployed] == [result["deployed_model_id"]]
    assert result["traffic_split"] == {result["deployed_model_id"]: 100}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"model_version": "ARIA-text"},
            "model_version must be projects/.../models/ID@VERSION, got 'ARIA-text'",
        ),
        ({"traffic_percentage": 0}, "traffic_percentage must be 1..100, got 0"),
    ],
)
def test_deploy_rejects_bad_parameters(vertex: str, bad: dict[str, Any], message: str) -> None:
    kwargs = {"model_version": "projects/aria-local/locations/us-central1/models/1@1", **bad}
    # A bad value fails at once, without the task's retries (a retry would fail alike).
    with pytest.raises(AirflowFailException, match=re.escape(message)) as failed:
        DeployModelOperator(task_id="deploy", **kwargs).execute({"ti": new_ti("deploy")})
    assert isinstance(failed.value.__cause__, ConfigurationError)
    assert str(failed.value.__cause__) == message


def test_a_rerun_waits_for_the_deploy_still_in_flight_instead_of_deploying_twice(
    vertex: str, two_tuned: list[dict[str, Any]]
) -> None:
    version = register(two_tuned[0], f"ARIA-text-{uuid.uuid4().hex[:6]}")["model_version"]
    endpoint = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    emulator_control(vertex, "operations:holdNext", {"type": "DeployModel"})  # in flight until released
    try:
        first_try = submit(deploy_operator(version, endpoint), new_ti("deploy"))  # then the worker dies
        retry = deploy_operator(version, endpoint)
        waits_on = submit(retry, new_ti("deploy"))
    finally:
        emulator_control(vertex, "operations:next", method="DELETE")
    assert waits_on.operation_names == first_try.operation_names
    (held,) = first_try.operation_names

    result = run_direct(
        retry,
        new_ti("deploy"),
        before_trigger=lambda _: emulator_control(vertex, f"operations/{held}:release", {}),
    )
    assert not result["deployed"]  # the first try's deploy is the one that serves
    deployed = endpoint_state(result["endpoint"]).deployed_models
    assert [d.id for d in deployed] == [result["deployed_model_id"]]


def test_a_failed_deploy_operation_names_the_endpoint_and_quotes_vertex() -> None:
    endpoint = "projects/aria-local/locations/us-central1/endpoints/7"
    event = {
        "status": "error",
        "operations": [f"{endpoint}/operations/9"],
        "operation": f"{endpoint}/operations/9",
        "message": "Quota exceeded for custom model serving",
    }
    operator = deploy_operator("projects/aria-local/locations/us-central1/models/1@1", "ep")
    with pytest.raises(VertexError, match="Quota exceeded for custom model serving") as failed:
        operator.execute_deployed({}, event)  # type: ignore[arg-type]
    assert failed.value.resource == endpoint


def test_an_alias_nobody_holds_is_none_and_other_errors_name_the_model(emulator: Emulator) -> None:
    from google.api_core.exceptions import Forbidden

    model = f"projects/aria-local/locations/us-central1/models/missing-{uuid.uuid4().hex[:6]}"
    registry = ModelRegistryHook()
    assert registry.version_with_alias(model, "production") is None
    emulator.fault(status=403, rate=1.0, method="GET", path=f"{model.rsplit('/', 1)[1]}@production", count=1)
    with pytest.raises(VertexError, match="reading the version with alias production") as failed:
        registry.version_with_alias(model, "production")
    assert failed.value.resource == model and isinstance(failed.value.__cause__, Forbidden)
