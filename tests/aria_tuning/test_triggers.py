"""The tuning-job trigger against the Vertex emulator: round trip, transient faults, PAUSED, its events and
what it logs (cancellation: test_trigger_cancellation.py)."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aria_tuning.triggers import VertexOperationTrigger, VertexTuningJobTrigger

from tests.aria_tuning.conftest import LONG_STEPS, Emulator, first_event, roundtrip
from tests.aria_tuning.trigger_support import (
    RecordsPolls,
    event_of,
    messages,
    polled,
    starting,
    transient_status,
)

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")

TUNER = "large-language-model-tuner"
Start = Callable[..., VertexTuningJobTrigger]


@pytest.fixture
def start(datasets: dict[str, str], emulator: Emulator) -> Iterator[Start]:
    yield from starting(datasets, emulator)


def _task_states(job: str) -> dict[str, str]:
    """A pipeline job's task states, as Vertex reports them."""
    from aria_tuning.hooks import VertexHook
    from aria_tuning.resources import resource_region
    from aria_tuning.vertex_jobs import short_state

    found = VertexHook().client("pipeline", resource_region(job)).get_pipeline_job(name=job)
    return {task.task_name: short_state(task.state) for task in found.job_detail.task_details}


@pytest.mark.parametrize(
    "trigger",
    [
        VertexTuningJobTrigger(
            job_name="projects/p/locations/europe-west4/pipelineJobs/j", method="pipeline", poll_interval=2,
            max_poll_interval=8, transient_error_budget=3, cancel_on_kill=False, impersonation_chain=["a@b"],
        ),
        VertexOperationTrigger(operation_names=["projects/p/locations/l/endpoints/1/operations/2"]),
    ],
)  # fmt: skip
def test_serialize_round_trip(trigger: Any) -> None:
    path, kwargs = trigger.serialize()
    rebuilt = roundtrip(trigger)
    assert path == f"{type(trigger).__module__}.{type(trigger).__qualname__}"
    assert type(rebuilt) is type(trigger)
    assert rebuilt.serialize() == (path, kwargs)


def test_transient_503s_are_ridden_out(start: Start, emulator: Emulator) -> None:
    trigger = start()
    job_id = trigger.job_name.rsplit("/", 1)[1]
    rule = emulator.fault(status=503, rate=1.0, method="GET", path=f"pipelineJobs/{job_id}$", count=4)
    event = event_of(roundtrip(trigger), timeout=60)  # google-auth's session backs off 503s itself
    assert event["status"] == "success", event
    hits = [r for r in emulator.fault_rules() if r["id"] == rule["id"]]
    assert hits[0]["hits"] == 4


def test_transient_error_budget_is_bounded(start: Start, emulator: Emulator) -> None:
    trigger = start(transient_error_budget=1)
    job_id = trigger.job_name.rsplit("/", 1)[1]
    emulator.fault(status=503, rate=1.0, method="GET", path=f"pipelineJobs/{job_id}$", count=6)
    event = event_of(roundtrip(trigger), timeout=60)
    assert event["status"] == "error" and "polling failed" in event["message"]


