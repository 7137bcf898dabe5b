"""Tear-down against the Vertex emulator: the tuning run's own model and endpoints go, ours stay."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aria_tuning.errors import VertexNotFound
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.operators.teardown import CleanUpTuningOutputsOperator, TearDownEndpointOperator
from aria_tuning.resources import location_of

from tests.aria_tuning.conftest import FAST, new_ti, run_direct, tuning_operator
from tests.aria_tuning.operators.test_registry_deploy import deploy, register

pytestmark = pytest.mark.usefixtures("transport")


def exists(get: Any, name: str) -> bool:
    try:
        get(name)
    except VertexNotFound:
        return False
    return True


def clean_up(tuned: dict[str, Any], registered: str | None) -> dict[str, Any]:
    operator = CleanUpTuningOutputsOperator(
        task_id="clean_up",
        tuning_job=tuned["job"],
        method=tuned["method"],
        registered_version=registered,
        **FAST,
    )
    return run_direct(operator, new_ti("clean_up"))


@pytest.mark.parametrize("model", ["text-bison@001", "gemini-2.5-flash"])
def test_the_tuning_runs_own_model_and_endpoints_go_and_the_registered_version_stays(
    vertex: str, datasets: dict[str, str], model: str
) -> None:
    tuned = run_direct(tuning_operator(datasets, model), new_ti())
    registered = register(tuned, f"ARIA-text-{uuid.uuid4().hex[:6]}")
    endpoints, models = EndpointHook(), ModelRegistryHook()
    job_model = tuned["tuned_model"].split("@", 1)[0]
    assert exists(endpoints.get_endpoint, tuned["endpoint"]) and exists(models.get_model, job_model)

    result = clean_up(tuned, registered["model_version"])

    assert tuned["endpoint"] in result["deleted_endpoints"] and result["deleted_models"] == [job_model]
    assert not exists(endpoints.get_endpoint, tuned["endpoint"])
    assert not exists(models.get_model, job_model)
    assert exists(models.get_model, registered["model_version"])
    # Nothing of the job's deployments is left anywhere in the location.
    location = location_of(job_model)
    serving = [
        e.name for e in endpoints.list_endpoints(location) for d in e.deployed_models if job_model in d.model
    ]
    assert serving == []
    # A second run (the task's retry) finds nothing left to do.
    assert clean_up(tuned, registered["model_version"]) == {"deleted_endpoints": [], "deleted_models": []}


def test_without_a_registered_version_only_the_endpoints_go(vertex: str, datasets: dict[str, str]) -> None:
    tuned = run_direct(tuning_operator(datasets), new_ti())
    result = clean_up(tuned, None)
    assert result == {"deleted_endpoints": [tuned["endpoint"]], "deleted_models": []}
    assert exists(ModelRegistryHook().get_model, tuned["tuned_model"])  # a re-run of register needs it


def test_an_endpoint_that_also_serves_another_model_is_kept(vertex: str, datasets: dict[str, str]) -> None:
    tuned = run_direct(tuning_operator(datasets), new_ti())
    other = register(run_direct(tuning_operator(datasets), new_ti()), f"ARIA-text-{uuid.uuid4().hex[:6]}")
    # Someone deployed another model to the job's endpoint since (the emulator's deploys are done at once).
    EndpointHook().deploy(
        tuned["endpoint"],
        {"model": other["model_version"], "automatic_resources": {"min_replica_count": 1}},
        {"0": 50, **{str(d.id): 50 for d in EndpointHook().get_endpoint(tuned["endpoint"]).deployed_models}},
    )
    assert len(EndpointHook().get_endpoint(tuned["endpoint"]).deployed_models) == 2
    result = clean_up(tuned, None)
    assert result["deleted_endpoints"] == []
    assert exists(EndpointHook().get_endpoint, tuned["endpoint"])


def test_the_evaluation_endpoint_is_torn_down_by_name(vertex: str, datasets: dict[str, str]) -> None:
    registered = register(
        run_direct(tuning_operator(datasets), new_ti()), f"ARIA-text-{uuid.uuid4().hex[:6]}"
    )
    name = f"ARIA-eval-{uuid.uuid4().hex[:6]}"
    deployed = deploy(registered["model_version"], name)
    location = location_of(deployed["endpoint"])
    operator = TearDownEndpointOperator(
        task_id="tear_down", location=location, endpoint_display_name=name, **FAST
    )
    assert run_direct(operator, new_ti("tear_down"))["deleted_endpoints"] == [deployed["endpoint"]]
    assert EndpointHook().find_named(location, name) == []
    assert exists(ModelRegistryHook().get_model, registered["model_version"])
    # Nothing of that name left: a second run is a no-op.
    assert run_direct(operator, new_ti("tear_down"))["deleted_endpoints"] == []
