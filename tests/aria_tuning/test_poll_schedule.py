"""Finish-aware polling (pure): a job ending near or after its expected end is seen within one base
interval, with no more polls than the provider's trigger polling every base interval."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest
from aria_tuning.poll_schedule import finish_aware_delay, poll_times
from aria_tuning.triggers import VertexTuningJobTrigger

from tests.aria_tuning.conftest import Emulator, first_event, new_ti, roundtrip, submit, tuning_operator

BASE, MAXIMUM = 60.0, 600.0  # what the DAG ships: ARIA_VERTEX_POLL_SECONDS and 10x that
MINUTE, HOUR = 60.0, 3600.0
#: The first poll, the one landing one interval before the expected end, and the one after the end.
EXTRA_POLLS = 3


def provider_polls(run_seconds: float, interval: float) -> int:
    """RunPipelineJobTrigger: a get, then one every `interval` until the job has ended."""
    return math.ceil(run_seconds / interval) + 1


def detection_delay(times: list[float], run_seconds: float) -> float:
    return next(t for t in times if t >= run_seconds) - run_seconds


@pytest.mark.parametrize("expected", [10 * MINUTE, HOUR, 3 * HOUR, 20 * HOUR])
@pytest.mark.parametrize("spread", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("overrun", [-BASE, -1.0, 0.0, 1.0, 0.2, 1.0 / 3])
def test_a_job_ending_near_or_after_its_expected_end_is_seen_within_one_base_interval(
    expected: float, spread: float, overrun: float
) -> None:
    # overrun: seconds (when >= 1 or <= -1) or a share of the expected duration (a job 20% slower).
    run = expected + (overrun if abs(overrun) >= 1 or overrun == 0 else overrun * expected)
    times = poll_times(run, expected, BASE, MAXIMUM, spread)
    assert times[-1] >= run  # the sleeps cover the run: its end is seen
    assert detection_delay(times, run) <= BASE
    late = [b - a for a, b in itertools.pairwise(times) if a >= expected - BASE]
    assert all(gap <= BASE for gap in late)  # from one interval before the expected end: every interval
    assert len(times) <= run / BASE + EXTRA_POLLS
    assert len(times) <= provider_polls(run, BASE)


@pytest.mark.parametrize("expected", [10 * MINUTE, HOUR, 3 * HOUR])
def test_runs_poll_no_more_than_the_provider_at_its_default_five_minutes(expected: float) -> None:
    # RunPipelineJobOperator's default poll_interval is 5 * 60 (operators/vertex_ai/pipeline_job.py).
    run = expected + 30  # a little later than planned
    times = poll_times(run, expected, BASE, MAXIMUM, spread=1.0)
    assert len(times) <= provider_polls(run, 300.0)
    assert detection_delay(times, run) <= BASE < 300.0


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_a_job_ending_early_is_still_seen_within_the_backoff_cap(share: float) -> None:
    expected = 3 * HOUR
    times = poll_times(share * expected, expected, BASE, MAXIMUM, spread=1.0)
    assert detection_delay(times, share * expected) <= MAXIMUM


def test_without_an_expected_duration_the_plain_backoff_can_miss_the_end_by_its_cap() -> None:
    times = poll_times(HOUR + 1, None, BASE, MAXIMUM)
    assert times[:6] == [0, 60, 180, 420, 900, 1500]
    assert detection_delay(times, HOUR + 1) > BASE  # what finish-aware polling fixes


def test_the_schedule_lands_one_interval_before_the_end_then_every_interval() -> None:
    def delay(elapsed: float, spread: float = 0.0) -> float:
        return finish_aware_delay(elapsed, HOUR, BASE, MAXIMUM, spread)

    assert delay(0.0) == MAXIMUM and delay(0.0, spread=1.0) == pytest.approx(0.9 * MAXIMUM)
    assert delay(3000.0) == 540.0  # lands at 3540 s, one interval before the end
    assert delay(3540.0) == BASE and delay(3500.0) == BASE and delay(7200.0) == BASE


def test_the_trigger_carries_the_expected_duration_through_serialization() -> None:
    trigger = VertexTuningJobTrigger(
        job_name="projects/p/locations/europe-west4/pipelineJobs/j",
        method="pipeline",
        expected_seconds=3060.0,
    )
    rebuilt = roundtrip(trigger)
    assert rebuilt.expected_seconds == 3060.0 and rebuilt.serialize() == trigger.serialize()
    assert "startTime" in rebuilt._poll_mask and "createTime" in rebuilt._poll_mask


def test_the_operator_passes_the_plans_estimate_and_the_trigger_reads_vertex_clock(
    transport: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    from aria_tuning.operators.tuning import VertexTuningOperator

    operator = tuning_operator(datasets)
    operator.plan = {**operator.plan, "eta_seconds": 45.0}  # as data prep's plan carries it
    assert isinstance(operator, VertexTuningOperator)
    trigger = submit(operator, new_ti())
    assert trigger.expected_seconds == 45.0
    # A short emulated job expected to last 1 s: the trigger reads the job's createTime/startTime
    # through its field mask (both transports) and polls every interval past the expected end.
    _, kwargs = trigger.serialize()
    fast = VertexTuningJobTrigger(**{**kwargs, "expected_seconds": 1.0})
    event = asyncio.run(asyncio.wait_for(first_event(roundtrip(fast)), timeout=120))
    assert event["status"] == "success", event
