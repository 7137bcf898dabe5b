"""What the trigger tests share: whole log messages, events with a deadline, polls counted from the
trigger's side, and tuning jobs deleted when their test ends."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator, Sized
from typing import Any

import pytest
from aria_tuning.triggers import VertexTuningJobTrigger

from tests.aria_tuning.conftest import Emulator, first_event, new_ti, submit, tuning_operator

#: How long a test waits for a trigger's event or polls: the emulated jobs and operations end within seconds.
WAIT_SECONDS = 10.0
#: A line logged from triggers.py, as structlog writes it: `<time> [<level>] <message> [<logger>] loc=...`.
_TRIGGER_LINE = re.compile(r"^\S+ \[\w+ *\] (?P<message>.*) \[[\w.]+\] loc=triggers\.py:\d+$", re.M)


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    """What was logged since the last read (Airflow's structlog writes to the captured stdout/stderr)."""
    captured = capsys.readouterr()
    return captured.out + captured.err


def messages(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The messages the triggers logged since the last read, whole and in order."""
    return [line["message"] for line in _TRIGGER_LINE.finditer(logged(capsys))]


def transient_status(transport: str) -> int:
    """An HTTP status the trigger itself rides out, not the client under it: over REST google-auth's
    session retries 500/503/504/408/429 on its own, after a 1 s backoff (google/auth/transport/__init__.py,
    DEFAULT_RETRYABLE_STATUS_CODES), and not 502; over gRPC 503 is UNAVAILABLE, which no channel retries,
    while the emulator answers a 502 as UNKNOWN (vertex_emulator/error_details.py), which is no transient."""
    return 502 if transport == "rest" else 503


def event_of(trigger: Any, timeout: float = WAIT_SECONDS) -> Any:
    """The trigger's first event, with a deadline: a trigger that never fires fails the test, not hangs it."""
    return asyncio.run(asyncio.wait_for(first_event(trigger), timeout))


class RecordsPolls(VertexTuningJobTrigger):
    """The tuning trigger, recording each poll it completed: the state it saw and the sleep it chose next."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.polls: list[tuple[str, float]] = []

    def _next_sleep(self, job: Any, grow: bool) -> float:
        from aria_tuning.vertex_jobs import short_state

        sleep = super()._next_sleep(job, grow)
        self.polls.append((short_state(job.state), sleep))
        return sleep


async def polled(
    polls: Sized, at_least: int, waiting: asyncio.Future[Any], timeout: float = WAIT_SECONDS
) -> None:
    """Wait until a trigger has recorded `at_least` polls (`polls` grows with each); a trigger that ended
    first (`waiting` is done) fails the test at once, with what it ended with.

    Counted on the trigger's side rather than in the emulator's request log: the log holds every call of
    the session, and `make mutation` runs hundreds of sessions on one emulator."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(polls) < at_least:
        if waiting.done():
            raise AssertionError(
                f"the trigger ended after {len(polls)} polls of {at_least}: {waiting.result()!r}"
            )
        assert loop.time() < deadline, f"{len(polls)} polls after {timeout:.0f} s, {at_least} awaited"
        await asyncio.sleep(0.005)


def delete_pipeline_job(name: str) -> None:
    """Cancel the pipeline job if it has not ended (CANCELLED follows within 0.1 s), then delete it."""
    from aria_tuning import vertex_jobs as vj
    from aria_tuning.hooks import VertexHook
    from aria_tuning.resources import resource_region

    client = VertexHook().client("pipeline", resource_region(name))
    deadline = time.monotonic() + WAIT_SECONDS
    while (state := vj.short_state(client.get_pipeline_job(name=name).state)) not in vj.TERMINAL:
        if state != "CANCELLING":
            client.cancel_pipeline_job(name=name)
        assert time.monotonic() < deadline, f"{name} is still {state}"
        time.sleep(0.02)
    client.delete_pipeline_job(name=name)


def starting(datasets: dict[str, str], emulator: Emulator) -> Iterator[Callable[..., VertexTuningJobTrigger]]:
    """The `start` fixture of the trigger tests (`yield from starting(datasets, emulator)`).

    `start(model="text-bison@001", **operator arguments)`: a tuning job submitted by the tuning operator,
    and the trigger it deferred on. Pipeline jobs are deleted when the test ends (Vertex has no deleting of
    tuning jobs): one emulator serves a whole session, and every mutant's session in `make mutation`, and
    the operator's look-up of its run key lists every job it holds, so each job left behind slowed every
    later submit (5 s a submit with a thousand)."""
    names: list[str] = []

    def begin(model: str = "text-bison@001", **overrides: Any) -> VertexTuningJobTrigger:
        trigger: VertexTuningJobTrigger = submit(tuning_operator(datasets, model, **overrides), new_ti())
        names.append(trigger.job_name)
        return trigger

    yield begin
    emulator.clear_faults()  # a rule the test left must not refuse the clean-up
    for name in names:
        if "/pipelineJobs/" in name:
            delete_pipeline_job(name)
