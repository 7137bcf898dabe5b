"""Errors over gRPC: google.api_core raises Google's classes, with the google.rpc details Vertex attaches."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, TypeVar

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.rpc import error_details_pb2

from scripts.emulators import emulator_control
from scripts.processes import free_port
from tests.vertex_emulator.conftest import HOLD_MS, GrpcApi, Upload, held_together, palm_rows, pipeline_job
from vertex_emulator import grpc_server
from vertex_emulator.backend import Backend, Settings
from vertex_emulator.control import RequestCounter
from vertex_emulator.exceptions import EmulatorError
from vertex_emulator.faults import Faults

Detail = TypeVar("Detail")


@pytest.fixture
def faults(vertex_emulator: str) -> Iterator[None]:
    yield
    emulator_control(vertex_emulator, "faults", method="DELETE")


def detail(error: exceptions.GoogleAPICallError, kind: type[Detail]) -> Detail:
    """The one detail of type `kind` the error carries."""
    found = [d for d in error.details if isinstance(d, kind)]
    assert len(found) == 1, f"expected one {kind.__name__} in {error.details}"
    return found[0]


def test_a_duplicate_pipeline_job_id_is_already_exists(
    grpc_api: GrpcApi, tpu_parent: str, upload: Upload
) -> None:
    job = pipeline_job(upload("train.jsonl", palm_rows("dup")))
    created = grpc_api.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=job, pipeline_job_id="dup"
    )

    with pytest.raises(exceptions.AlreadyExists) as raised:
        grpc_api.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job, pipeline_job_id="dup")

    assert raised.value.grpc_status_code == grpc.StatusCode.ALREADY_EXISTS
    assert created.name in raised.value.message
    assert raised.value.reason == "ALREADY_EXISTS" and raised.value.domain == "aiplatform.googleapis.com"
    assert raised.value.metadata["method"] == "google.cloud.aiplatform.v1.PipelineService.CreatePipelineJob"
    assert detail(raised.value, error_details_pb2.ResourceInfo).resource_name == tpu_parent


def test_a_bad_request_is_invalid_argument(grpc_api: GrpcApi, tpu_parent: str, upload: Upload) -> None:
    job = pipeline_job(upload("train.jsonl", palm_rows("bad")))

    with pytest.raises(exceptions.InvalidArgument, match="invalid pipeline_job_id 'Not_Valid'") as raised:
        grpc_api.pipelines.create_pipeline_job(
            parent=tpu_parent, pipeline_job=job, pipeline_job_id="Not_Valid"
        )

    assert raised.value.details and raised.value.reason == "INVALID_ARGUMENT"
    assert raised.value.metadata["consumer"] == tpu_parent.rsplit("/locations/", 1)[0]


def test_a_malformed_resource_name_is_invalid_argument_naming_the_field(grpc_api: GrpcApi) -> None:
    with pytest.raises(
        exceptions.InvalidArgument, match="'pipelineJobs/x' is not a valid resource name"
    ) as raised:
        grpc_api.pipelines.get_pipeline_job(name="pipelineJobs/x")

    bad_request = detail(raised.value, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == ["name"]


def test_an_unknown_resource_is_not_found(grpc_api: GrpcApi, gpu_parent: str) -> None:
    name = f"{gpu_parent}/endpoints/404"

    with pytest.raises(exceptions.NotFound) as raised:
        grpc_api.endpoints.get_endpoint(name=name)

    assert raised.value.grpc_status_code == grpc.StatusCode.NOT_FOUND
    assert detail(raised.value, error_details_pb2.ResourceInfo).resource_name == name


def test_cancelling_a_finished_job_is_failed_precondition(
    grpc_api: GrpcApi, vertex_emulator: str, tpu_parent: str, upload: Upload
) -> None:
    job = grpc_api.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=pipeline_job(upload("train.jsonl", palm_rows("done")))
    )
    emulator_control(vertex_emulator, f"jobs/{job.name}:succeed", {})

    with pytest.raises(exceptions.FailedPrecondition, match="cannot be cancelled") as raised:
        grpc_api.pipelines.cancel_pipeline_job(name=job.name)

    failure = detail(raised.value, error_details_pb2.PreconditionFailure)
    assert [v.subject for v in failure.violations] == [job.name]
    state = grpc_api.pipelines.get_pipeline_job(name=job.name).state
    assert state == aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED


@pytest.mark.parametrize(
    ("status", "error", "code", "reason"),
    [
        (429, exceptions.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMIT_EXCEEDED"),
        (503, exceptions.ServiceUnavailable, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    ],
)
def test_injected_faults_hit_grpc_calls_as_their_status(
    grpc_api: GrpcApi,
    vertex_emulator: str,
    gpu_parent: str,
    faults: None,
    status: int,
    error: type[exceptions.GoogleAPICallError],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    # The rule names the REST path and method: a gRPC call stands for the same REST call.
    rule = emulator_control(
        vertex_emulator,
        "faults",
        {"status": status, "method": "GET", "path": f"{gpu_parent}/endpoints", "count": 2},
    )
    for _ in range(2):
        with pytest.raises(error) as raised:
            grpc_api.endpoints.list_endpoints(parent=gpu_parent, retry=None)
        assert raised.value.grpc_status_code == code
        assert raised.value.reason == reason and raised.value.details
    assert list(grpc_api.endpoints.list_endpoints(parent=gpu_parent, retry=None).endpoints) == []
    assert emulator_control(vertex_emulator, "faults")["faults"] == [{**rule, "count": 0, "hits": 2}]
    assert emulator_control(vertex_emulator, "stats")["by_method"][f"fault {status}"] >= 2


def test_injected_latency_is_served_concurrently(
    grpc_target: str, gpu_parent: str, vertex_emulator: str, faults: None
) -> None:
    """Forty asyncio calls held by an injected latency are all in the emulator at once, none answered."""
    rule = emulator_control(
        vertex_emulator, "faults", {"latencyMs": HOLD_MS, "path": f"{gpu_parent}/endpoints"}
    )

    async def call_all() -> None:
        async with grpc.aio.insecure_channel(grpc_target) as channel:
            cls = aiplatform_v1.EndpointServiceAsyncClient
            client = cls(transport=cls.get_transport_class("grpc_asyncio")(channel=channel))
            calls = [
                asyncio.ensure_future(client.list_endpoints(parent=gpu_parent, retry=None)) for _ in range(40)
            ]
            try:
                await held_together(vertex_emulator, rule["id"], calls)
            finally:  # a cancelled gRPC call ends its handler's wait too
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)

    asyncio.run(call_all())


class _Unauthenticated(EmulatorError):
    http_status, status, reason = 401, "UNAUTHENTICATED", "CREDENTIALS_MISSING"


class _OneToken:
    """An authority that knows one bearer token (the interface `vertex_emulator.auth` provides)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def verify(self, authorization: str | None) -> str:
        if authorization != "Bearer good":
            raise _Unauthenticated(f"no valid bearer token (got {authorization!r})")
        return "tester@example.com"

    def record(self, surface: str, method: str, path: str, principal: str) -> None:
        self.calls.append((surface, method, path, principal))


