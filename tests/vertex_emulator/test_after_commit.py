"""After-commit faults: the call is applied, then its reply is lost (an error, a late reply or a reset
connection), over REST and gRPC alike, as the official clients see it."""

from __future__ import annotations

import json
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.api_core.retry import if_transient_error
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import Gapic, GrpcApiFactory, Upload, palm_rows, pipeline_job

AddFault = Callable[..., dict[str, Any]]
#: What each transport raises for a connection reset by the server.
RESET = {"rest": requests.exceptions.ConnectionError, "grpc": exceptions.ServiceUnavailable}
#: What each transport raises when its deadline runs out before the reply comes.
TIMED_OUT = {"rest": requests.exceptions.ReadTimeout, "grpc": exceptions.DeadlineExceeded}


@pytest.fixture(params=["rest", "grpc"])
def transport_api(request: pytest.FixtureRequest, gapic: Gapic, grpc_api_factory: GrpcApiFactory) -> Any:
    """The session emulator's GAPIC clients over REST, then over gRPC (sync, on a channel)."""
    return gapic if request.param == "rest" else grpc_api_factory("grpc")


@pytest.fixture
def transport(transport_api: Any) -> str:
    return "rest" if isinstance(transport_api, Gapic) else "grpc"


@pytest.fixture
def api(transport_api: Any) -> Any:
    return transport_api


@pytest.fixture
def fault(vertex_emulator: str) -> Iterator[AddFault]:
    """Add a fault rule to the session emulator (all are removed when the test ends)."""
    yield lambda **rule: emulator_control(vertex_emulator, "faults", rule)
    emulator_control(vertex_emulator, "faults", method="DELETE")


def requests_seen(url: str) -> dict[str, int]:
    return dict(emulator_control(url, "counts")["requests"])


def endpoints_named(api: Any, parent: str, name: str) -> list[Any]:
    request = {"parent": parent, "filter": f'display_name="{name}"'}
    return list(api.endpoints.list_endpoints(request=request))


def create_endpoint(api: Any, parent: str, name: str, timeout: float | None = None) -> Any:
    endpoint = aiplatform_v1.Endpoint(display_name=name)
    return api.endpoints.create_endpoint(parent=parent, endpoint=endpoint, retry=None, timeout=timeout)


@pytest.mark.parametrize(
    ("status", "error"), [(503, exceptions.ServiceUnavailable), (500, exceptions.InternalServerError)]
)
def test_an_after_commit_error_keeps_the_change_the_client_was_told_failed(
    api: Any, gpu_parent: str, fault: AddFault, status: int, error: type[Exception]
) -> None:
    fault(when="after", status=status, method="POST", path=f"{gpu_parent}/endpoints$", count=1)
    with pytest.raises(error, match="after the handler"):
        create_endpoint(api, gpu_parent, "landed")
    assert len(endpoints_named(api, gpu_parent, "landed")) == 1


def test_a_fault_before_the_handler_changes_nothing(api: Any, gpu_parent: str, fault: AddFault) -> None:
    fault(status=503, method="POST", path=f"{gpu_parent}/endpoints$", count=1)  # "when" defaults to before
    with pytest.raises(exceptions.ServiceUnavailable, match="before the handler"):
        create_endpoint(api, gpu_parent, "refused")
    assert endpoints_named(api, gpu_parent, "refused") == []


def test_a_dropped_reply_is_a_reset_connection_that_api_core_calls_transient(
    api: Any, transport: str, gpu_parent: str, fault: AddFault, vertex_emulator: str
) -> None:
    before = requests_seen(vertex_emulator).get("fault after drop", 0)
    fault(when="after", mode="drop", method="POST", path=f"{gpu_parent}/endpoints$", count=1)
    with pytest.raises(RESET[transport], match="Connection reset by peer") as raised:
        create_endpoint(api, gpu_parent, "dropped")
    assert if_transient_error(raised.value)  # type: ignore[arg-type]  # google-api-core's default retry would repeat the call
    assert len(endpoints_named(api, gpu_parent, "dropped")) == 1
    assert requests_seen(vertex_emulator)["fault after drop"] == before + 1


