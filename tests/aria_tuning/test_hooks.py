"""The client factory: where Vertex is, which transport, which credentials; error classification."""

from __future__ import annotations

import json
import uuid

import pytest
from aria_tuning.errors import VertexError
from aria_tuning.hooks import VertexHook, is_transient, translated
from aria_tuning.hooks.base import ENDPOINT_ENV
from aria_tuning.hooks.endpoints import oldest_first


def connection(monkeypatch: pytest.MonkeyPatch, **extra: object) -> str:
    conn_id = f"gcp_{uuid.uuid4().hex[:8]}"
    payload = {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, **extra}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
    return conn_id


def test_regional_grpc_endpoint_without_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    hook = VertexHook(gcp_conn_id=connection(monkeypatch, project="p1"))
    client = hook.client("pipeline", "europe-west4")
    assert hook.endpoint_override is None and hook.project_id == "p1"
    assert client.api_endpoint == "europe-west4-aiplatform.googleapis.com"
    assert "Grpc" in type(client.transport).__name__


def test_environment_override_uses_rest_transports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:1/")
    hook = VertexHook(gcp_conn_id=connection(monkeypatch))
    assert hook.api_endpoint("us-central1") == "http://127.0.0.1:1"
    assert type(hook.client("tuning", "us-central1").transport).__name__.endswith("RestTransport")
    async_client = hook.async_client("pipeline", "us-central1")
    assert type(async_client.transport).__name__ == "AsyncPipelineServiceRestTransport"


def test_connection_extra_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:1")
    hook = VertexHook(gcp_conn_id=connection(monkeypatch, vertex_api_endpoint="http://127.0.0.1:2"))
    assert hook.api_endpoint("us-central1") == "http://127.0.0.1:2"


def test_credentials_come_from_the_provider_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials

    hook = VertexHook(
        gcp_conn_id=connection(monkeypatch), impersonation_chain=["sa@p.iam.gserviceaccount.com"]
    )
    assert isinstance(hook.credentials, AnonymousCredentials)
    assert hook._google.impersonation_chain == ["sa@p.iam.gserviceaccount.com"]


def _api_errors() -> list[tuple[Exception, bool]]:
    import requests
    from google.api_core import exceptions as e

    return [
        (e.ServiceUnavailable("down"), True),
        (e.TooManyRequests("quota"), True),
        (e.InternalServerError("oops"), True),
        (e.DeadlineExceeded("slow"), True),
        (e.NotFound("gone"), False),
        (e.PermissionDenied("no"), False),
        (e.InvalidArgument("bad"), False),
        (ConnectionResetError("reset"), True),
        (requests.exceptions.ConnectionError("reset by peer"), True),  # what the REST transports raise
        (requests.exceptions.ChunkedEncodingError("reply broke off"), True),
        (ValueError("bug"), False),
    ]


def test_transient_errors_are_told_apart() -> None:
    assert [is_transient(exc) for exc, _ in _api_errors()] == [expected for _, expected in _api_errors()]


def test_vertex_call_names_the_resource_and_keeps_the_cause() -> None:
    from google.api_core.exceptions import PermissionDenied

    def call() -> None:
        raise PermissionDenied("Permission 'aiplatform.pipelineJobs.create' denied")

    with (
        pytest.raises(VertexError) as info,
        translated("projects/p/locations/l", "creating the pipeline job"),
    ):
        call()
    assert str(info.value) == (
        "projects/p/locations/l: creating the pipeline job failed: "
        "Permission 'aiplatform.pipelineJobs.create' denied"
    )
    assert (
        isinstance(info.value.__cause__, PermissionDenied) and info.value.resource == "projects/p/locations/l"
    )


def test_waits_on_one_connection_share_one_async_client_until_the_last_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """500 waits in a triggerer hold one channel, not 500 (bench/RESULTS.md, benchmark 2b)."""
    import asyncio

    from aria_tuning.hooks.base import _SHARED_CLIENTS, AsyncVertexHook

    one, other = connection(monkeypatch, project="p1"), connection(monkeypatch, project="p1")

    async def scenario() -> tuple[bool, bool, int, int]:
        a, b = (
            AsyncVertexHook("pipeline", "europe-west4", gcp_conn_id=one),
            AsyncVertexHook("pipeline", "europe-west4", gcp_conn_id=one),
        )
        c = AsyncVertexHook("pipeline", "europe-west4", gcp_conn_id=other)
        await asyncio.gather(a.open(), b.open(), c.open())
        shared, separate = a.aio is b.aio, a.aio is not c.aio
        loop = asyncio.get_running_loop()
        await a.close()
        after_first = len(_SHARED_CLIENTS[loop])  # b still holds the shared client, c its own
        await b.close()
        await c.close()
        return shared, separate, after_first, len(_SHARED_CLIENTS[loop])

    assert asyncio.run(scenario()) == (True, True, 2, 0)


def test_endpoints_listed_in_any_order_give_the_oldest_of_the_name_first() -> None:
    """Vertex promises no order for ListEndpoints (the emulator lists in creation order): the oldest of the
    name is first whatever the listing (test_operation_failures.py deploys to it)."""
    import datetime as dt

    from google.cloud.aiplatform_v1.types import Endpoint

    def endpoint(n: int, name: str, minute: int) -> Endpoint:
        created = dt.datetime(2026, 12, 1, 12, minute, tzinfo=dt.UTC)
        return Endpoint(
            name=f"projects/p/locations/us-central1/endpoints/{n}", display_name=name, create_time=created
        )

    listed = [endpoint(3, "ARIA", 30), endpoint(2, "ARIA-text", 20), endpoint(1, "ARIA", 10)]
    assert [e.name.rsplit("/", 1)[1] for e in oldest_first(listed, "ARIA")] == ["1", "3"]
