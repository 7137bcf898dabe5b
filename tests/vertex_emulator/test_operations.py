"""Long-running operations: polled under /ui/ by the GAPIC operations client, and under /v1/."""

from __future__ import annotations

import json
import urllib.request

import pytest
from google.api_core import exceptions, operations_v1
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1
from google.longrunning import operations_pb2

from scripts.emulators import emulator_control
from tests.support.emulator_settings import EmulatorSettings
from tests.vertex_emulator.conftest import Gapic, gapic_clients


def v1_operations_client(url: str) -> operations_v1.AbstractOperationsClient:
    """api_core's REST operations client bound to the /v1/ operation routes."""
    transport = operations_v1.transports.OperationsRestTransport(
        host=url,
        credentials=AnonymousCredentials(),
        http_options={
            "google.longrunning.Operations.GetOperation": [
                {"method": "get", "uri": "/v1/{name=projects/*/locations/*/endpoints/*/operations/*}"},
                {"method": "get", "uri": "/v1/{name=projects/*/locations/*/models/*/operations/*}"},
            ],
        },
    )
    return operations_v1.AbstractOperationsClient(transport=transport)


def test_operations_are_served_under_ui_and_v1(gapic: Gapic, gpu_parent: str, vertex_emulator: str) -> None:
    operation = gapic.endpoints.create_endpoint(
        parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name="e")
    )
    name = operation.operation.name
    assert name.startswith(f"{gpu_parent}/endpoints/") and "/operations/" in name

    via_ui = gapic.endpoints.get_operation(request=operations_pb2.GetOperationRequest(name=name))
    via_v1 = v1_operations_client(vertex_emulator).get_operation(name=name)
    waited = gapic.endpoints.wait_operation(request=operations_pb2.WaitOperationRequest(name=name))
    assert via_ui.done and via_v1.done and waited.done
    assert via_v1.response.type_url == "type.googleapis.com/google.cloud.aiplatform.v1.Endpoint"
    # No official client waits under /v1/ (GAPIC uses /ui/): plain HTTP, as curl would.
    wait_v1 = urllib.request.Request(f"{vertex_emulator}/v1/{name}:wait", data=b"{}", method="POST")
    with urllib.request.urlopen(wait_v1, timeout=10) as reply:
        assert json.load(reply)["done"] is True

    requests = emulator_control(vertex_emulator, "counts")["requests"]
    assert requests["GET /ui/{name=projects/*/locations/*/endpoints/*/operations/*}"] >= 1
    assert requests["GET /v1/{name=projects/*/locations/*/endpoints/*/operations/*}"] >= 1
    assert requests["POST /v1/{name=projects/*/locations/*/endpoints/*/operations/*}:wait"] >= 1

    with pytest.raises(exceptions.NotFound):
        gapic.endpoints.get_operation(
            request=operations_pb2.GetOperationRequest(name=f"{gpu_parent}/operations/404")
        )


def test_slow_operations_are_polled_until_done(
    vertex_emulator: str, gpu_parent: str, emulator_settings: EmulatorSettings
) -> None:
    gapic = gapic_clients(vertex_emulator)
    emulator_settings.set(operationSeconds=0.5)
    operation = gapic.models.upload_model(parent=gpu_parent, model=aiplatform_v1.Model(display_name="slow"))
    assert not operation.operation.done  # the create's own reply: no window between it and a poll
    name = operation.operation.name
    waited = gapic.models.wait_operation(request=operations_pb2.WaitOperationRequest(name=name))
    assert waited.done
    assert operation.result(timeout=10).model.startswith(f"{gpu_parent}/models/")
    emulator_settings.restore()
    polls = emulator_control(vertex_emulator, "counts")["requests"]
    assert polls["POST /ui/{name=projects/*/locations/*/models/*/operations/*}:wait"] >= 1


def test_an_endpoints_operations_are_listed_and_a_deploy_serves_when_done(
    gapic: Gapic, gpu_parent: str, vertex_emulator: str
) -> None:
    from tests.vertex_emulator.test_endpoints import new_endpoint
    from tests.vertex_emulator.test_models import upload

    model, _ = upload(gapic, gpu_parent, "slow-deploy")
    endpoint = new_endpoint(gapic, gpu_parent)
    emulator_control(vertex_emulator, "operations:holdNext", {"type": "DeployModel", "path": endpoint.name})
    try:
        deploying = gapic.endpoints.deploy_model(
            endpoint=endpoint.name, deployed_model=aiplatform_v1.DeployedModel(model=model)
        )
    finally:
        emulator_control(vertex_emulator, "operations:next", method="DELETE")
    listed = gapic.endpoints.list_operations(request=operations_pb2.ListOperationsRequest(name=endpoint.name))
    in_flight = [op for op in listed.operations if not op.done]
    assert [op.name for op in in_flight] == [deploying.operation.name]
    assert in_flight[0].metadata.type_url.endswith(".DeployModelOperationMetadata")
    # Not serving before its operation is done (Vertex lists a deployed model once it is deployed).
    assert list(gapic.endpoints.get_endpoint(name=endpoint.name).deployed_models) == []
    emulator_control(vertex_emulator, f"operations/{deploying.operation.name}:release", {})

    deployed = deploying.result(timeout=10).deployed_model
    state = gapic.endpoints.get_endpoint(name=endpoint.name)
    assert [d.id for d in state.deployed_models] == [deployed.id]
    assert dict(state.traffic_split) == {deployed.id: 100}
    relisted = gapic.endpoints.list_operations(request={"name": endpoint.name, "page_size": 1})
    assert len(relisted.operations) == 1 and relisted.next_page_token  # create and deploy: two pages
    assert all(op.done for op in gapic.endpoints.list_operations(request={"name": endpoint.name}).operations)

    with pytest.raises(exceptions.BadRequest, match="unsupported operations filter"):
        gapic.endpoints.list_operations(request={"name": endpoint.name, "filter": "done=false"})
