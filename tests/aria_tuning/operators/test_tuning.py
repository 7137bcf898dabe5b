"""The tuning operator against the Vertex emulator, driven directly (execute -> trigger -> resume)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException
from aria_tuning.errors import AriaTuningError, VertexJobFailed

from scripts.emulators import emulator_control
from tests.aria_tuning.conftest import (
    LONG_STEPS,
    Emulator,
    first_event,
    jobs_for,
    new_ti,
    roundtrip,
    run_direct,
    submit,
    tuning_operator,
)

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")


@pytest.mark.parametrize("model", ["text-bison@001", "gemini-2.5-flash"])
def test_success_for_both_methods(vertex: str, datasets: dict[str, str], model: str) -> None:
    ti = new_ti()
    result = run_direct(tuning_operator(datasets, model), ti)
    # A small XCom, never the whole job.
    assert set(result) == {
        "job",
        "state",
        "method",
        "tuned_model",
        "endpoint",
        "duration_seconds",
        "console_url",
    }
    assert len(json.dumps(result)) < 1_000
    assert result["state"] == "SUCCEEDED" and "/endpoints/" in result["endpoint"]
    assert result["job"].split("/")[4] == ("pipelineJobs" if model.startswith("text") else "tuningJobs")
    assert result["method"] == ("pipeline" if model.startswith("text") else "tuning_job")
    assert "/models/" in result["tuned_model"]
    job = requests.get(f"{vertex}/v1/{result['job']}", timeout=30).json()  # Vertex's own times
    started = dt.datetime.fromisoformat(job.get("startTime") or job["createTime"])
    took = (dt.datetime.fromisoformat(job["endTime"]) - started).total_seconds()
    assert result["duration_seconds"] == pytest.approx(took, abs=0.001) and took > 0
    assert result["console_url"].startswith("https://console.cloud.google.com/vertex-ai/")
    assert ti.xcoms["vertex_tuning_job_url"] == result["console_url"]
    # The tuning run's own model is deleted once registered (#14): the Model Registry link is the
    # register task's, pointing at the version the run keeps; tune links only the run.
    assert "vertex_model_url" not in ti.xcoms


def test_every_console_link_has_a_value_at_deferral_and_the_console_url_ends_its_log_line(
    vertex: str, datasets: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """At a deferral the task runner reads every link back; one never pushed logs "XCom not found"."""
    ti = new_ti()
    operator = tuning_operator(datasets)
    seen_at_deferral: dict[str, object] = {}
    result = run_direct(operator, ti, before_trigger=lambda _: seen_at_deferral.update(ti.xcoms))
    links = {link.xcom_key for link in operator.operator_extra_links}
    assert links <= set(seen_at_deferral), seen_at_deferral
    assert (
        seen_at_deferral["vertex_tuning_job_url"]
        == ti.xcoms["vertex_tuning_job_url"]
        == result["console_url"]
    )
    # The UI links a URL up to the next space or quote: it must end its line, after no dict or quote.
    output = capsys.readouterr().out.splitlines()
    lines = [line for line in output if result["console_url"] in line]
    assert lines and all(re.search(re.escape(result["console_url"]) + r"\s", line + " ") for line in lines), (
        lines
    )
    finished = [line for line in output if "Tuning finished" in line]
    assert finished and not any("{" in line for line in finished), finished


@pytest.mark.parametrize(
    ("model", "region"), [("text-bison@001", "europe-west4"), ("gemini-2.5-flash", "us-central1")]
)
def test_reexecution_after_worker_death_reattaches(
    vertex: str, datasets: dict[str, str], emulator: Emulator, model: str, region: str
) -> None:
    ti = new_ti()
    pipeline = model.startswith("text")
    long = {"train_steps": LONG_STEPS} if pipeline else {"epochs": 50}
    first = submit(tuning_operator(datasets, model, **long), ti)
    # The worker dies after deferring; the task is retried (try 2) on a fresh operator instance.
    ti.try_number = 2
    second = submit(tuning_operator(datasets, model, **long), ti)
    assert second.job_name == first.job_name
    assert len(jobs_for(vertex, ti, region, pipeline)) == 1

    emulator.force(first.job_name, "succeed")
    event = asyncio.run(first_event(roundtrip(second)))
    assert event["status"] == "success"
    # A third execute (e.g. a cleared task) finds the succeeded job and returns without deferring.
    result = tuning_operator(datasets, model).execute({"ti": ti})
    assert result["job"] == first.job_name and result["state"] == "SUCCEEDED"
    assert len(jobs_for(vertex, ti, region, pipeline)) == 1


def test_failed_job_fails_the_task_without_automatic_retry_and_a_clear_resubmits(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    ti = new_ti()
    message = "Quota exceeded for TPU v3 pod cores in europe-west4"
    operator = tuning_operator(datasets, train_steps=LONG_STEPS)
    with pytest.raises(AirflowFailException) as failed:
        run_direct(operator, ti, before_trigger=lambda t: emulator.force(t.job_name, "fail", message))
    cause = failed.value.__cause__
    assert isinstance(cause, VertexJobFailed) and cause.state == "FAILED"
    job = cause.resource
    assert message in str(failed.value) and job in str(failed.value)
    assert job.endswith("-a1")

    # A user clearing the task (a deliberate new try) resubmits under a new attempt id.

    retry = submit(tuning_operator(datasets, train_steps=LONG_STEPS), ti)
    assert retry.job_name.endswith("-a2") and retry.job_name != job
    assert sorted(j.name for j in jobs_for(vertex, ti, "europe-west4")) == sorted([job, retry.job_name])
    emulator.force(retry.job_name, "succeed")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"base_model": "text-bison@999"}, "unknown base model"),
        ({"accelerator": "GPU", "region": "europe-west4"}, "runs only in us-central1"),
        ({"train_steps": 101, "max_train_steps": 100}, "above the plan's maximum"),
        ({"training_data_uri": "https://example.com/train.jsonl"}, "must be a gs://"),
        ({"evaluation_data_uri": "/data/eval.jsonl"}, "must be a gs://"),
    ],
)
def test_bad_parameters_fail_before_any_vertex_call(
    vertex: str, datasets: dict[str, str], change: dict, words: str
) -> None:
    before = emulator_control(vertex, "counts")["requests"]
    with pytest.raises(AirflowFailException, match=re.escape(words)) as failed:
        tuning_operator(datasets, **change).execute({"ti": new_ti()})
    assert isinstance(failed.value.__cause__, AriaTuningError)
    assert emulator_control(vertex, "counts")["requests"] == before


def test_retry_failed_jobs_lets_airflow_retry_a_failed_job(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    ti = new_ti()
    operator = tuning_operator(datasets, train_steps=LONG_STEPS, retry_failed_jobs=True)
    with pytest.raises(VertexJobFailed, match="preempted"):
        run_direct(operator, ti, before_trigger=lambda t: emulator.force(t.job_name, "fail", "preempted"))


def test_transient_errors_in_execute_are_retried(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    """429/503 on the look-up and on the (idempotent, id-carrying) create do not fail the task."""
    emulator.fault(status=503, rate=1.0, method="GET", path="europe-west4/pipelineJobs$", count=2)
    emulator.fault(status=429, rate=1.0, method="POST", path="europe-west4/pipelineJobs$", count=1)
    ti = new_ti()
    assert run_direct(tuning_operator(datasets), ti)["state"] == "SUCCEEDED"
    assert len(jobs_for(vertex, ti, "europe-west4")) == 1
    assert all(rule["count"] == 0 for rule in emulator.fault_rules())
