"""The tuning-job trigger against the Vertex emulator: round trip, transient faults, PAUSED, cancellation."""

from __future__ import annotations

import asyncio

import pytest
from aria_tuning import triggers
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


def _state(emulator: Emulator, job: str) -> str:
    """The job's state as Vertex reports it (a GET, which is when the emulator advances its clock)."""
    from aria_tuning.hooks import VertexHook
    from aria_tuning.resources import resource_region
    from aria_tuning.vertex_jobs import short_state

    if "/pipelineJobs/" in job:
        return short_state(
            VertexHook().client("pipeline", resource_region(job)).get_pipeline_job(name=job).state
        )
    return short_state(VertexHook().client("tuning", resource_region(job)).get_tuning_job(name=job).state)


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
def test_serialize_round_trip(trigger: object) -> None:
    path, kwargs = trigger.serialize()  # type: ignore[attr-defined]
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
        await emulator.served(trigger.job_name, polls + 3)  # it has seen PAUSED, and polled on
        assert not waiting.done(), "the trigger fired on a PAUSED job"
        emulator.force(trigger.job_name, "resume")
        emulator.force(trigger.job_name, "succeed")
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(wait_then_resume())["state"] == "SUCCEEDED"
    assert f"{trigger.job_name} is PAUSED: not a success" in logged(capsys)


def with_task_state(trigger: VertexTuningJobTrigger, state: str | None) -> VertexTuningJobTrigger:
    """The trigger as the triggerer rebuilds it, seeing its task instance in `state` on the API server."""

    class SeesTaskState(VertexTuningJobTrigger):
        async def _task_state(self) -> str | None:
            return state

    return SeesTaskState(**trigger.serialize()[1])


@pytest.mark.parametrize("model", ["text-bison@001", "gemini-2.5-flash"])
def test_user_kill_cancels_the_job(
    vertex: str, datasets: dict[str, str], emulator: Emulator, model: str
) -> None:
    long = {"train_steps": LONG_STEPS} if model.startswith("text") else {"epochs": 50}
    trigger = submit(tuning_operator(datasets, model, **long), new_ti())
    assert triggers.TRIGGER_HAS_ON_KILL  # Airflow >= 3.3 calls on_kill when a trigger leaves this triggerer
    asyncio.run(with_task_state(trigger, "failed").on_kill())  # a user marked the deferred task failed
    assert _state(emulator, trigger.job_name).endswith(("CANCELLING", "CANCELLED"))
    event = asyncio.run(first_event(roundtrip(trigger)))
    assert event["status"] == "error" and event["state"] == "CANCELLED" and "cancel" in event["message"]


def test_triggerer_restart_does_not_cancel(vertex: str, datasets: dict[str, str], emulator: Emulator) -> None:
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti())
    polls = emulator.calls(trigger.job_name)

    async def run_then_stop() -> None:
        task = asyncio.ensure_future(first_event(roundtrip(trigger)))
        await emulator.served(trigger.job_name, polls + 1)  # the trigger is polling
        task.cancel()  # what a triggerer shutdown or redistribution does (no user-action message)
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_stop())
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == 0
    assert _state(emulator, trigger.job_name) in ("PENDING", "RUNNING")
    emulator.force(trigger.job_name, "succeed")


@pytest.mark.parametrize("state", ["deferred", None])
def test_on_kill_while_the_task_is_still_deferred_does_not_cancel(
    vertex: str, datasets: dict[str, str], emulator: Emulator, state: str | None
) -> None:
    """A reassigned trigger (the old triggerer missed its heartbeat) gets on_kill too: the job lives."""
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti())
    asyncio.run(with_task_state(trigger, state).on_kill())
    assert _state(emulator, trigger.job_name) in ("PENDING", "RUNNING")
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
    runner.triggers[1] = {"task": None, "name": "components-test", "events": 0, "is_watcher": False}
    task = asyncio.ensure_future(runner.run_trigger(1, with_task_state(trigger, task_state)))
    runner.triggers[1]["task"] = task
    await emulator.served(trigger.job_name, polls + 1)
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

    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti())
    asyncio.run(
        _in_triggerer(trigger, emulator, _USER_ACTION_CANCEL_MSG if user_action else None, task_state)
    )
    assert emulator.calls(f"{trigger.job_name}:cancel", "POST") == (expected == "CANCELLED")
    alive = ("PENDING", "RUNNING")  # stopped at its first poll, the job may not have started yet
    assert _state(emulator, trigger.job_name) in (
        ("CANCELLING", "CANCELLED") if expected == "CANCELLED" else alive
    )
    if expected == "RUNNING":
        emulator.force(trigger.job_name, "succeed")


def test_polls_read_only_the_fields_they_need(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    trigger = roundtrip(submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti()))

    async def reads() -> tuple[object, object]:
        hook = trigger._hook()
        await hook.open()
        try:
            return await trigger._get_job(hook), await trigger._get_job(hook, full=True)
        finally:
            await hook.close()

    poll, full = asyncio.run(reads())
    assert poll.name == full.name and poll.state == full.state
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


def test_one_client_per_trigger_and_every_change_is_logged(
    vertex: str, datasets: dict[str, str], emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), new_ti())
    counting = CountingClients(**trigger.serialize()[1])

    async def run_while_the_tuner_runs() -> dict:
        waiting = asyncio.ensure_future(first_event(counting))
        # Once the tuner runs (seen by us), any later poll is the trigger's: it has seen it too.
        deadline = asyncio.get_running_loop().time() + 30
        while (await asyncio.to_thread(_task_states, trigger.job_name)).get(TUNER) != "RUNNING":
            assert asyncio.get_running_loop().time() < deadline, "the tuner never ran"
            await asyncio.sleep(0.02)
        await emulator.served(trigger.job_name, await asyncio.to_thread(emulator.calls, trigger.job_name) + 1)
        emulator.force(trigger.job_name, "succeed")
        return await asyncio.wait_for(waiting, 30)

    event = asyncio.run(run_while_the_tuner_runs())
    assert event["status"] == "success" and counting.built == 1
    output = logged(capsys)
    changes = [line for line in output.splitlines() if f"{trigger.job_name}: state " in line]
    assert "state (start) -> " in changes[0] and "RUNNING -> SUCCEEDED" in changes[-1]
    assert any("-> RUNNING" in line for line in changes)
    assert "pipeline task large-language-model-tuner is RUNNING" in output
    assert "pipeline task upload-llm-model is SUCCEEDED" in output


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
