"""GCS fault rules (`"service": "gcs"`): they strike calls through the GCS gate, never Vertex calls, and
google-cloud-storage sees the JSON API's errors, which its default retry rides out."""

from __future__ import annotations

import concurrent.futures
import time
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from scripts.emulators import emulator_control, start_vertex_emulator
from scripts.processes import wait_http
from tests.support.servers import start_on_free_ports
from tests.vertex_emulator.conftest import GPU_REGION, HOLD_MS, gapic_clients

DATA = b'{"input_text": "q", "output_text": "a"}\n' * 50


@dataclass(frozen=True)
class Gated:
    """A Vertex emulator of its own (auth not required) with a GCS gate before the session's GCS."""

    url: str
    gate: str


@pytest.fixture(scope="module")
def gated(gcs_emulator: str, run_dir: Path) -> Iterator[Gated]:
    server, (gate_port,) = start_on_free_ports(
        lambda ports: start_vertex_emulator(
            run_dir, gcs_url=gcs_emulator, gcs_gate_port=ports[0], name="vertex-gcs-faults"
        ),
        count=1,
    )
    try:
        gate = f"http://127.0.0.1:{gate_port}"
        wait_http(f"{gate}/storage/v1/b", 30, server.process.gone)
        yield Gated(server.url, gate)
    finally:
        server.stop()


