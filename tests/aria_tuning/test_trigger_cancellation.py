"""The tuning trigger cancels its Vertex job only on a user's action, against the Vertex emulator: on_kill
(Airflow >= 3.3) and run()'s own cancel (older Airflow), the task-state rules, and what each decision logs.

The task instance's state is what `with_task_state` says (tests/aria_tuning/test_trigger_task_state.py
reads the real one from the metadata DB).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator

import pytest
from aria_tuning import triggers
from aria_tuning.triggers import VertexTuningJobTrigger

from tests.aria_tuning.conftest import LONG_STEPS, Emulator, first_event, new_ti, roundtrip
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

ALIVE = ("PENDING", "RUNNING")  # stopped at its first poll, a job may not have started yet
STOPPED = ("CANCELLING", "CANCELLED")


def job_state(job: str) -> str:
    """The job's state as Vertex reports it (a GET, which is when the emulator advances its clock)."""
    from aria_tuning.hooks import VertexHook
    from aria_tuning.resources import resource_region
    from aria_tuning.vertex_jobs import short_state

    if "/pipelineJobs/" in job:
        return short_state(
            VertexHook().client("pipeline", resource_region(job)).get_pipeline_job(name=job).state
        )
    return short_state(VertexHook().client("tuning", resource_region(job)).get_tuning_job(name=job).state)


def with_task_state(trigger: VertexTuningJobTrigger, state: str | None) -> RecordsPolls:
    """The trigger as the triggerer rebuilds it, seeing its task instance in `state` on the API server
    (and recording its polls)."""

    class SeesTaskState(RecordsPolls):
        async def _task_state(self) -> str | None:
            return state

    return SeesTaskState(**trigger.serialize()[1])


Start = Callable[..., VertexTuningJobTrigger]


@pytest.fixture
def start(datasets: dict[str, str], emulator: Emulator) -> Iterator[Start]:
    yield from starting(datasets, emulator)


@pytest.fixture
def long_job(start: Start) -> Start:
    """`long_job(**operator arguments)`: the trigger of a pipeline job running for minutes unless steered."""
    return lambda **overrides: start(train_steps=LONG_STEPS, **overrides)


