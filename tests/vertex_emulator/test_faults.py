"""Fault injection through /_emulator/faults, seen by the GAPIC clients as Google's errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.aio.credentials import AnonymousCredentials as AsyncAnonymousCredentials
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import HOLD_MS, Gapic, held_together


@pytest.fixture
def faults(vertex_emulator: str) -> Iterator[None]:
    yield
    emulator_control(vertex_emulator, "faults", method="DELETE")


def test_injected_503s_hit_only_the_next_matching_calls(
    gapic: Gapic, gpu_parent: str, vertex_emulator: str, faults: None
) -> None:
    endpoint = gapic.endpoints.create_endpoint(
        parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name="flaky")
    ).result()
    rule = emulator_control(
        vertex_emulator,
        "faults",
        {"status": 503, "rate": 1.0, "method": "GET", "path": gpu_parent, "count": 2},
    )
    for _ in range(2):
        with pytest.raises(exceptions.ServiceUnavailable) as raised:
            gapic.endpoints.get_endpoint(name=endpoint.name, retry=None)
        assert raised.value.response.json()["error"]["status"] == "UNAVAILABLE"
    assert gapic.endpoints.get_endpoint(name=endpoint.name, retry=None).display_name == "flaky"
    assert emulator_control(vertex_emulator, "faults")["faults"] == [{**rule, "count": 0, "hits": 2}]


@pytest.mark.parametrize(
    ("status", "error"), [(429, exceptions.TooManyRequests), (500, exceptions.InternalServerError)]
)
def test_any_status_can_be_injected(
    gapic: Gapic, gpu_parent: str, vertex_emulator: str, faults: None, status: int, error: type[Exception]
) -> None:
    emulator_control(vertex_emulator, "faults", {"status": status, "path": f"{gpu_parent}/pipelineJobs"})
    with pytest.raises(error):
        gapic.pipelines.list_pipeline_jobs(parent=gpu_parent, retry=None)
    assert list(gapic.endpoints.list_endpoints(parent=gpu_parent)) == []  # other paths unaffected


def test_rate_zero_never_fires_and_the_control_plane_is_never_faulted(
    gapic: Gapic, gpu_parent: str, vertex_emulator: str, faults: None
) -> None:
    emulator_control(vertex_emulator, "faults", {"status": 503, "rate": 0.0, "path": gpu_parent})
    assert list(gapic.endpoints.list_endpoints(parent=gpu_parent)) == []
    emulator_control(vertex_emulator, "faults", {"status": 503, "rate": 1.0, "path": ".*"})
    assert emulator_control(vertex_emulator, "health")["status"] == "ok"


def test_bad_fault_rules_are_rejected(vertex_emulator: str, faults: None) -> None:
    import urllib.error

    for rule in ({"status": 200}, {"status": 503, "rate": 2}, {"rate": 1}, {"status": 503, "colour": "red"}):
        with pytest.raises(urllib.error.HTTPError) as raised:
            emulator_control(vertex_emulator, "faults", rule)
        assert raised.value.code == 400


def test_latency_is_served_concurrently(vertex_emulator: str, gpu_parent: str, faults: None) -> None:
    """Forty async pollers held by an injected latency are all in the emulator at once, none answered:
    served one after another, the second would not arrive before the first is answered."""
    rule = emulator_control(
        vertex_emulator, "faults", {"latencyMs": HOLD_MS, "path": f"{gpu_parent}/endpoints"}
    )

    async def poll_all() -> None:
        client = aiplatform_v1.EndpointServiceAsyncClient(
            credentials=AsyncAnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=vertex_emulator),
            transport="rest_asyncio",
        )
        calls = [asyncio.ensure_future(client.list_endpoints(parent=gpu_parent)) for _ in range(40)]
        try:
            await held_together(vertex_emulator, rule["id"], calls)
        finally:  # answered, not cancelled: the emulator would hold an abandoned REST call on
            pagers = await asyncio.gather(*calls, return_exceptions=True)
            await client.transport.close()
        assert all(list(pager.endpoints) == [] for pager in pagers)  # type: ignore[union-attr]

    asyncio.run(poll_all())