@pytest.fixture
def client(gated: Gated, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    # Anonymous, as the DAG stack runs locally: storage.Client follows STORAGE_EMULATOR_HOST to the gate.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gated.gate)
    return storage.Client(project="aria-local", credentials=AnonymousCredentials())


@pytest.fixture
def gcs_bucket(client: storage.Client) -> Iterator[storage.Bucket]:
    bucket = client.create_bucket(f"gcs-faults-{uuid.uuid4().hex[:10]}")
    yield bucket
    bucket.delete(force=True)


@pytest.fixture
def faults(gated: Gated, gcs_bucket: storage.Bucket) -> Iterator[None]:
    """Rules are removed before the bucket is deleted (fixtures end in reverse order)."""
    yield
    emulator_control(gated.url, "faults", method="DELETE")


def add_rule(gated: Gated, **spec: Any) -> dict[str, Any]:
    return dict(emulator_control(gated.url, "faults", spec))


def rule_now(gated: Gated, rule: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in emulator_control(gated.url, "faults")["faults"] if r["id"] == rule["id"])


def test_503s_on_an_object_read_are_ridden_out_by_the_default_retry(
    gated: Gated, gcs_bucket: storage.Bucket, faults: None
) -> None:
    name = "raw/v=2025-08-24/train.jsonl"  # the client sends raw%2Fv%3D...: rules see the decoded path
    gcs_bucket.blob(name).upload_from_string(DATA)
    rule = add_rule(
        gated,
        service="gcs",
        status=503,
        rate=1.0,
        method="GET",
        path=rf"/b/{gcs_bucket.name}/o/raw/v=2025-08-24/train\.jsonl$",
        count=2,
    )
    assert rule["service"] == "gcs"

    assert gcs_bucket.blob(name).download_as_bytes() == DATA  # the third try gets through
    assert rule_now(gated, rule) == {**rule, "count": 0, "hits": 2}


def test_429s_on_listing_objects_look_like_the_json_api_and_are_ridden_out(
    gated: Gated, client: storage.Client, gcs_bucket: storage.Bucket, faults: None
) -> None:
    for name in ("a.jsonl", "b.jsonl"):
        gcs_bucket.blob(name).upload_from_string(DATA)
    listing = rf"/storage/v1/b/{gcs_bucket.name}/o$"
    add_rule(gated, service="gcs", status=429, method="GET", path=listing, count=1)
    with pytest.raises(exceptions.TooManyRequests) as raised:
        list(client.list_blobs(gcs_bucket.name, retry=None))
    # google-api-core read the JSON API's envelope: `errors[]` with its reason, the message.
    assert raised.value.errors[0]["reason"] == "rateLimitExceeded"
    assert "injected fault" in raised.value.message

    rule = add_rule(gated, service="gcs", status=429, method="GET", path=listing, count=2)
    assert sorted(b.name for b in client.list_blobs(gcs_bucket.name)) == ["a.jsonl", "b.jsonl"]
    assert rule_now(gated, rule)["hits"] == 2


def test_a_gcs_rule_strikes_no_vertex_call(
    gated: Gated, gcs_bucket: storage.Bucket, faults: None, project: str
) -> None:
    gcs_bucket.blob("x.jsonl").upload_from_string(DATA)
    rule = add_rule(gated, service="gcs", status=503)  # every call through the gate

    endpoints = gapic_clients(gated.url).endpoints
    assert (
        list(endpoints.list_endpoints(parent=f"projects/{project}/locations/{GPU_REGION}", retry=None)) == []
    )
    assert rule_now(gated, rule)["hits"] == 0
    with pytest.raises(exceptions.ServiceUnavailable):  # the rule is live: a GCS call is struck
        gcs_bucket.blob("x.jsonl").download_as_bytes(retry=None)
    assert rule_now(gated, rule)["hits"] == 1


def test_a_rule_without_a_service_strikes_no_gcs_call(
    gated: Gated, gcs_bucket: storage.Bucket, faults: None, project: str
) -> None:
    gcs_bucket.blob("x.jsonl").upload_from_string(DATA)
    rule = add_rule(gated, status=503)  # every Vertex call, as rules always did

    assert gcs_bucket.blob("x.jsonl").download_as_bytes(retry=None) == DATA
    assert rule_now(gated, rule)["hits"] == 0
    endpoints = gapic_clients(gated.url).endpoints
    with pytest.raises(exceptions.ServiceUnavailable):
        endpoints.list_endpoints(parent=f"projects/{project}/locations/{GPU_REGION}", retry=None)
    assert rule_now(gated, rule) == {**rule, "service": "vertex", "hits": 1}


@pytest.mark.parametrize("service", ["s3", "GCS", "", 7])
def test_a_bad_service_is_refused_naming_it(gated: Gated, service: object) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        add_rule(gated, service=service, status=503)
    assert raised.value.code == 400
    assert f"got {service!r}" in raised.value.read().decode()
    assert emulator_control(gated.url, "faults")["faults"] == []


def test_latency_holds_a_gcs_call_then_lets_it_through(
    gated: Gated, gcs_bucket: storage.Bucket, faults: None
) -> None:
    gcs_bucket.blob("held.jsonl").upload_from_string(DATA)
    rule = add_rule(gated, service="gcs", latencyMs=HOLD_MS, method="GET", path=r"/o/held\.jsonl$")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        download = pool.submit(gcs_bucket.blob("held.jsonl").download_as_bytes, retry=None)
        deadline = time.monotonic() + 30
        while rule_now(gated, rule)["hits"] < 1:  # counted before the delay, as for Vertex calls
            assert not download.done(), f"answered before the rule held it: {download.exception()}"
            assert time.monotonic() < deadline, "the download never reached the gate"
            time.sleep(0.05)
        assert not download.done(), "the call the rule holds was answered at once"
        calls = emulator_control(gated.url, "auth/calls")["calls"]
        assert any(c["surface"] == "gcs" and c["path"].endswith("/o/held.jsonl") for c in calls)
        assert download.result(timeout=60) == DATA
    assert rule_now(gated, rule)["hits"] == 1


def test_a_dropped_connection_is_ridden_out(gated: Gated, gcs_bucket: storage.Bucket, faults: None) -> None:
    gcs_bucket.blob("dropped.jsonl").upload_from_string(DATA)
    path = r"/o/dropped\.jsonl$"
    add_rule(gated, service="gcs", mode="drop", method="GET", path=path, count=1)
    with pytest.raises(requests.ConnectionError):  # reset without a reply
        gcs_bucket.blob("dropped.jsonl").download_as_bytes(retry=None)

    rule = add_rule(gated, service="gcs", mode="drop", method="GET", path=path, count=1)
    assert gcs_bucket.blob("dropped.jsonl").download_as_bytes() == DATA
    assert rule_now(gated, rule)["hits"] == 1


def test_uploads_refused_before_their_body_is_read_are_ridden_out(
    gated: Gated, gcs_bucket: storage.Bucket, faults: None
) -> None:
    uploads = rf"/upload/storage/v1/b/{gcs_bucket.name}/o$"
    rule = add_rule(gated, service="gcs", status=503, method="POST", path=uploads, count=2)
    gcs_bucket.blob("refused.jsonl").upload_from_string(DATA)  # storage 3.x retries uploads by default
    assert gcs_bucket.blob("refused.jsonl").download_as_bytes() == DATA
    assert rule_now(gated, rule)["hits"] == 2


def test_an_upload_answered_503_after_it_was_applied_is_kept(
    gated: Gated, gcs_bucket: storage.Bucket, faults: None
) -> None:
    uploads = rf"/upload/storage/v1/b/{gcs_bucket.name}/o$"
    rule = add_rule(gated, service="gcs", when="after", status=503, method="POST", path=uploads, count=1)
    with pytest.raises(exceptions.ServiceUnavailable):
        gcs_bucket.blob("late.jsonl").upload_from_string(DATA, retry=None)
    assert gcs_bucket.blob("late.jsonl").download_as_bytes() == DATA  # the lost reply's upload landed
    assert rule_now(gated, rule)["hits"] == 1