def test_a_drop_before_the_handler_loses_the_request(
    api: Any, transport: str, gpu_parent: str, fault: AddFault
) -> None:
    fault(when="before", mode="drop", method="POST", path=f"{gpu_parent}/endpoints$", count=1)
    with pytest.raises(RESET[transport], match="Connection reset by peer"):
        create_endpoint(api, gpu_parent, "never")
    assert endpoints_named(api, gpu_parent, "never") == []


def test_an_after_commit_timeout_lets_the_client_give_up_on_a_create_that_landed(
    api: Any, transport: str, gpu_parent: str, fault: AddFault
) -> None:
    fault(
        when="after", mode="timeout", latencyMs=2_000, method="POST", path=f"{gpu_parent}/endpoints$", count=1
    )
    with pytest.raises(TIMED_OUT[transport]):
        create_endpoint(api, gpu_parent, "late", timeout=0.5)
    # The handler ran before the reply was held: the endpoint is there while the reply still waits.
    assert len(endpoints_named(api, gpu_parent, "late")) == 1


def test_a_timeout_before_the_handler_never_applies_the_call(
    api: Any, transport: str, gpu_parent: str, fault: AddFault, vertex_emulator: str
) -> None:
    handled = "POST /v1/{parent=projects/*/locations/*}/endpoints"
    before = requests_seen(vertex_emulator)
    rule = fault(mode="timeout", latencyMs=800, method="POST", path=f"{gpu_parent}/endpoints$", count=1)
    with pytest.raises(TIMED_OUT[transport]):
        create_endpoint(api, gpu_parent, "held", timeout=0.3)
    after = requests_seen(vertex_emulator)
    assert after["fault timeout"] == before.get("fault timeout", 0) + 1
    assert after.get(handled, 0) == before.get(handled, 0)  # the handler never ran
    assert emulator_control(vertex_emulator, "faults")["faults"] == [{**rule, "count": 0, "hits": 1}]
    assert endpoints_named(api, gpu_parent, "held") == []


def test_an_error_reply_is_lost_like_any_other(
    api: Any, transport: str, tpu_parent: str, fault: AddFault, upload: Upload
) -> None:
    job = pipeline_job(upload("t.jsonl", palm_rows("lost-409")), train_steps=100_000)
    job_id = f"twice-{uuid.uuid4().hex[:6]}"
    api.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job, pipeline_job_id=job_id)
    fault(when="after", mode="drop", method="POST", path=f"{tpu_parent}/pipelineJobs$", count=1)
    # The repeat is refused (409) by the handler, and that answer is lost too.
    with pytest.raises(RESET[transport]):
        api.pipelines.create_pipeline_job(
            parent=tpu_parent, pipeline_job=job, pipeline_job_id=job_id, retry=None
        )
    jobs = api.pipelines.list_pipeline_jobs(parent=tpu_parent)
    assert [j.name for j in jobs] == [f"{tpu_parent}/pipelineJobs/{job_id}"]
    api.pipelines.cancel_pipeline_job(name=f"{tpu_parent}/pipelineJobs/{job_id}")


@pytest.mark.parametrize(
    "rule",
    [
        {"mode": "drop", "status": 503},  # a dropped connection has no status
        {"mode": "timeout"},  # a timeout needs the hold's length
        {"mode": "timeout", "latencyMs": 0, "status": 503},
        {"when": "during", "status": 503},
        {"mode": "explode", "status": 503},
        {"status": 503, "seed": "seven"},
    ],
)
def test_bad_after_commit_and_seed_fields_are_rejected_naming_the_field(
    vertex_emulator: str, rule: dict[str, Any]
) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        emulator_control(vertex_emulator, "faults", rule)
    assert raised.value.code == 400
    message = json.loads(raised.value.read())["error"]["message"]
    assert any(word in message for word in ("drop", "timeout", "when", "mode", "seed")), message
