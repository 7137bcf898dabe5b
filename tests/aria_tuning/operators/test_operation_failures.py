"""Deploys and undeploys whose long-running operations really fail or hang on the emulator.

The emulator fails or holds the operations the operator starts (`/_emulator/operations`), so each
path runs through real clients, a real trigger and a real failed Operation: a failed deploy names
the endpoint and Vertex's words and deploys nothing; a retry after a failed in-flight deploy deploys
once; a deploy is never repeated blindly after a 503, its retry waits for the one that landed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from aria_tuning.errors import VertexError
from aria_tuning.hooks import VertexHook
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.operators.teardown import TearDownEndpointOperator
from aria_tuning.triggers import VertexOperationTrigger

from scripts.emulators import emulator_control
from tests.aria_tuning.conftest import (
    FAST,
    Emulator,
    TaskInstance,
    first_event,
    new_ti,
    roundtrip,
    run_direct,
)
from tests.aria_tuning.operators.test_registry_deploy import deploy_operator, endpoint_state
from tests.support import airflow as airflow_support
from tests.support.emulator_settings import EmulatorSettings

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")

LOCATION = f"projects/{airflow_support.PROJECT}/locations/us-central1"
QUOTA = 8  # google.rpc.Code RESOURCE_EXHAUSTED, what Vertex answers a deploy beyond the serving quota
QUOTA_MESSAGE = "The following quota metrics exceed quota limits: custom_model_serving_nvidia_l4_gpus"


@pytest.fixture
def operations(vertex: str) -> Iterator[Any]:
    """`operations(route, body)` on /_emulator/operations...; the test's failNext/holdNext rules are
    removed when it ends (one left unused must not fail a later test's deploy)."""
    yield lambda route, body=None: emulator_control(vertex, f"operations{route}", body)
    emulator_control(vertex, "operations:next", method="DELETE")


@pytest.fixture
def version(vertex: str) -> str:
    """A fresh model version to deploy (uploaded, not tuned: deploying does not care)."""
    client = VertexHook().client("model", "us-central1")
    model = {"display_name": f"ARIA-text-{uuid.uuid4().hex[:6]}", "artifact_uri": "gs://aria-models/x"}
    uploaded = client.upload_model(parent=LOCATION, model=model).result(timeout=30)
    return f"{uploaded.model}@{uploaded.model_version_id}"


@pytest.fixture
def endpoint(vertex: str) -> tuple[str, str]:
    """(display name, resource name) of a new endpoint the deploy operator will find by its name."""
    display = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    return display, str(EndpointHook().get_or_create(LOCATION, display, timeout=30).name)


def deferral(operator: Any, ti: TaskInstance) -> TaskDeferred:
    """Run execute() up to its deferral and return it (trigger, resume method and kwargs)."""
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti, "task_instance": ti})
    return deferred.value


def resume(operator: Any, ti: TaskInstance, deferred: TaskDeferred) -> Any:
    """Carry on from `deferred` as the triggerer and the worker would, to the task's end."""
    context: Any = {"ti": ti, "task_instance": ti}
    while True:
        event = asyncio.run(first_event(roundtrip(deferred.trigger)))
        try:
            return getattr(operator, deferred.method_name)(context, **(deferred.kwargs or {}), event=event)
        except TaskDeferred as again:
            deferred = again


def deploy_operations(endpoint: str) -> list[tuple[bool, int]]:
    """(done, error code) of every DeployModel operation of `endpoint`, oldest first."""
    client = VertexHook().client("endpoint", "us-central1")
    listed = client.list_operations(request={"name": endpoint})
    return [
        (op.done, op.error.code)
        for op in listed.operations
        if op.metadata.type_url.endswith(".DeployModelOperationMetadata")
    ]


def test_a_failed_deploy_operation_fails_the_task_naming_the_endpoint_and_vertex_message(
    operations: Any, version: str, endpoint: tuple[str, str]
) -> None:
    display, name = endpoint
    operations(":failNext", {"type": "DeployModel", "path": name, "code": QUOTA, "message": QUOTA_MESSAGE})
    with pytest.raises(VertexError, match=QUOTA_MESSAGE) as failed:
        run_direct(deploy_operator(version, display), new_ti("deploy"))
    assert failed.value.resource == name and f"deploying {version} failed" in str(failed.value)
    assert list(endpoint_state(name).deployed_models) == []
    assert deploy_operations(name) == [(True, QUOTA)]


