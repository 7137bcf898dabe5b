"""The tuning-job trigger against the Vertex emulator: round trip, transient faults, PAUSED, its events and
what it logs (cancellation: test_trigger_cancellation.py)."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import pytest
from aria_tuning.triggers import VertexOperationTrigger, VertexTuningJobTrigger

from tests.aria_tuning.conftest import (
    LONG_STEPS,
    Emulator,
    first_event,
    new_ti,
    roundtrip,
    submit,
    tuning_operator,
)

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")


TUNER = "large-language-model-tuner"


def _task_states(job: str) -> dict[str, str]:
    """A pipeline job's task states, as Vertex reports them."""
    from aria_tuning.hooks import VertexHook
    from aria_tuning.resources import resource_region
    from aria_tuning.vertex_jobs import short_state

    found = VertexHook().client("pipeline", resource_region(job)).get_pipeline_job(name=job)
    return {task.task_name: short_state(task.state) for task in found.job_detail.task_details}


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    """What the triggers logged (Airflow's structlog writes to the captured stdout/stderr)."""
    captured = capsys.readouterr()
    return captured.out + captured.err


#: A line logged from triggers.py, as structlog writes it: `<time> [<level>] <message> [<logger>] loc=...`.
_TRIGGER_LINE = re.compile(r"^\S+ \[\w+ *\] (?P<message>.*) \[[\w.]+\] loc=triggers\.py:\d+$", re.M)


