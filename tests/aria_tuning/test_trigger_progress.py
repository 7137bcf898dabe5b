"""The progress line the tuning trigger logs on each poll of a running job, from the job as Vertex returns
it (PipelineJob and TuningJob protos, their times relative to now) and what the plan expected."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aria_tuning.triggers import VertexTuningJobTrigger

# Imported when pytest collects this file (see test_trigger_schedule.py: `make mutation` forks from there).
from google.cloud import aiplatform_v1

TUNER = "large-language-model-tuner"
PLAN: dict[str, Any] = {"train_steps": 100, "expected_seconds": 1000, "expected_range_seconds": [800, 1200]}
#: How the plan above reads in the line: 1000 s, 800 s and 1200 s.
EXPECTS = "the plan expects 17 min (13 min to 20 min)"


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def clock(moment: dt.datetime) -> str:
    """How the line writes a moment: the time, and the date too when it is not today's."""
    today = moment.date() == dt.datetime.now(dt.UTC).date()
    return f"{moment:%H:%M} UTC" if today else f"{moment:%Y-%m-%d %H:%M} UTC"


def task(name: str, state: str, started_ago: float | None = None, parent: int = 1) -> Any:
    return aiplatform_v1.PipelineTaskDetail(
        task_name=name,
        state=getattr(aiplatform_v1.PipelineTaskDetail.State, state),
        parent_task_id=parent,
        **({"start_time": ago(started_ago)} if started_ago is not None else {}),
    )


def pipeline(*tasks: Any, **times: dt.datetime) -> Any:
    """A running pipeline job; its root DAG execution (no parent) comes first, as Vertex lists it."""
    root = task("tune-large-model-pipeline", "RUNNING", parent=0)
    return aiplatform_v1.PipelineJob(
        state=aiplatform_v1.PipelineState.PIPELINE_STATE_RUNNING,
        job_detail=aiplatform_v1.PipelineJobDetail(task_details=[root, *tasks]),
        **times,
    )


def line(job: Any, method: str = "pipeline", **plan: Any) -> str:
    trigger = VertexTuningJobTrigger(job_name="projects/p/locations/l/pipelineJobs/j", method=method, **plan)
    return trigger._progress_line(job)


def test_a_running_tuner_shows_the_tasks_done_the_estimated_step_and_the_end() -> None:
    started = ago(300)
    job = pipeline(
        task("prepare-data", "SUCCEEDED", started_ago=290),
        task(TUNER, "RUNNING", started_ago=105),
        task("export-model", "PENDING"),
        start_time=started,
        create_time=ago(400),
    )
    # Running 300 s since it started (not 400 since its creation); tuning for 105 s at 10 s a step.
    assert line(job, **PLAN) == (
        f"running 5 min; tasks done 1/3, now {TUNER}; step ~11 of 100 (at the plan's 10.0 s/step); "
        f"{EXPECTS}: about 30% done, ends around {clock(started + dt.timedelta(seconds=1000))}"
    )


def test_between_tasks_there_is_no_step_to_estimate() -> None:
    job = pipeline(
        task("prepare-data", "SUCCEEDED", started_ago=290),
        task(TUNER, "PENDING"),
        start_time=ago(300),
    )
    assert line(job, **PLAN).startswith(f"running 5 min; tasks done 1/2; {EXPECTS}: about 30% done, ends ")


def test_a_queued_job_has_run_since_its_creation() -> None:
    created = ago(120)
    assert line(pipeline(create_time=created), **PLAN).startswith(
        f"running 2 min; {EXPECTS}: about 12% done, ends around "
    )


def test_a_job_reporting_no_times_has_run_since_the_trigger_started() -> None:
    assert line(pipeline(), **PLAN).startswith(f"running 0 s; {EXPECTS}: about 0% done, ends around ")


def test_a_gemini_job_shows_how_long_it_ran_and_the_plans_range() -> None:
    started = ago(600)
    job = aiplatform_v1.TuningJob(state=aiplatform_v1.JobState.JOB_STATE_RUNNING, start_time=started)
    first, last = started + dt.timedelta(seconds=900), started + dt.timedelta(seconds=1800)
    assert line(job, "tuning_job", expected_range_seconds=[900, 1800]).startswith(
        "running 10 min; the plan expects 15 min to 30 min: ends between "
    )
    assert line(job, "tuning_job", expected_range_seconds=[900, 1800]).endswith(
        f"{clock(first)} and {clock(last)}"
    )
