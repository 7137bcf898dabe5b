"""The progress line of a running tuning job: tasks done, the estimated step, the expected end."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aria_tuning.run_progress import progress_line

from tests.aria_tuning.conftest import first_event, new_ti, roundtrip, submit, tuning_operator

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
TASKS = [
    ("validate-pipeline", "SUCCEEDED"),
    ("export-managed-dataset", "SUCCEEDED"),
    ("dataset-encoder", "SUCCEEDED"),
    ("large-language-model-tuner", "RUNNING"),
    ("upload-llm-model", "PENDING"),
]


def test_a_pipeline_line_has_tasks_the_estimated_step_and_the_expected_end() -> None:
    line = progress_line(
        started=T0,
        now=T0 + dt.timedelta(minutes=10),
        tasks=TASKS,
        running_task_started=T0 + dt.timedelta(minutes=1),
        train_steps=100,
        expected_seconds=900.0,
        expected_range_seconds=[720.0, 1080.0],
    )
    assert line.startswith("running 10 min; tasks done 3/5, now large-language-model-tuner; step ~61 of 100")
    assert (
        "at the plan's 9.0 s/step" in line
        and "the plan expects 15 min (12 min to 18 min): about 66% done" in line
    )
    assert "ends around 2026-12-01 10:15 UTC" in line or "ends around 10:15 UTC" in line


def test_a_tuning_job_line_gives_the_range_of_ends() -> None:
    line = progress_line(
        started=T0, now=T0 + dt.timedelta(seconds=40), expected_range_seconds=[3600.0, 14400.0]
    )
    assert line.startswith("running 40 s; the plan expects 60 min to 4.0 h: ends between ")
    assert "11:00 UTC" in line and "14:00 UTC" in line


@pytest.mark.usefixtures("transport")
@pytest.mark.parametrize("model", ["text-bison@001", "gemini-3.5-flash"])
def test_the_trigger_logs_progress_while_the_job_runs(
    vertex: str, datasets: dict[str, str], model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = model.startswith("text")
    plan = (
        {"train_steps": 40, "eta_seconds": 360.0, "eta_low_seconds": 288.0, "eta_high_seconds": 432.0}
        if pipeline
        else {"eta_low_seconds": 3600.0, "eta_high_seconds": 14400.0}
    )
    operator = tuning_operator(datasets, model, **({"train_steps": 40} if pipeline else {}))
    operator.plan.update(plan)
    trigger = roundtrip(submit(operator, new_ti()))
    assert trigger.expected_range_seconds == [plan["eta_low_seconds"], plan["eta_high_seconds"]]
    assert asyncio.run(first_event(trigger))["status"] == "success"
    lines = [line for line in capsys.readouterr().out.splitlines() if f"{trigger.job_name}: running" in line]
    assert lines, "no progress line while the job ran"
    if pipeline:
        assert any("tasks done" in line and "the plan expects 6 min" in line for line in lines), lines
    else:
        assert all("the plan expects 60 min to 4.0 h: ends between" in line for line in lines), lines
