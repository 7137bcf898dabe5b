"""The tuning trigger cancels its Vertex job only on a user's action, against the Vertex emulator: on_kill
(Airflow >= 3.3) and run()'s own cancel (older Airflow), the task-state rules, and what each decision logs.

The task instance's state is what `with_task_state` says (tests/aria_tuning/test_trigger_task_state.py
reads the real one from the metadata DB).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aria_tuning import triggers
from aria_tuning.triggers import VertexTuningJobTrigger

from tests.aria_tuning.conftest import (
    LONG_STEPS,
    Emulator,
    first_event,
    new_ti,
    roundtrip,
    submit,
    tuning_operator,
)
from tests.aria_tuning.test_triggers import messages, transient_status

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


def with_task_state(trigger: VertexTuningJobTrigger, state: str | None) -> VertexTuningJobTrigger:
    """The trigger as the triggerer rebuilds it, seeing its task instance in `state` on the API server."""

    class SeesTaskState(VertexTuningJobTrigger):
        async def _task_state(self) -> str | None:
            return state

    return SeesTaskState(**trigger.serialize()[1])


def long_job(datasets: dict[str, str], **overrides: Any) -> VertexTuningJobTrigger:
    """The trigger of a pipeline job that runs for minutes unless steered."""
    trigger: VertexTuningJobTrigger = submit(
        tuning_operator(datasets, train_steps=LONG_STEPS, **overrides), new_ti()
    )
    return trigger


@pytest.mark.parametrize("model", ["text-bison@001", "gemini-2.5-flash"])
def test_user_kill_cancels_the_job(
    vertex: str, datasets: dict[str, str], emulator: Emulator, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    long = {"train_steps": LONG_STEPS} if model.startswith("text") else {"epochs": 50}
    trigger = submit(tuning_operator(datasets, model, **long), new_ti())
    assert triggers.TRIGGER_HAS_ON_KILL  # Airflow >= 3.3 calls on_kill when a trigger leaves this triggerer
    asyncio.run(with_task_state(trigger, "failed").on_kill())  # a user marked the deferred task failed
    assert job_state(trigger.job_name) in STOPPED
    assert messages(capsys) == [
        f"Cancelling {trigger.job_name} because the deferred task was stopped by a user",
        f"Cancellation of {trigger.job_name} requested",
    ]
    event = asyncio.run(first_event(roundtrip(trigger)))
    assert event["status"] == "error" and event["state"] == "CANCELLED" and "cancel" in event["message"]


def test_a_transient_error_on_the_cancel_is_ridden_out_and_named(
    vertex: str,
    datasets: dict[str, str],
    emulator: Emulator,
    transport: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trigger = long_job(datasets, transient_error_budget=3)
    job_id = trigger.job_name.rsplit("/", 1)[1]
    status = transient_status(transport)
    emulator.fault(status=status, method="POST", path=f"pipelineJobs/{job_id}:cancel$", count=1)
    asyncio.run(with_task_state(trigger, "failed").on_kill())
    assert job_state(trigger.job_name) in STOPPED
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == 2  # one refused, one landed
    said = messages(capsys)
    assert said[0] == f"Cancelling {trigger.job_name} because the deferred task was stopped by a user"
    assert re.fullmatch(
        rf"{re.escape(trigger.job_name)}: transient error 1/3 \(.+\); retrying in [\d.]+s", said[1]
    )
    assert said[2:] == [f"Cancellation of {trigger.job_name} requested"]


def test_without_cancel_on_kill_a_user_kill_leaves_the_job_running(
    vertex: str, datasets: dict[str, str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = long_job(datasets, cancel_on_kill=False)
    asyncio.run(with_task_state(trigger, "failed").on_kill())
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == 0 and messages(capsys) == []
    assert job_state(trigger.job_name) in ALIVE
    emulator.force(trigger.job_name, "succeed")


def test_triggerer_restart_does_not_cancel(vertex: str, datasets: dict[str, str], emulator: Emulator) -> None:
    trigger = long_job(datasets)
    polls = emulator.calls(trigger.job_name)

    async def run_then_stop() -> None:
        task = asyncio.ensure_future(first_event(roundtrip(trigger)))
        await emulator.served(trigger.job_name, polls + 1, timeout=10)  # the trigger is polling
        task.cancel()  # what a triggerer shutdown or redistribution does (no user-action message)
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_stop())
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == 0
    assert job_state(trigger.job_name) in ALIVE
    emulator.force(trigger.job_name, "succeed")


def test_on_kill_while_the_task_is_still_deferred_does_not_cancel(
    vertex: str, datasets: dict[str, str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reassigned trigger (the old triggerer missed its heartbeat) gets on_kill too: the job lives."""
    trigger = long_job(datasets)
    asyncio.run(with_task_state(trigger, "deferred").on_kill())
    assert job_state(trigger.job_name) in ALIVE
    assert messages(capsys) == [
        f"Not cancelling {trigger.job_name}: its task is still deferred "
        "(the trigger moved to another triggerer)"
    ]
    emulator.force(trigger.job_name, "succeed")