def test_an_authority_checks_the_authorization_metadata_before_anything_else(
    grpc_loop: Any, gpu_parent: str
) -> None:
    authority, faults = _OneToken(), Faults()
    faults.add({"status": 503})  # every call: a refused token must win over it
    backend = Backend(Settings())

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc_server.create_server(backend, faults, RequestCounter(), authority=authority)
        port = free_port()
        grpc_server.listen(server, "127.0.0.1", port)
        await server.start()
        return server, port

    server, port = grpc_loop.run(start())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            cls = aiplatform_v1.EndpointServiceClient
            client = cls(transport=cls.get_transport_class("grpc")(channel=channel))
            with pytest.raises(exceptions.Unauthenticated, match="no valid bearer token") as raised:
                client.list_endpoints(parent=gpu_parent, retry=None)
            assert raised.value.reason == "CREDENTIALS_MISSING" and raised.value.domain == "googleapis.com"
            faults.clear()
            listed = client.list_endpoints(
                parent=gpu_parent, retry=None, metadata=[("authorization", "Bearer good")]
            )
            assert list(listed.endpoints) == []
    finally:
        grpc_loop.run(server.stop(None))
    assert authority.calls == [("grpc", "GET", f"/v1/{gpu_parent}/endpoints", "tester@example.com")]
