"""Long-running operations that fail or hang, steered through /_emulator/operations, seen by the GAPIC
clients over REST and gRPC: a failed deploy deploys nothing, a failed undeploy leaves the model serving,
a held operation stays `done: false` and its effect waits with it."""

from __future__ import annotations

import json
import urllib.error
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import Gapic, GrpcApiFactory
from tests.vertex_emulator.test_models import upload as upload_model

QUOTA = 8  # google.rpc.Code RESOURCE_EXHAUSTED
QUOTA_MESSAGE = "The following quota metrics exceed quota limits: custom_model_serving_nvidia_l4_gpus"


@pytest.fixture(params=["rest", "grpc"])
def transport_api(request: pytest.FixtureRequest, gapic: Gapic, grpc_api_factory: GrpcApiFactory) -> Any:
    """The session emulator's GAPIC clients over REST, then over gRPC (sync, on a channel)."""
    return gapic if request.param == "rest" else grpc_api_factory("grpc")


@pytest.fixture
def control(vertex_emulator: str) -> Iterator[Any]:
    """`control(route, body)` on the session emulator; the test's failNext/holdNext rules are removed
    when it ends (one it did not use must not fail a later test's deploy)."""
    yield lambda route, body=None, method=None: emulator_control(vertex_emulator, route, body, method)
    emulator_control(vertex_emulator, "operations:next", method="DELETE")


@pytest.fixture
def endpoint(gapic: Gapic, gpu_parent: str) -> str:
    made = gapic.endpoints.create_endpoint(
        parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name=f"ops-{uuid.uuid4().hex[:6]}")
    )
    return str(made.result(timeout=10).name)


@pytest.fixture
def model(gapic: Gapic, gpu_parent: str) -> str:
    name, version = upload_model(gapic, gpu_parent, "steered")
    return f"{name}@{version}"


def deploy(api: Any, endpoint: str, model: str) -> Any:
    return api.endpoints.deploy_model(
        endpoint=endpoint, deployed_model=aiplatform_v1.DeployedModel(model=model)
    )


def deployed_ids(gapic: Gapic, endpoint: str) -> list[str]:
    return [d.id for d in gapic.endpoints.get_endpoint(name=endpoint).deployed_models]


def operation(gapic: Gapic, name: str) -> Any:
    return gapic.endpoints.get_operation(request={"name": name})


def refused(call: Any) -> str:
    """The control plane's error message for a call it must refuse with 400."""
    with pytest.raises(urllib.error.HTTPError) as raised:
        call()
    assert raised.value.code == 400
    return str(json.loads(raised.value.read())["error"]["message"])


def test_a_failed_deploy_raises_vertex_code_and_message_and_deploys_nothing(
    transport_api: Any, gapic: Gapic, control: Any, endpoint: str, model: str
) -> None:
    rule = control(
        "operations:failNext",
        {"type": "DeployModel", "path": endpoint, "code": QUOTA, "message": QUOTA_MESSAGE},
    )
    assert rule["count"] == 1
    started = deploy(transport_api, endpoint, model)
    with pytest.raises(exceptions.ResourceExhausted, match="custom_model_serving_nvidia_l4_gpus"):
        started.result(timeout=10)
    done = operation(gapic, started.operation.name)
    assert done.done and done.error.code == QUOTA and done.error.message == QUOTA_MESSAGE
    assert deployed_ids(gapic, endpoint) == []
    assert list(gapic.models.get_model(name=model).deployed_models) == []
    assert control("operations:next")["rules"][0]["count"] == 0
    deploy(transport_api, endpoint, model).result(timeout=10)  # the rule is spent: the next one deploys
    assert len(deployed_ids(gapic, endpoint)) == 1


def test_a_held_deploy_stays_in_flight_until_released(
    transport_api: Any, gapic: Gapic, control: Any, endpoint: str, model: str
) -> None:
    control("operations:holdNext", {"type": "DeployModel", "path": endpoint})
    started = deploy(transport_api, endpoint, model)
    name = started.operation.name
    assert not operation(gapic, name).done
    assert not started.done()
    listed = gapic.endpoints.list_operations(request={"name": endpoint})
    assert [(op.name, op.done) for op in listed.operations if op.name == name] == [(name, False)]
    assert deployed_ids(gapic, endpoint) == []  # a model being deployed is not on the endpoint yet

    released = control(f"operations/{name}:release", {})
    assert released["done"] is True
    assert started.result(timeout=10).deployed_model.model == model.split("@")[0]
    assert len(deployed_ids(gapic, endpoint)) == 1