def test_paused_is_not_success(start: Start, emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    trigger = start(train_steps=LONG_STEPS)
    emulator.force(trigger.job_name, "pause")
    recording = roundtrip(RecordsPolls(**trigger.serialize()[1]))

    async def wait_then_resume() -> dict:
        waiting = asyncio.ensure_future(first_event(recording))
        await polled(recording.polls, 3, waiting)  # it has seen PAUSED, and polled on
        emulator.force(trigger.job_name, "resume")
        emulator.force(trigger.job_name, "succeed")
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(wait_then_resume())["state"] == "SUCCEEDED"
    assert [state for state, _ in recording.polls[:3]] == ["PAUSED"] * 3
    said, warning = messages(capsys), f"{trigger.job_name} is PAUSED: not a success; waiting for it to resume"
    assert said.count(warning) == 1  # on the change to PAUSED, right after it is logged
    assert said[said.index(f"{trigger.job_name}: state (start) -> PAUSED") + 1] == warning


def test_polls_read_only_the_fields_they_need(start: Start) -> None:
    trigger = roundtrip(start(train_steps=LONG_STEPS))

    async def reads() -> tuple[Any, Any]:
        hook = trigger._hook()
        await hook.open()
        try:
            return await trigger._get_job(hook), await trigger._get_job(hook, full=True)
        finally:
            await hook.close()

    poll, full = asyncio.run(reads())
    # Both carry the state (the job may have started between the two reads: each GET advances its clock).
    assert poll.name == full.name and poll.state and full.state
    assert not poll.runtime_config.gcs_output_directory and full.runtime_config.gcs_output_directory


class CountingClients(RecordsPolls):
    """The tuning trigger, counting the API clients it builds (and recording its polls)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built = 0  # this instance's count, never shared through the class

    def _hook(self) -> object:  # type: ignore[override]
        hook = super()._hook()
        opened = hook.open

        async def counted() -> None:
            self.built += 1
            await opened()

        hook.open = counted  # type: ignore[method-assign]
        return hook


def test_one_client_per_trigger_and_every_change_is_logged_once(
    start: Start, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = start(train_steps=LONG_STEPS)
    # With the plan's estimate, as the operator passes it for text-bison: finish-aware polls, and a
    # progress line that estimates the tuner's step.
    planned = {"expected_seconds": 600.0, "expected_range_seconds": [300.0, 900.0]}
    counting = CountingClients(**{**trigger.serialize()[1], **planned})
    job = trigger.job_name

    async def run_while_the_tuner_runs() -> dict:
        waiting = asyncio.ensure_future(first_event(counting))
        # Once the tuner runs (seen by us), any later poll is the trigger's: it has seen it too.
        deadline = asyncio.get_running_loop().time() + 30
        while (await asyncio.to_thread(_task_states, job)).get(TUNER) != "RUNNING":
            assert asyncio.get_running_loop().time() < deadline, "the tuner never ran"
            assert not waiting.done(), f"the trigger ended before the tuner ran: {waiting.result()!r}"
            await asyncio.sleep(0.02)
        await polled(counting.polls, len(counting.polls) + 1, waiting)
        emulator.force(job, "succeed")
        return await asyncio.wait_for(waiting, 10)

    event = asyncio.run(run_while_the_tuner_runs())
    assert counting.built == 1
    assert event.keys() == {"status", "job", "state", "method", "message", "tuned_model", "endpoint"} | {
        "create_time",
        "start_time",
        "end_time",
    }
    assert (event["status"], event["job"], event["state"], event["method"]) == (
        "success",
        job,
        "SUCCEEDED",
        "pipeline",
    )
    # What only the final, full read has: the outputs of the upload and deploy tasks.
    assert (
        event["message"] == "" and "/models/" in event["tuned_model"] and "/endpoints/" in event["endpoint"]
    )

    said = messages(capsys)
    changes = [m.removeprefix(f"{job}: state ").split(" -> ") for m in said if m.startswith(f"{job}: state ")]
    assert changes[0][0] == "(start)" and changes[-1] == ["RUNNING", "SUCCEEDED"]
    assert all(a != b for a, b in changes) and all(x[1] == y[0] for x, y in itertools.pairwise(changes))
    tasks: dict[str, list[str]] = {}
    for m in said:
        if m.startswith(f"{job}: pipeline task "):
            name, state = m.removeprefix(f"{job}: pipeline task ").rsplit(" is ", 1)
            tasks.setdefault(name, []).append(state)
    assert "RUNNING" in tasks[TUNER] and tasks[TUNER][-1] == tasks["upload-llm-model"][-1] == "SUCCEEDED"
    assert all(a != b for states in tasks.values() for a, b in itertools.pairwise(states)), tasks  # once each
    # While it runs, each poll says how far it is; the line stops with the run.
    progress = [i for i, m in enumerate(said) if m.startswith(f"{job}: running ")]
    assert any(f", now {TUNER}; step ~" in said[i] and " of 30000 " in said[i] for i in progress), [
        said[i] for i in progress
    ]
    assert max(progress) < said.index(f"{job}: state RUNNING -> SUCCEEDED")


def test_a_finished_gemini_job_is_one_event_with_its_tuned_model(start: Start, emulator: Emulator) -> None:
    trigger = start("gemini-2.5-flash")
    emulator.force(trigger.job_name, "succeed")
    event = event_of(roundtrip(trigger))
    assert (event["status"], event["job"], event["state"], event["method"]) == (
        "success",
        trigger.job_name,
        "SUCCEEDED",
        "tuning_job",
    )
    assert (
        event["message"] == "" and "/models/" in event["tuned_model"] and "/endpoints/" in event["endpoint"]
    )
    assert event["create_time"] and event["start_time"] and event["end_time"]


def test_a_transient_error_on_a_poll_is_ridden_out_and_named(
    start: Start, emulator: Emulator, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = start(transient_error_budget=3)
    job, job_id = trigger.job_name, trigger.job_name.rsplit("/", 1)[1]
    emulator.force(job, "succeed")
    emulator.fault(status=transient_status(transport), method="GET", path=f"pipelineJobs/{job_id}$", count=2)
    assert event_of(roundtrip(trigger))["status"] == "success"
    said = messages(capsys)
    for n, message in enumerate(said[:2], start=1):
        assert re.fullmatch(rf"{re.escape(job)}: transient error {n}/3 \(.+\); retrying in [\d.]+s", message)
    assert said[2] == f"{job}: state (start) -> SUCCEEDED"


def test_a_finished_job_that_cannot_be_read_is_an_error_event_with_its_state(
    start: Start, emulator: Emulator
) -> None:
    trigger = start()
    job, job_id = trigger.job_name, trigger.job_name.rsplit("/", 1)[1]
    emulator.force(job, "succeed")

    class RefusedTheFullRead(VertexTuningJobTrigger):
        """The trigger whose full read of the finished job Vertex refuses (403), as if its permission was
        revoked between the poll that saw the job end and that read."""

        async def _get_job(self, hook: Any, full: bool = False) -> Any:
            if full:
                await asyncio.to_thread(
                    emulator.fault, status=403, method="GET", path=f"pipelineJobs/{job_id}$", count=1
                )
            return await super()._get_job(hook, full)

    event = event_of(RefusedTheFullRead(**trigger.serialize()[1]))
    message = event.pop("message")
    assert event == {"status": "error", "job": job, "state": "SUCCEEDED", "method": "pipeline"}
    assert re.fullmatch(
        r"reading the finished job failed: (GET \S+: )?injected fault \(rule \d+, .*\): HTTP 403", message
    )


def test_polls_back_off_while_the_state_holds_and_start_over_when_it_changes(start: Start) -> None:
    trigger = start(train_steps=LONG_STEPS)
    recording = RecordsPolls(**{**trigger.serialize()[1], "poll_interval": 0.01, "max_poll_interval": 0.16})

    async def poll_a_while() -> None:
        waiting = asyncio.ensure_future(first_event(recording))
        await polled(recording.polls, 8, waiting)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(poll_a_while())
    seen, delay = "", 0.0
    for state, sleep in recording.polls:
        delay = 0.01 if state != seen else min(0.16, delay * 2)  # a change starts over; a repeat doubles
        seen = state
        assert delay / 2 <= sleep <= delay, recording.polls


def test_the_trigger_talks_through_its_own_connection(start: Start, emulator: Emulator) -> None:
    from tests.support import airflow as airflow_support

    trigger = start()
    emulator.force(trigger.job_name, "succeed")
    kwargs = {**trigger.serialize()[1], "gcp_conn_id": "aria_tuning", "transient_error_budget": 0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_ARIA_TUNING", os.environ[airflow_support.CONN_ENV])
        # google_cloud_default now leads nowhere: a trigger ignoring its own connection fails.
        nowhere = airflow_support.connection_extra("http://127.0.0.1:1")
        patch.setenv(airflow_support.CONN_ENV, airflow_support.connection_json(nowhere))
        assert event_of(roundtrip(VertexTuningJobTrigger(**kwargs)))["status"] == "success"


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets_on_change() -> None:
    trigger = VertexOperationTrigger(operation_names=["x"], poll_interval=1, max_poll_interval=5)
    sleeps = [trigger._backoff(grow=True) for _ in range(5)]
    caps = [2, 4, 5, 5, 5]
    assert all(cap / 2 <= sleep <= cap for sleep, cap in zip(sleeps, caps, strict=True))
    assert trigger._backoff(grow=False) <= 1


@pytest.mark.parametrize(
    ("state", "message", "expected"),
    [
        ("FAILED", "Resource exhausted: TPU quota", "Resource exhausted: TPU quota"),
        ("EXPIRED", "", "the job ended EXPIRED without an error message"),
        ("CANCELLED", "", "the job was cancelled"),
        (
            "CANCELLED",
            "Cancelled by the reconciler",
            "the job was cancelled (Vertex: Cancelled by the reconciler)",
        ),
    ],
)
def test_terminal_states_other_than_succeeded_are_errors(state: str, message: str, expected: str) -> None:
    trigger = VertexTuningJobTrigger(job_name="projects/p/locations/l/pipelineJobs/j", method="pipeline")
    final = trigger._final({"job": trigger.job_name, "state": state, "message": message})
    assert final["status"] == "error" and final["message"] == expected


def test_an_operation_that_cannot_be_read_is_an_error_event_naming_it(vertex: str) -> None:
    missing = "projects/aria-local/locations/us-central1/endpoints/404404/operations/1"
    event = event_of(VertexOperationTrigger(operation_names=[missing], poll_interval=0.05))
    assert event["status"] == "error" and event["operation"] == missing
    assert event["operations"] == [missing] and "not found" in event["message"].lower()


def test_a_job_that_cannot_be_read_is_an_error_event_naming_it(vertex: str) -> None:
    missing = "projects/aria-local/locations/europe-west4/pipelineJobs/aria-missing-job"
    trigger = VertexTuningJobTrigger(job_name=missing, method="pipeline", poll_interval=0.05)
    event = event_of(trigger)
    message = event.pop("message")
    assert event == {"status": "error", "job": missing, "state": "UNKNOWN", "method": "pipeline"}
    assert message.startswith("polling failed: ") and "not found" in message.lower()


def test_a_cancel_landing_with_the_reply_still_cancels_the_trigger() -> None:
    """Python 3.11's wait_for (google-auth's REST timeout guard) returns a reply that arrives in the same
    loop pass as a cancel and drops the cancel; the trigger must still see it, with its message."""
    trigger = VertexOperationTrigger(operation_names=["projects/p/locations/l/operations/1"])

    async def cancel_as_the_reply_lands() -> None:
        reply = asyncio.get_running_loop().create_future()

        async def request() -> str:
            return await asyncio.wait_for(reply, 10)

        polling = asyncio.ensure_future(trigger._call("a poll", request))
        await asyncio.sleep(0)  # the request waits for its reply
        reply.set_result("the job")
        polling.cancel("user action")
        with pytest.raises(asyncio.CancelledError) as raised:
            await polling
        assert raised.value.args == ("user action",)

    asyncio.run(cancel_as_the_reply_lands())