@pytest.mark.parametrize("model", ["text-bison@001", "gemini-2.5-flash"])
def test_user_kill_cancels_the_job(start: Start, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    long = {"train_steps": LONG_STEPS} if model.startswith("text") else {"epochs": 50}
    trigger = start(model, **long)
    assert triggers.TRIGGER_HAS_ON_KILL  # Airflow >= 3.3 calls on_kill when a trigger leaves this triggerer
    asyncio.run(with_task_state(trigger, "failed").on_kill())  # a user marked the deferred task failed
    assert job_state(trigger.job_name) in STOPPED
    assert messages(capsys) == [
        f"Cancelling {trigger.job_name} because the deferred task was stopped by a user",
        f"Cancellation of {trigger.job_name} requested",
    ]
    event = event_of(roundtrip(trigger))
    assert event["status"] == "error" and event["state"] == "CANCELLED" and "cancel" in event["message"]


def test_a_transient_error_on_the_cancel_is_ridden_out_and_named(
    long_job: Start, emulator: Emulator, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = long_job(transient_error_budget=3)
    job_id = trigger.job_name.rsplit("/", 1)[1]
    status = transient_status(transport)
    rule = emulator.fault(status=status, method="POST", path=f"pipelineJobs/{job_id}:cancel$", count=1)
    asyncio.run(with_task_state(trigger, "failed").on_kill())
    assert job_state(trigger.job_name) in STOPPED  # the second cancel landed
    assert [r["hits"] for r in emulator.fault_rules() if r["id"] == rule["id"]] == [1]
    said = messages(capsys)
    assert said[0] == f"Cancelling {trigger.job_name} because the deferred task was stopped by a user"
    assert re.fullmatch(
        rf"{re.escape(trigger.job_name)}: transient error 1/3 \(.+\); retrying in [\d.]+s", said[1]
    )
    assert said[2:] == [f"Cancellation of {trigger.job_name} requested"]


def test_without_cancel_on_kill_a_user_kill_leaves_the_job_running(
    long_job: Start, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = long_job(cancel_on_kill=False)
    asyncio.run(with_task_state(trigger, "failed").on_kill())
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == 0 and messages(capsys) == []
    assert job_state(trigger.job_name) in ALIVE


def test_triggerer_restart_does_not_cancel(long_job: Start, emulator: Emulator) -> None:
    trigger = long_job()
    recording = roundtrip(RecordsPolls(**trigger.serialize()[1]))

    async def run_then_stop() -> None:
        task = asyncio.ensure_future(first_event(recording))
        await polled(recording.polls, 1, task)  # the trigger is polling
        task.cancel()  # what a triggerer shutdown or redistribution does (no user-action message)
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_stop())
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == 0
    assert job_state(trigger.job_name) in ALIVE


def test_on_kill_while_the_task_is_still_deferred_does_not_cancel(
    long_job: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reassigned trigger (the old triggerer missed its heartbeat) gets on_kill too: the job lives."""
    trigger = long_job()
    asyncio.run(with_task_state(trigger, "deferred").on_kill())
    assert job_state(trigger.job_name) in ALIVE
    assert messages(capsys) == [
        f"Not cancelling {trigger.job_name}: its task is still deferred "
        "(the trigger moved to another triggerer)"
    ]


def test_a_trigger_without_a_task_instance_cancels_nothing(
    long_job: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = roundtrip(long_job())  # no task instance: its real _task_state answers None
    asyncio.run(trigger.on_kill())
    assert job_state(trigger.job_name) in ALIVE
    assert messages(capsys)[0] == f"No task instance on this trigger; not cancelling {trigger.job_name}"


def test_a_task_state_that_cannot_be_read_cancels_nothing_and_logs_why(
    long_job: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = roundtrip(long_job())
    trigger.task_instance = new_ti()  # a task instance, but no supervisor to ask for its state
    assert asyncio.run(trigger._user_acted()) is False
    output = capsys.readouterr()
    text = output.out + output.err
    assert f"] Could not read the task state; not cancelling {trigger.job_name} [" in text
    assert "Traceback (most recent call last)" in text and "SUPERVISOR_COMMS" in text  # the reason, logged
    assert job_state(trigger.job_name) in ALIVE


@pytest.mark.parametrize(
    ("cancel_on_kill", "task_state", "cancelled"),
    [(True, "failed", True), (True, "deferred", False), (False, "failed", False)],
)
def test_before_airflow_3_3_a_stopped_trigger_cancels_the_job_only_on_a_user_action(
    long_job: Start,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    cancel_on_kill: bool,
    task_state: str,
    cancelled: bool,
) -> None:
    """Airflow 3.1 and 3.2 call no on_kill: they cancel the trigger's coroutine, and run() decides."""
    monkeypatch.setattr(triggers, "TRIGGER_HAS_ON_KILL", False)
    trigger = long_job(cancel_on_kill=cancel_on_kill)
    watched = with_task_state(trigger, task_state)

    async def run_then_stop() -> None:
        task = asyncio.ensure_future(first_event(watched))
        await polled(watched.polls, 1, task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_stop())
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == int(cancelled)
    assert job_state(trigger.job_name) in (STOPPED if cancelled else ALIVE)


async def _in_triggerer(trigger: VertexTuningJobTrigger, cancel_message: str | None, task_state: str) -> None:
    """Run the trigger in Airflow's own TriggerRunner, then stop it (once it polls) the way the
    triggerer would."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    watched = with_task_state(trigger, task_state)
    runner = TriggerRunner()
    # The runner's own entry for a trigger; its task is set once created, as TriggerRunner does.
    runner.triggers[1] = {"task": None, "name": "components-test", "events": 0, "is_watcher": False}  # type: ignore[typeddict-item]
    task = asyncio.ensure_future(runner.run_trigger(1, watched))
    runner.triggers[1]["task"] = task
    await polled(watched.polls, 1, task)
    task.cancel(cancel_message)
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("user_action", "task_state", "expected"),
    [(True, "failed", "CANCELLED"), (False, "failed", "RUNNING"), (True, "deferred", "RUNNING")],
)
def test_airflow_triggerer_cancels_only_on_user_action(
    long_job: Start, emulator: Emulator, user_action: bool, task_state: str, expected: str
) -> None:
    """Mark-failed/clear reaches on_kill (the job is cancelled); a triggerer restart does not, and nor
    does a reassignment, which Airflow 3.3 cancels with the same user-action message."""
    from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG

    trigger = long_job()
    asyncio.run(_in_triggerer(trigger, _USER_ACTION_CANCEL_MSG if user_action else None, task_state))
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == (expected == "CANCELLED")
    assert job_state(trigger.job_name) in (STOPPED if expected == "CANCELLED" else ALIVE)