def test_a_retry_after_a_failed_in_flight_deploy_deploys_once(
    operations: Any, version: str, endpoint: tuple[str, str]
) -> None:
    display, name = endpoint
    operations(":holdNext", {"type": "DeployModel", "path": name})
    first_try = deferral(deploy_operator(version, display), new_ti("deploy"))  # then its worker dies
    (in_flight,) = first_try.trigger.operation_names
    retry, ti = deploy_operator(version, display), new_ti("deploy")
    waits = deferral(retry, ti)
    assert waits.method_name == "execute_after_in_flight"
    assert waits.trigger.operation_names == [in_flight]

    operations(f"/{in_flight}:fail", {"code": 13, "message": "the replica did not start"})
    result = resume(retry, ti, waits)
    assert result["deployed"] and result["endpoint"] == name
    assert [d.id for d in endpoint_state(name).deployed_models] == [result["deployed_model_id"]]
    assert deploy_operations(name) == [(True, 13), (True, 0)]  # the failed one, then exactly one more


def test_a_deploy_whose_model_is_gone_when_it_finishes_is_not_reported_deployed(
    version: str, endpoint: tuple[str, str]
) -> None:
    display, name = endpoint
    operator, ti = deploy_operator(version, display), new_ti("deploy")
    deploying = deferral(operator, ti)
    # The operation succeeds, but before the operator reads the endpoint someone undeploys the model
    # (another run, a person in the console, the reconciler).
    deployed = endpoint_state(name).deployed_models[0].id
    hook = EndpointHook()
    undeploy = hook.undeploy(name, deployed)
    assert VertexHook().client("endpoint", "us-central1").get_operation(request={"name": undeploy}).done
    with pytest.raises(VertexError, match="is not deployed after the deploy operation") as failed:
        resume(operator, ti, deploying)
    assert failed.value.resource == name and version in str(failed.value)


def test_the_oldest_of_two_endpoints_with_the_same_name_is_deployed_to(vertex: str, version: str) -> None:
    display = f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    client = VertexHook().client("endpoint", "us-central1")
    older, newer = (
        client.create_endpoint(parent=LOCATION, endpoint={"display_name": display}).result(timeout=30)
        for _ in range(2)
    )
    assert older.create_time < newer.create_time
    result = run_direct(deploy_operator(version, display), new_ti("deploy"))
    assert result["endpoint"] == older.name
    assert list(endpoint_state(newer.name).deployed_models) == []


def test_a_503_on_deploy_is_not_retried_and_the_task_retry_waits_for_the_deploy_that_landed(
    operations: Any, emulator: Emulator, version: str, endpoint: tuple[str, str]
) -> None:
    display, name = endpoint
    operations(":holdNext", {"type": "DeployModel", "path": name})  # the deploy that landed stays in flight
    emulator.fault(when="after", status=503, method="POST", path=f"{name}:deployModel$", count=1)
    with pytest.raises(VertexError, match=f"deploying {version}") as failed:
        deferral(deploy_operator(version, display), new_ti("deploy"))
    assert failed.value.transient  # worth the task's retry, which must not deploy a second time
    assert deploy_operations(name) == [(False, 0)]

    retry, ti = deploy_operator(version, display), new_ti("deploy")
    waits = deferral(retry, ti)
    assert waits.method_name == "execute_after_in_flight"
    (in_flight,) = waits.trigger.operation_names
    operations(f"/{in_flight}:release", {})
    result = resume(retry, ti, waits)
    assert not result["deployed"]  # the deploy of the first try is the one that serves
    assert [d.id for d in endpoint_state(name).deployed_models] == [result["deployed_model_id"]]
    assert deploy_operations(name) == [(True, 0)]