def test_failing_a_held_deploy_leaves_nothing_deployed(
    transport_api: Any, gapic: Gapic, control: Any, endpoint: str, model: str
) -> None:
    control("operations:holdNext", {"type": "DeployModel", "path": endpoint})
    started = deploy(transport_api, endpoint, model)
    failed = control(f"operations/{started.operation.name}:fail", {"code": 13, "message": "replica crashed"})
    assert failed["done"] is True and failed["error"] == {"code": 13, "message": "replica crashed"}
    with pytest.raises(exceptions.InternalServerError, match="replica crashed"):
        started.result(timeout=10)
    assert deployed_ids(gapic, endpoint) == []


def test_a_failed_undeploy_leaves_the_model_deployed_and_serving(
    transport_api: Any, gapic: Gapic, control: Any, endpoint: str, model: str
) -> None:
    deployed = deploy(transport_api, endpoint, model).result(timeout=10).deployed_model.id
    control("operations:failNext", {"type": "UndeployModel", "path": endpoint, "code": 9, "message": "busy"})
    undeploying = transport_api.endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=deployed)
    with pytest.raises(exceptions.FailedPrecondition, match="busy"):
        undeploying.result(timeout=10)
    state = gapic.endpoints.get_endpoint(name=endpoint)
    assert [d.id for d in state.deployed_models] == [deployed] and dict(state.traffic_split) == {
        deployed: 100
    }
    answer = gapic.prediction.predict(endpoint=endpoint, instances=[{"prompt": "hi"}])  # type: ignore[list-item]
    assert answer.deployed_model_id == deployed


def test_a_held_undeploy_keeps_the_model_until_released(
    transport_api: Any, gapic: Gapic, control: Any, endpoint: str, model: str
) -> None:
    deployed = deploy(transport_api, endpoint, model).result(timeout=10).deployed_model.id
    control("operations:holdNext", {"type": "UndeployModel", "path": endpoint})
    undeploying = transport_api.endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=deployed)
    assert deployed_ids(gapic, endpoint) == [deployed]
    with pytest.raises(exceptions.BadRequest, match="already being undeployed"):
        gapic.endpoints.undeploy_model(endpoint=endpoint, deployed_model_id=deployed)
    control(f"operations/{undeploying.operation.name}:release", {})
    undeploying.result(timeout=10)
    assert deployed_ids(gapic, endpoint) == []


def test_rules_apply_only_to_their_type_and_path(
    gapic: Gapic, gpu_parent: str, control: Any, endpoint: str, model: str
) -> None:
    other = gapic.endpoints.create_endpoint(
        parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name="other")
    ).result()
    control("operations:failNext", {"type": "DeployModel", "path": f"{endpoint}$", "count": 2})
    control("operations:holdNext", {"type": "UndeployModel", "path": f"{endpoint}$"})
    kept = deploy(gapic, other.name, model).result(timeout=10).deployed_model.id  # another endpoint
    gapic.endpoints.undeploy_model(endpoint=other.name, deployed_model_id=kept).result(timeout=10)
    rules = control("operations:next")["rules"]
    assert [(r["action"], r["count"]) for r in rules] == [("fail", 2), ("hold", 1)]


def test_operations_that_cannot_be_steered_are_refused_naming_why(
    gapic: Gapic, gpu_parent: str, control: Any, endpoint: str, model: str
) -> None:
    done = deploy(gapic, endpoint, model)
    done.result(timeout=10)
    name = done.operation.name
    assert "already done" in refused(lambda: control(f"operations/{name}:fail", {"code": 8}))
    assert "already done" in refused(lambda: control(f"operations/{name}:hold", {}))
    assert "not held" in refused(lambda: control(f"operations/{name}:release", {}))
    created = gapic.endpoints.create_endpoint(
        parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name="x")
    )
    created.result(timeout=10)
    message = refused(lambda: control(f"operations/{created.operation.name}:hold", {}))
    assert "CreateEndpoint" in message and "DeployModel" in message
    assert "needs a type" in refused(lambda: control("operations:failNext", {"type": "CreateEndpoint"}))
    assert "count" in refused(lambda: control("operations:holdNext", {"type": "DeployModel", "count": 0}))
    assert "code" in refused(lambda: control("operations:failNext", {"type": "DeployModel", "code": 0}))
    assert "unknown field" in refused(
        lambda: control("operations:holdNext", {"type": "DeployModel", "code": 8})
    )