def test_a_trigger_without_a_task_instance_cancels_nothing(
    vertex: str, datasets: dict[str, str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = roundtrip(long_job(datasets))  # no task instance: its real _task_state answers None
    asyncio.run(trigger.on_kill())
    assert job_state(trigger.job_name) in ALIVE
    assert messages(capsys)[0] == f"No task instance on this trigger; not cancelling {trigger.job_name}"
    emulator.force(trigger.job_name, "succeed")


def test_a_task_state_that_cannot_be_read_cancels_nothing_and_logs_why(
    vertex: str, datasets: dict[str, str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = roundtrip(long_job(datasets))
    trigger.task_instance = new_ti()  # a task instance, but no supervisor to ask for its state
    assert asyncio.run(trigger._user_acted()) is False
    output = capsys.readouterr()
    text = output.out + output.err
    assert f"] Could not read the task state; not cancelling {trigger.job_name} [" in text
    assert "Traceback (most recent call last)" in text and "SUPERVISOR_COMMS" in text  # the reason, logged
    assert job_state(trigger.job_name) in ALIVE
    emulator.force(trigger.job_name, "succeed")


@pytest.mark.parametrize(
    ("cancel_on_kill", "task_state", "cancelled"),
    [(True, "failed", True), (True, "deferred", False), (False, "failed", False)],
)
def test_before_airflow_3_3_a_stopped_trigger_cancels_the_job_only_on_a_user_action(
    vertex: str,
    datasets: dict[str, str],
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    cancel_on_kill: bool,
    task_state: str,
    cancelled: bool,
) -> None:
    """Airflow 3.1 and 3.2 call no on_kill: they cancel the trigger's coroutine, and run() decides."""
    monkeypatch.setattr(triggers, "TRIGGER_HAS_ON_KILL", False)
    trigger = long_job(datasets, cancel_on_kill=cancel_on_kill)
    polls = emulator.calls(trigger.job_name)

    async def run_then_stop() -> None:
        task = asyncio.ensure_future(first_event(with_task_state(trigger, task_state)))
        await emulator.served(trigger.job_name, polls + 1, timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_stop())
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == int(cancelled)
    assert job_state(trigger.job_name) in (STOPPED if cancelled else ALIVE)
    if not cancelled:
        emulator.force(trigger.job_name, "succeed")


async def _in_triggerer(
    trigger: VertexTuningJobTrigger,
    emulator: Emulator,
    cancel_message: str | None,
    task_state: str = "failed",
) -> None:
    """Run the trigger in Airflow's own TriggerRunner, then stop it (once it polls) the way the
    triggerer would."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    polls = await asyncio.to_thread(emulator.calls, trigger.job_name)
    runner = TriggerRunner()
    # The runner's own entry for a trigger; its task is set once created, as TriggerRunner does.
    runner.triggers[1] = {"task": None, "name": "components-test", "events": 0, "is_watcher": False}  # type: ignore[typeddict-item]
    task = asyncio.ensure_future(runner.run_trigger(1, with_task_state(trigger, task_state)))
    runner.triggers[1]["task"] = task
    await emulator.served(trigger.job_name, polls + 1, timeout=10)
    task.cancel(cancel_message)
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("user_action", "task_state", "expected"),
    [(True, "failed", "CANCELLED"), (False, "failed", "RUNNING"), (True, "deferred", "RUNNING")],
)
def test_airflow_triggerer_cancels_only_on_user_action(
    vertex: str,
    datasets: dict[str, str],
    emulator: Emulator,
    user_action: bool,
    task_state: str,
    expected: str,
) -> None:
    """Mark-failed/clear reaches on_kill (the job is cancelled); a triggerer restart does not, and nor
    does a reassignment, which Airflow 3.3 cancels with the same user-action message."""
    from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG

    trigger = long_job(datasets)
    asyncio.run(
        _in_triggerer(trigger, emulator, _USER_ACTION_CANCEL_MSG if user_action else None, task_state)
    )
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == (expected == "CANCELLED")
    assert job_state(trigger.job_name) in (STOPPED if expected == "CANCELLED" else ALIVE)
    if expected == "RUNNING":
        emulator.force(trigger.job_name, "succeed")