def test_a_failed_undeploy_of_older_versions_fails_the_task_and_the_new_version_keeps_all_traffic(
    operations: Any, vertex: str, version: str, endpoint: tuple[str, str]
) -> None:
    display, name = endpoint
    older = run_direct(deploy_operator(version, display), new_ti("deploy"))
    client = VertexHook().client("model", "us-central1")
    model = version.split("@", 1)[0]
    request = {
        "parent": LOCATION,
        "parent_model": model,
        "model": {"display_name": "v2", "artifact_uri": "gs://aria-models/y"},
    }
    uploaded = client.upload_model(request=request).result(timeout=30)
    newer = f"{model}@{uploaded.model_version_id}"
    operations(":failNext", {"type": "UndeployModel", "path": name, "code": 9, "message": "model is busy"})
    with pytest.raises(VertexError, match="undeploying older versions failed: model is busy") as failed:
        run_direct(
            deploy_operator(newer, display, traffic_percentage=100, undeploy_older=True), new_ti("deploy")
        )
    assert failed.value.resource == name
    state = endpoint_state(name)
    ours = next(d.id for d in state.deployed_models if d.model_version_id == uploaded.model_version_id)
    # The failed undeploy leaves the older version deployed (still billed), but serving nothing.
    assert {d.id for d in state.deployed_models} == {ours, older["deployed_model_id"]}
    assert dict(state.traffic_split) == {ours: 100}


def test_a_failed_undeploy_tearing_down_the_evaluation_endpoint_fails_the_task_and_its_retry_finishes(
    operations: Any, version: str, endpoint: tuple[str, str]
) -> None:
    """The quality gate's evaluation endpoint is torn down after the gate (undeploy, then delete)."""
    display, name = endpoint
    run_direct(deploy_operator(version, display), new_ti("deploy_for_evaluation"))
    operations(":failNext", {"type": "UndeployModel", "path": name, "code": 9, "message": "model is busy"})

    def tear_down() -> dict[str, Any]:
        operator = TearDownEndpointOperator(
            task_id="tear_down_evaluation", location=LOCATION, endpoint_display_name=display, **FAST
        )
        return dict(run_direct(operator, new_ti("tear_down_evaluation")))

    with pytest.raises(VertexError, match="undeploying before deletion failed: model is busy") as failed:
        tear_down()
    assert name in str(failed.value)
    state = endpoint_state(name)  # not deleted: its model is still deployed (billed), serving nothing
    assert len(state.deployed_models) == 1 and dict(state.traffic_split) == {}
    assert tear_down()["deleted_endpoints"] == [name]  # the task's retry
    assert EndpointHook().find_named(LOCATION, display) == []


def test_the_operation_trigger_reports_the_operation_that_really_failed(
    operations: Any, version: str, endpoint: tuple[str, str]
) -> None:
    _, name = endpoint
    hook = EndpointHook()
    spec = {"model": version, "automatic_resources": {"min_replica_count": 1, "max_replica_count": 1}}
    succeeded = hook.deploy(name, spec, {})
    operations(":failNext", {"type": "DeployModel", "path": name, "code": QUOTA, "message": QUOTA_MESSAGE})
    failed = hook.deploy(name, {**spec, "display_name": "again"}, {})
    trigger = VertexOperationTrigger(operation_names=[succeeded, failed], service="endpoint", **FAST)
    event = asyncio.run(first_event(roundtrip(trigger)))
    assert event == {
        "status": "error",
        "operations": [succeeded, failed],
        "operation": failed,
        "message": QUOTA_MESSAGE,
    }


def test_a_503_on_listing_the_deploys_in_flight_is_ridden_out(
    emulator: Emulator, version: str, endpoint: tuple[str, str]
) -> None:
    """The look-up of deploys in flight is a read: a 503 on it is retried, not a failed task (it was
    not, and the fault suite's 503 bursts failed deploy_model's retry on it)."""
    display, name = endpoint
    emulator.fault(status=503, method="GET", path=f"{name}/operations$", count=2)
    result = run_direct(deploy_operator(version, display), new_ti("deploy"))
    assert [d.id for d in endpoint_state(name).deployed_models] == [result["deployed_model_id"]]
    assert emulator.calls(f"{name}/operations") >= 3, "the two 503s were never served"


def test_a_429_while_waiting_for_an_operation_is_ridden_out(
    emulator: Emulator, endpoint: tuple[str, str], emulator_settings: EmulatorSettings
) -> None:
    """Polling an operation is a read: a 429 on it is retried, not a failed wait (api-core polls without
    a retry unless given one; the fault suite's bursts failed tear_down_evaluation on it)."""
    _, name = endpoint
    emulator_settings.set(operationSeconds=1.0)  # the deletion is not done at once: the wait polls
    emulator.fault(status=429, method="GET", path=f"{name}/operations/[0-9]+$", count=2)
    assert EndpointHook().delete_endpoint(name, timeout=60)
    assert emulator.fault_rules() == [] or all(r.get("count") == 0 for r in emulator.fault_rules())
