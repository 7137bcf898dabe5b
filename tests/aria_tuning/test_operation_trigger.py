"""The operation trigger against the Vertex emulator: it waits while a deploy is held, reports success
once every operation is done, and the first failed one (named, in Vertex's words) as an error."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from typing import Any

import pytest
from aria_tuning.triggers import VertexOperationTrigger

from scripts.emulators import emulator_control
from tests.aria_tuning.conftest import Emulator, first_event, roundtrip
from tests.aria_tuning.trigger_support import event_of, messages, polled, transient_status
from tests.support import airflow as airflow_support

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")

REGION = "us-central1"
PARENT = f"projects/aria-local/locations/{REGION}"
FAST = {"poll_interval": 0.02, "max_poll_interval": 0.1}


def held_deploys(vertex: str, count: int) -> list[str]:
    """Names of `count` DeployModel operations the emulator holds in flight (one endpoint each)."""
    from aria_tuning.hooks import VertexHook
    from google.cloud import aiplatform_v1

    hook = VertexHook()
    models, endpoints = hook.client("model", REGION), hook.client("endpoint", REGION)
    names = []
    for _ in range(count):
        upload = models.upload_model(
            parent=PARENT, model=aiplatform_v1.Model(display_name=f"op-trigger-{uuid.uuid4().hex[:6]}")
        ).result(timeout=30)
        endpoint = endpoints.create_endpoint(
            parent=PARENT, endpoint=aiplatform_v1.Endpoint(display_name="op-trigger")
        ).result(timeout=30)
        emulator_control(vertex, "operations:holdNext", {"type": "DeployModel", "path": endpoint.name})
        deploying = endpoints.deploy_model(
            endpoint=endpoint.name, deployed_model=aiplatform_v1.DeployedModel(model=upload.model)
        )
        names.append(deploying.operation.name)
    return names


def steer(vertex: str, name: str, verb: str, body: dict[str, Any] | None = None) -> None:
    emulator_control(vertex, f"operations/{name}:{verb}", body or {})


class RecordsSleeps(VertexOperationTrigger):
    """The operation trigger, recording the sleep after each round of polls (each pending operation once)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sleeps: list[float] = []

    def _backoff(self, grow: bool) -> float:
        sleep = super()._backoff(grow)
        self.sleeps.append(sleep)
        return sleep


def run_until(trigger: RecordsSleeps, then: Any) -> dict[str, Any]:
    """Run the trigger; once it has polled every operation, do `then()`; its event."""

    async def main() -> dict[str, Any]:
        waiting = asyncio.ensure_future(first_event(trigger))
        await polled(trigger.sleeps, 1, waiting)  # a first round, and it fired on none of them
        await asyncio.to_thread(then)
        return await asyncio.wait_for(waiting, 10)

    return asyncio.run(main())


def test_it_waits_for_held_operations_and_succeeds_when_all_are_done(
    vertex: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    names = held_deploys(vertex, 2)
    # Its own connection: google_cloud_default now leads nowhere, so a trigger ignoring it would fail.
    monkeypatch.setenv("AIRFLOW_CONN_ARIA_OPERATIONS", os.environ[airflow_support.CONN_ENV])
    monkeypatch.setenv(
        airflow_support.CONN_ENV,
        airflow_support.connection_json(airflow_support.connection_extra("http://127.0.0.1:1")),
    )
    trigger = RecordsSleeps(operation_names=names, gcp_conn_id="aria_operations", **FAST)

    def release_all() -> None:
        for name in names:
            steer(vertex, name, "release")

    event = run_until(roundtrip(trigger), release_all)
    assert event == {"status": "success", "operations": names}
    assert messages(capsys) == [f"{names[0]}: done", f"{names[1]}: done"]


def test_the_first_failed_operation_is_the_error_in_vertexs_words(vertex: str, emulator: Emulator) -> None:
    names = held_deploys(vertex, 2)
    trigger = RecordsSleeps(operation_names=names, **FAST)

    def release_one_fail_the_other() -> None:
        steer(vertex, names[0], "release")
        steer(vertex, names[1], "fail", {"code": 8, "message": "Quota exceeded for custom model serving"})

    event = run_until(roundtrip(trigger), release_one_fail_the_other)
    assert event == {
        "status": "error",
        "operations": names,
        "operation": names[1],
        "message": "Quota exceeded for custom model serving",
    }


def test_a_failed_operation_is_reported_while_the_others_are_still_held(vertex: str) -> None:
    """Each round polls every pending operation: one held does not hide a failure behind it."""
    names = held_deploys(vertex, 2)
    trigger = RecordsSleeps(operation_names=names, **FAST)
    quota = {"code": 8, "message": "Quota exceeded for custom model serving"}
    try:
        event = run_until(roundtrip(trigger), lambda: steer(vertex, names[1], "fail", quota))
    finally:
        steer(vertex, names[0], "release")  # never left held for later tests, whatever happened here
    assert event == {
        "status": "error",
        "operations": names,
        "operation": names[1],
        "message": quota["message"],
    }


def test_no_operations_is_success_at_once() -> None:
    event = event_of(VertexOperationTrigger(operation_names=[]))
    assert event == {"status": "success", "operations": []}


def test_a_transient_error_on_a_poll_is_ridden_out_and_named(
    vertex: str, emulator: Emulator, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [name] = held_deploys(vertex, 1)
    emulator.fault(status=transient_status(transport), method="GET", path=f"{name}$", count=2)
    trigger = RecordsSleeps(operation_names=[name], transient_error_budget=3, **FAST)
    assert run_until(trigger, lambda: steer(vertex, name, "release"))["status"] == "success"
    said = messages(capsys)
    for n, message in enumerate(said[:2], start=1):
        assert re.fullmatch(rf"{re.escape(name)}: transient error {n}/3 \(.+\); retrying in [\d.]+s", message)
    assert said[2:] == [f"{name}: done"]


def test_while_an_operation_is_held_the_polls_back_off_to_the_cap(vertex: str, emulator: Emulator) -> None:
    [name] = held_deploys(vertex, 1)
    recording = RecordsSleeps(operation_names=[name], poll_interval=0.01, max_poll_interval=0.08)

    async def main() -> dict[str, Any]:
        waiting = asyncio.ensure_future(first_event(recording))
        await polled(recording.sleeps, 6, waiting)  # six rounds while it is held
        await asyncio.to_thread(steer, vertex, name, "release")
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(main()) == {"status": "success", "operations": [name]}
    caps = [min(0.08, 0.01 * 2**n) for n in range(1, len(recording.sleeps) + 1)]  # 0.02, 0.04, 0.08, ...
    assert all(cap / 2 <= sleep <= cap for sleep, cap in zip(recording.sleeps, caps, strict=True)), (
        recording.sleeps
    )