def messages(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The messages the triggers logged since the last read, whole and in order."""
    return [line["message"] for line in _TRIGGER_LINE.finditer(logged(capsys))]


def transient_status(transport: str) -> int:
    """An HTTP status the trigger itself rides out, not the client under it: over REST google-auth's
    session retries 500/503/504/408/429 on its own, after a 1 s backoff (google/auth/transport/__init__.py,
    DEFAULT_RETRYABLE_STATUS_CODES), and not 502; over gRPC 503 is UNAVAILABLE, which no channel retries,
    while the emulator answers a 502 as UNKNOWN (vertex_emulator/error_details.py), which is no transient."""
    return 502 if transport == "rest" else 503


async def served_while_waiting(
    emulator: Emulator, name: str, at_least: int, waiting: asyncio.Future[Any], timeout: float = 10
) -> None:
    """Wait until the emulator has served `at_least` GETs on `name` while the trigger (`waiting`) runs:
    a trigger that ended first fails the test at once, with what it ended with."""
    served: asyncio.Future[Any] = asyncio.ensure_future(emulator.served(name, at_least, timeout=timeout))
    await asyncio.wait({served, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if not served.done():
        served.cancel()
        raise AssertionError(f"the trigger ended while it should still poll {name}: {waiting.result()!r}")
    served.result()


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


def test_transient_503s_are_ridden_out(vertex: str, datasets: dict[str, str], emulator: Emulator) -> None:
    trigger = submit(tuning_operator(datasets), new_ti())
    job_id = trigger.job_name.rsplit("/", 1)[1]
    rule = emulator.fault(status=503, rate=1.0, method="GET", path=f"pipelineJobs/{job_id}$", count=4)
    event = asyncio.run(first_event(roundtrip(trigger)))
    assert event["status"] == "success", event
    hits = [r for r in emulator.fault_rules() if r["id"] == rule["id"]]
    assert hits[0]["hits"] == 4


def test_transient_error_budget_is_bounded(vertex: str, datasets: dict[str, str], emulator: Emulator) -> None:
    trigger = submit(tuning_operator(datasets, transient_error_budget=1), new_ti())
    job_id = trigger.job_name.rsplit("/", 1)[1]
    emulator.fault(status=503, rate=1.0, method="GET", path=f"pipelineJobs/{job_id}$", count=6)
    event = asyncio.run(first_event(roundtrip(trigger)))
    assert event["status"] == "error" and "polling failed" in event["message"]


def test_paused_is_not_success(
    vertex: str, datasets: dict[str, str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti())
    emulator.force(trigger.job_name, "pause")
    polls = emulator.calls(trigger.job_name)

    async def wait_then_resume() -> dict:
        waiting = asyncio.ensure_future(first_event(roundtrip(trigger)))
        await served_while_waiting(emulator, trigger.job_name, polls + 3, waiting)  # saw PAUSED, polled on
        emulator.force(trigger.job_name, "resume")
        emulator.force(trigger.job_name, "succeed")
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(wait_then_resume())["state"] == "SUCCEEDED"
    said = messages(capsys)
    assert said.count(f"{trigger.job_name} is PAUSED: not a success; waiting for it to resume") == 1
    assert f"{trigger.job_name}: state (start) -> PAUSED" in said


def test_polls_read_only_the_fields_they_need(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    trigger = roundtrip(submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti()))

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
    emulator.force(trigger.job_name, "succeed")


class CountingClients(VertexTuningJobTrigger):
    """The tuning trigger, counting the API clients it builds."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
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
    vertex: str, datasets: dict[str, str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti())
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
        await served_while_waiting(emulator, job, await asyncio.to_thread(emulator.calls, job) + 1, waiting)
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


def test_a_finished_gemini_job_is_one_event_with_its_tuned_model(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    trigger = submit(tuning_operator(datasets, "gemini-2.5-flash"), new_ti())
    emulator.force(trigger.job_name, "succeed")
    event = asyncio.run(first_event(roundtrip(trigger)))
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
    vertex: str,
    datasets: dict[str, str],
    emulator: Emulator,
    transport: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trigger = submit(tuning_operator(datasets, transient_error_budget=3), new_ti())
    job, job_id = trigger.job_name, trigger.job_name.rsplit("/", 1)[1]
    emulator.force(job, "succeed")
    emulator.fault(status=transient_status(transport), method="GET", path=f"pipelineJobs/{job_id}$", count=2)
    assert asyncio.run(first_event(roundtrip(trigger)))["status"] == "success"
    said = messages(capsys)
    for n, message in enumerate(said[:2], start=1):
        assert re.fullmatch(rf"{re.escape(job)}: transient error {n}/3 \(.+\); retrying in [\d.]+s", message)
    assert said[2] == f"{job}: state (start) -> SUCCEEDED"


def test_a_finished_job_that_cannot_be_read_is_an_error_event_with_its_state(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    trigger = submit(tuning_operator(datasets), new_ti())
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

    event = asyncio.run(first_event(RefusedTheFullRead(**trigger.serialize()[1])))
    message = event.pop("message")
    assert event == {"status": "error", "job": job, "state": "SUCCEEDED", "method": "pipeline"}
    assert re.fullmatch(
        r"reading the finished job failed: (GET \S+: )?injected fault \(rule \d+, .*\): HTTP 403", message
    )


class RecordsSleeps(VertexTuningJobTrigger):
    """The tuning trigger, recording the state each poll saw and the sleep that followed it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sleeps: list[tuple[str, float]] = []

    def _next_sleep(self, job: Any, grow: bool) -> float:
        from aria_tuning.vertex_jobs import short_state

        sleep = super()._next_sleep(job, grow)
        self.sleeps.append((short_state(job.state), sleep))
        return sleep


def test_polls_back_off_while_the_state_holds_and_start_over_when_it_changes(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti())
    recording = RecordsSleeps(**{**trigger.serialize()[1], "poll_interval": 0.01, "max_poll_interval": 0.16})

    async def poll_a_while() -> None:
        waiting = asyncio.ensure_future(first_event(recording))
        deadline = asyncio.get_running_loop().time() + 10
        while len(recording.sleeps) < 8:
            assert asyncio.get_running_loop().time() < deadline, f"8 polls not reached: {recording.sleeps}"
            assert not waiting.done(), f"the trigger ended: {waiting.result()!r}"
            await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(poll_a_while())
    emulator.force(trigger.job_name, "succeed")
    seen, delay = "", 0.0
    for state, sleep in recording.sleeps:
        delay = 0.01 if state != seen else min(0.16, delay * 2)  # a change starts over; a repeat doubles
        seen = state
        assert delay / 2 <= sleep <= delay, recording.sleeps


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
    ],
)
def test_terminal_states_other_than_succeeded_are_errors(state: str, message: str, expected: str) -> None:
    trigger = VertexTuningJobTrigger(job_name="projects/p/locations/l/pipelineJobs/j", method="pipeline")
    final = trigger._final({"job": trigger.job_name, "state": state, "message": message})
    assert final["status"] == "error" and final["message"] == expected


def test_an_operation_that_cannot_be_read_is_an_error_event_naming_it(vertex: str) -> None:
    missing = "projects/aria-local/locations/us-central1/endpoints/404404/operations/1"
    event = asyncio.run(first_event(VertexOperationTrigger(operation_names=[missing], poll_interval=0.05)))
    assert event["status"] == "error" and event["operation"] == missing
    assert event["operations"] == [missing] and "not found" in event["message"].lower()


def test_a_job_that_cannot_be_read_is_an_error_event_naming_it(vertex: str) -> None:
    missing = "projects/aria-local/locations/europe-west4/pipelineJobs/aria-missing-job"
    trigger = VertexTuningJobTrigger(job_name=missing, method="pipeline", poll_interval=0.05)
    event = asyncio.run(first_event(trigger))
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
