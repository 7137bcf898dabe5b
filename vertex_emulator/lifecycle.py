"""The job state machine shared by pipelineJobs and tuningJobs.

A job follows a *schedule*: named steps, each finishing a fixed number of seconds after the job
started (paused time excluded). Progress is computed lazily whenever the job is read, from
timestamps kept in the record, so a restarted emulator continues a running job where the wall
clock says it is. A step may run a hook when its time comes (read a dataset, upload a model);
the hook fails the job by raising `StepFailed`. Tests steer jobs through `/_emulator/` (succeed,
fail, pause, resume); every change of phase goes through the `TRANSITIONS` table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from vertex_emulator.exceptions import FailedPrecondition


class Phase(StrEnum):
    """Job phases; the wire state is `PIPELINE_STATE_<phase>` or `JOB_STATE_<phase>`."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.RUNNING, Phase.PAUSED, Phase.CANCELLING, Phase.FAILED}),
    Phase.RUNNING: frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.PAUSED, Phase.CANCELLING}),
    Phase.PAUSED: frozenset({Phase.RUNNING, Phase.CANCELLING, Phase.FAILED}),
    Phase.CANCELLING: frozenset({Phase.CANCELLED}),
    Phase.SUCCEEDED: frozenset(),
    Phase.FAILED: frozenset(),
    Phase.CANCELLED: frozenset(),
}
TERMINAL = frozenset(phase for phase, targets in TRANSITIONS.items() if not targets)

#: Seconds a cancelled job spends in CANCELLING before it is CANCELLED.
CANCEL_DELAY = 0.1
#: google.rpc.Code values used in job errors.
CODE_FAILED_PRECONDITION = 9
CODE_INVALID_ARGUMENT = 3
CODE_CANCELLED = 1
CODE_INTERNAL = 13


class StepFailed(Exception):
    """Raised by a step hook: the job fails with this message at the step's time."""

    def __init__(self, message: str, code: int = CODE_FAILED_PRECONDITION):
        super().__init__(message)
        self.message = message
        self.code = code


Hook = Callable[[float], None]


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job(now: float, schedule: list[tuple[str, float]]) -> dict[str, Any]:
    """The internal lifecycle state of a job created at `now` that will run `schedule`.

    `schedule` lists (step name, seconds the step takes); the first step is the PENDING phase.
    """
    at, steps = 0.0, []
    for name, seconds in schedule:
        at += seconds
        steps.append([name, at])
    return {
        "phase": Phase.PENDING.value,
        "createdAt": now,
        "start": now,
        "pausedAt": None,
        "pausedTotal": 0.0,
        "cancelAt": None,
        "steps": steps,
        "stepsDone": 0,
        "times": {},
        "failure": None,
        "failedStep": None,
        "forced": None,
    }


def phase(job: Mapping[str, Any]) -> Phase:
    return Phase(job["phase"])


def transition(job: dict[str, Any], target: Phase, at: float) -> None:
    current = phase(job)
    if target not in TRANSITIONS[current]:
        raise FailedPrecondition(f"a job in state {current} cannot move to {target}")
    job["phase"] = target.value
    job["times"].setdefault(target.value, at)


def elapsed(job: Mapping[str, Any], now: float) -> float:
    """Seconds the job has been running (not paused) at `now`."""
    until = job["pausedAt"] if job["pausedAt"] is not None else now
    return float(until - job["start"] - job["pausedTotal"])


def step_time(job: Mapping[str, Any], index: int) -> float:
    """Wall-clock time at which step `index` finishes (or finished) given the pauses so far."""
    return float(job["start"] + job["pausedTotal"] + job["steps"][index][1])


def step_start_time(job: Mapping[str, Any], index: int) -> float:
    return step_time(job, index - 1) if index > 0 else float(job["start"])


def advance(job: dict[str, Any], now: float, hooks: Mapping[str, Hook]) -> None:
    """Bring `job` up to `now`: finish due steps in order, running their hooks."""
    if phase(job) is Phase.CANCELLING and now >= job["cancelAt"] + CANCEL_DELAY:
        transition(job, Phase.CANCELLED, job["cancelAt"] + CANCEL_DELAY)
        job["failure"] = {"code": CODE_CANCELLED, "message": "CANCELED"}
    if phase(job) not in (Phase.PENDING, Phase.RUNNING):
        return
    running_for = elapsed(job, now)
    steps = job["steps"]
    while job["stepsDone"] < len(steps) and (
        job["forced"] == "succeed" or steps[job["stepsDone"]][1] <= running_for
    ):
        index = job["stepsDone"]
        name = steps[index][0]
        at = min(step_time(job, index), now)
        try:
            if name in hooks:
                hooks[name](at)
        except StepFailed as failure:
            fail(job, at, failure.message, failure.code, failed_step=name)
            return
        job["stepsDone"] = index + 1
        if index == 0:
            transition(job, Phase.RUNNING, at)
    if job["stepsDone"] == len(steps) and phase(job) is Phase.RUNNING:
        transition(job, Phase.SUCCEEDED, min(step_time(job, len(steps) - 1), now))


def fail(job: dict[str, Any], at: float, message: str, code: int, failed_step: str | None = None) -> None:
    if phase(job) is Phase.PAUSED:
        resume(job, at)
    transition(job, Phase.FAILED, at)
    job["failure"] = {"code": code, "message": message}
    job["failedStep"] = failed_step or current_step(job)


def current_step(job: Mapping[str, Any]) -> str | None:
    done = job["stepsDone"]
    return job["steps"][done][0] if done < len(job["steps"]) else None


def pause(job: dict[str, Any], now: float) -> None:
    transition(job, Phase.PAUSED, now)
    job["pausedAt"] = now


def resume(job: dict[str, Any], now: float) -> None:
    if phase(job) is not Phase.PAUSED:
        raise FailedPrecondition(f"only a paused job can be resumed; this one is {phase(job)}")
    job["pausedTotal"] += now - job["pausedAt"]
    job["pausedAt"] = None
    job["phase"] = (Phase.RUNNING if job["stepsDone"] > 0 else Phase.PENDING).value


def cancel(job: dict[str, Any], now: float) -> None:
    if phase(job) in TERMINAL:
        raise FailedPrecondition(f"the job is already {phase(job)} and cannot be cancelled")
    if phase(job) is Phase.CANCELLING:
        return
    if phase(job) is Phase.PAUSED:
        resume(job, now)
    transition(job, Phase.CANCELLING, now)
    job["cancelAt"] = now


def force_succeed(job: dict[str, Any], now: float) -> None:
    """Run every remaining step now; hooks see `forced == "succeed"` and skip their checks."""
    if phase(job) in TERMINAL or phase(job) is Phase.CANCELLING:
        raise FailedPrecondition(f"the job is already {phase(job)}")
    if phase(job) is Phase.PAUSED:
        resume(job, now)
    job["forced"] = "succeed"


def set_duration(job: dict[str, Any], step: str, seconds: float) -> None:
    """Change how long a not-yet-finished `step` takes (its hook learnt it, e.g. from the data)."""
    index = next(i for i, (name, _) in enumerate(job["steps"]) if name == step)
    if index < job["stepsDone"]:
        raise ValueError(f"step {step} already finished")
    previous_end = job["steps"][index - 1][1] if index > 0 else 0.0
    shift = previous_end + seconds - job["steps"][index][1]
    for later in job["steps"][index:]:
        later[1] += shift


def end_time(job: Mapping[str, Any]) -> float | None:
    """When the job reached its terminal phase, if it has."""
    return next((job["times"][p.value] for p in TERMINAL if p.value in job["times"]), None)
