"""What the triggers keep across the triggerer's round trip (the documented defaults, the values given) and
how they pace their polls: backoff with jitter, and the finish-aware sleep on the protos Vertex returns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aria_tuning.poll_schedule import SPREAD
from aria_tuning.triggers import VertexOperationTrigger, VertexTuningJobTrigger

# Imported when pytest collects this file: `make mutation` forks every mutant's test run from a process
# that collected its tests, so the Google clients are imported once, not in every run (tests/mutation/run.py).
from google.cloud import aiplatform_v1

JOB = "projects/p/locations/europe-west4/pipelineJobs/j"
COMMON_DEFAULTS = {
    "gcp_conn_id": "google_cloud_default",
    "impersonation_chain": None,
    "poll_interval": 30.0,
    "max_poll_interval": 300.0,
    "transient_error_budget": 10,
}


def test_the_defaults_are_the_documented_ones() -> None:
    assert VertexOperationTrigger(operation_names=["op"]).serialize()[1] == {
        "operation_names": ["op"],
        "service": "endpoint",
        **COMMON_DEFAULTS,
    }
    assert VertexTuningJobTrigger(job_name=JOB, method="pipeline").serialize()[1] == {
        "job_name": JOB,
        "method": "pipeline",
        "cancel_on_kill": True,
        "expected_seconds": None,
        "expected_range_seconds": None,
        "train_steps": None,
        **COMMON_DEFAULTS,
    }


def test_given_values_travel_as_plain_numbers_and_the_cap_is_never_below_the_interval() -> None:
    trigger = VertexTuningJobTrigger(
        job_name=JOB,
        method="tuning_job",
        cancel_on_kill=False,
        expected_seconds=600,
        expected_range_seconds=(480, 900),
        train_steps=36,
        gcp_conn_id="aria",
        impersonation_chain=["sa@p.iam.gserviceaccount.com"],
        poll_interval=20,
        max_poll_interval=5,
        transient_error_budget=3,
    )
    assert trigger.serialize()[1] == {
        "job_name": JOB,
        "method": "tuning_job",
        "cancel_on_kill": False,
        "expected_seconds": 600.0,
        "expected_range_seconds": [480.0, 900.0],
        "train_steps": 36,
        "gcp_conn_id": "aria",
        "impersonation_chain": ["sa@p.iam.gserviceaccount.com"],
        "poll_interval": 20.0,
        "max_poll_interval": 20.0,
        "transient_error_budget": 3,
    }


def test_an_estimate_of_zero_is_no_estimate() -> None:
    trigger = VertexTuningJobTrigger(
        job_name=JOB, method="pipeline", expected_seconds=0, expected_range_seconds=[], train_steps=0
    )
    kwargs = trigger.serialize()[1]
    assert [kwargs[key] for key in ("expected_seconds", "expected_range_seconds", "train_steps")] == [
        None
    ] * 3


def test_each_sleep_is_a_random_share_of_half_to_all_of_the_doubling_delay() -> None:
    # Many fresh triggers: a sleep below half its delay (or above it) shows within a few draws.
    sleeps = []
    for _ in range(100):
        trigger = VertexOperationTrigger(operation_names=["op"], poll_interval=1, max_poll_interval=5)
        grown = [trigger._backoff(grow=True) for _ in range(4)]
        assert all(cap / 2 <= sleep <= cap for sleep, cap in zip(grown, [2, 4, 5, 5], strict=True)), grown
        reset = trigger._backoff(grow=False)
        assert 0.5 <= reset <= 1, reset
        sleeps += [*grown, reset]
    assert len(set(sleeps)) > 400, "the sleeps are not jittered"


def pipeline_job(started_ago: float | None = None, created_ago: float | None = None) -> Any:
    """A PipelineJob proto that started and was created these many seconds ago (None: not reported)."""
    now = dt.datetime.now(dt.UTC)
    times = {"start_time": started_ago, "create_time": created_ago}
    return aiplatform_v1.PipelineJob(
        **{key: now - dt.timedelta(seconds=ago) for key, ago in times.items() if ago is not None}
    )


def finish_aware(expected: float = 1000.0) -> VertexTuningJobTrigger:
    return VertexTuningJobTrigger(
        job_name=JOB, method="pipeline", expected_seconds=expected, poll_interval=1, max_poll_interval=60
    )


def test_mid_run_the_finish_aware_sleep_is_the_cap_less_a_random_spread() -> None:
    trigger, job = finish_aware(), pipeline_job(started_ago=100, created_ago=2000)
    sleeps = [trigger._next_sleep(job, grow=True) for _ in range(30)]
    assert all(60 * (1 - SPREAD) <= sleep <= 60 for sleep in sleeps), sleeps
    assert len(set(sleeps)) > 1, "the mid-run sleeps are not spread"


def test_near_the_end_the_sleep_wakes_the_trigger_just_before_it() -> None:
    # 1000 s expected, started 995 s ago: the end window (one interval before the end) is 4 s away.
    assert 3.9 < finish_aware()._next_sleep(pipeline_job(started_ago=995, created_ago=2000), grow=True) <= 4


def test_a_queued_job_counts_from_its_creation() -> None:
    assert 3.9 < finish_aware()._next_sleep(pipeline_job(created_ago=995), grow=True) <= 4


def test_a_job_reporting_no_times_counts_from_the_trigger_start() -> None:
    assert 60 * (1 - SPREAD) <= finish_aware()._next_sleep(pipeline_job(), grow=True) <= 60


def test_past_the_expected_end_every_poll_waits_one_interval() -> None:
    assert finish_aware()._next_sleep(pipeline_job(started_ago=5000, created_ago=5000), grow=True) == 1


def test_without_an_estimate_the_sleep_is_the_backoff() -> None:
    trigger = VertexTuningJobTrigger(job_name=JOB, method="pipeline", poll_interval=1, max_poll_interval=60)
    job = pipeline_job(started_ago=100)
    grown = [trigger._next_sleep(job, grow=True) for _ in range(3)]
    assert all(cap / 2 <= sleep <= cap for sleep, cap in zip(grown, [2, 4, 8], strict=True)), grown
    assert 0.5 <= trigger._next_sleep(job, grow=False) <= 1
