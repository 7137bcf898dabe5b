"""The fault suite: the DAG on a real Airflow against the emulators, one fault per scenario.

Test names start with the scenario id (s1..s9) that conftest.CI_SCENARIOS selects for `make test`.
Every scenario ends with checks.end_checks (run state, one job per run, nothing registered from a
failed tuning, prepared data intact) and adds its row to the table printed at the end.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from scripts.airflow_stack import AirflowStack
from tests.faults import checks
from tests.faults.conftest import GCS_GATE

TUNE = "tune"
# Logical dates (= dataset versions) are on or after the DAG's start_date (2025-06-01): Airflow
# creates no task instance for a run dated before it. The backfill owns 2025-06-01..15.

#: Small, fixed step count so job length is chosen by the emulator's clock, not by the data.
TRAIN_STEPS = 20
#: The scenarios steer pipeline jobs by their steps: text-bison, not the DAG's (Gemini) default model.
PIPELINE_CONF = {"base_model": "text-bison@001", "train_steps": TRAIN_STEPS}


def upload(version: str, files: list[Path] | None = None) -> str:
    from scripts.sample_data import DEFAULT_VERSION, upload_version

    return upload_version(DEFAULT_VERSION, as_version=version, files=files).uri


def start_run(stack: AirflowStack, version: str, **conf: object) -> str:
    upload(version)
    return stack.trigger(version, {**PIPELINE_CONF, **conf})


def tuning_job_name(stack: AirflowStack, run_id: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = checks.tuning_jobs(stack, run_id)
        if jobs:
            return str(jobs[0].name)
        time.sleep(1)
    raise TimeoutError(f"no tuning job for {run_id} within {timeout:.0f}s: {stack.task_states(run_id)}")


def job_state(stack: AirflowStack, name: str) -> str:
    return str(stack.vertex_client("PipelineServiceClient").get_pipeline_job(name=name).state.name)


# --- 1. transient errors and latency ------------------------------------------------------------


#: Seeds of scenario 1's rate-based rules: the same rules in the same order strike the same calls
#: (vertex_emulator/faults.py: each rule's stream is seeded from its seed and its id).
S1_SEEDS = {429: 1201, 503: 1202}


def test_s1_transient_errors_and_latency_are_ridden_out(stack: AirflowStack) -> None:
    run_id = start_run(stack, "2025-07-06")
    stack.control("POST", "faults", {"latencyMs": 250, "rate": 1.0})
    stack.control("POST", "faults", {"status": 429, "rate": 0.1, "seed": S1_SEEDS[429]})
    # 10% of what is left: 20% in all.
    stack.control("POST", "faults", {"status": 503, "rate": 0.1 / 0.9, "seed": S1_SEEDS[503]})
    stack.wait_run(run_id, timeout=900)
    hits = sum(rule["hits"] for rule in stack.control("GET", "faults")["faults"] if rule["status"])
    stack.control("DELETE", "faults")
    outcome = checks.end_checks(stack, "1. 20% 429/503 + latency", run_id, "success")
    outcome.outcome += f" ({hits} calls answered 429/503)"


# --- 2. the task killed between submit and defer ------------------------------------------------


def test_s2_task_killed_after_submit_before_defer_reattaches_on_retry(stack: AirflowStack) -> None:
    run_id = start_run(stack, "2025-07-13")
    # Hold the create call 8 s in the emulator (it still creates the job afterwards): the task is then
    # killed after it submitted and before it could defer, the window the idempotency key exists for.
    stack.control(
        "POST", "faults", {"latencyMs": 8000, "method": "POST", "path": r"/pipelineJobs$", "count": 1}
    )
    lists_before = _list_calls(stack)
    stack.wait_task_state(run_id, TUNE, {"running"}, timeout=300)
    # execute() lists the run's jobs by label, then creates: once the list is answered, the create is
    # on its way and held by the latency rule.
    deadline = time.monotonic() + 120
    while _list_calls(stack) == lists_before and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)
    killed = _kill_task_process(stack, run_id, TUNE)
    stack.wait_run(run_id, timeout=900)
    tries = int(stack.task_instance(run_id, TUNE)["try_number"])
    retry_log = stack.task_log(run_id, TUNE, tries)
    how = "re-attached" if "Re-attaching" in retry_log or "already exists" in retry_log else "see log"
    outcome = checks.end_checks(stack, "2. SIGKILL after submit, before defer", run_id, "success")
    outcome.outcome += f" (killed pid {killed}; try {tries} {how})"
    assert tries >= 2, "the killed try was not retried"


def _list_calls(stack: AirflowStack) -> int:
    requests = stack.control("GET", "counts").get("requests", {})
    return sum(
        n for route, n in requests.items() if route.startswith("GET") and route.endswith("/pipelineJobs")
    )


def _kill_task_process(stack: AirflowStack, run_id: str, task_id: str) -> int:
    """SIGKILL the task runner process (`airflow worker -- <ti id>`) of the running try."""
    ti_id = stack.task_instance(run_id, task_id)["id"]
    for process in psutil.process_iter(["pid", "cmdline"]):
        if f"airflow worker -- {ti_id}" in " ".join(process.info["cmdline"] or []):
            os.kill(process.info["pid"], signal.SIGKILL)
            return int(process.info["pid"])
    raise AssertionError(f"no task process for {task_id} (ti {ti_id}) of {run_id}")


# --- 3. the triggerer restarted while the tuning task is deferred --------------------------------


def test_s3_triggerer_restart_while_deferred_keeps_waiting(stack: AirflowStack) -> None:
    stack.control("PATCH", "settings", {"secondsPerStep": 2.0})  # a job of ~40 s: long enough to restart
    run_id = start_run(stack, "2025-07-20")
    stack.wait_task_state(run_id, TUNE, {"deferred"}, timeout=300)
    name = tuning_job_name(stack, run_id)
    stack.restart("triggerer")
    assert job_state(stack, name) not in {"PIPELINE_STATE_CANCELLED", "PIPELINE_STATE_CANCELLING"}
    stack.wait_run(run_id, timeout=900)
    checks.end_checks(stack, "3. triggerer restarted while deferred", run_id, "success")


# --- 4. the emulator restarted (state kept) while the job runs -----------------------------------


def test_s4_emulator_restart_while_job_runs(stack: AirflowStack) -> None:
    stack.control("PATCH", "settings", {"secondsPerStep": 2.0})
    run_id = start_run(stack, "2025-07-27")
    stack.wait_task_state(run_id, TUNE, {"deferred"}, timeout=300)
    name = tuning_job_name(stack, run_id)
    assert job_state(stack, name) in {"PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING"}
    stack.restart_vertex()
    stack.wait_run(run_id, timeout=900)
    checks.end_checks(stack, "4. emulator restarted while the job runs", run_id, "success")


# --- 5. the Vertex job fails ---------------------------------------------------------------------


def test_s5_vertex_failure_fails_the_task_with_vertexs_message(stack: AirflowStack) -> None:
    stack.control("PATCH", "settings", {"secondsPerStep": 2.0})
    run_id = start_run(stack, "2025-08-03")
    message = "The replica workerpool0-0 exited with a non-zero status of 13 (fault suite)"
    # The tune task has a retry (for a dead worker), but a job Vertex ran to FAILED fails the task
    # without it: a second paid run would most likely fail the same way.
    # Fail the job once the task is deferred and its trigger polls, as on a real (hours-long) run: a
    # job failing within seconds of the deferral races LocalExecutor's handling of the deferring
    # process, which can put the task up for retry before the failure arrives (an Airflow race).
    stack.wait_task_state(run_id, TUNE, {"deferred"}, timeout=300)
    (job,) = checks.tuning_jobs(stack, run_id)
    polls = _job_gets(stack)
    deadline = time.monotonic() + 60
    while _job_gets(stack) == polls and time.monotonic() < deadline:
        time.sleep(0.2)
    stack.control("POST", f"jobs/{job.name}:fail", {"message": message})
    stack.wait_run(run_id, timeout=600)
    states = stack.task_states(run_id)
    assert states[TUNE] == "failed", states
    assert all(
        states[t] in (None, "upstream_failed") for t in ("register_model", "deploy_model", "quality_gate")
    )
    tries = int(stack.task_instance(run_id, TUNE)["try_number"])
    assert tries == 1, f"a FAILED Vertex job must not be retried automatically (try {tries})"
    assert message in stack.task_log(run_id, TUNE, tries), "the failed task's log does not quote Vertex"
    outcome = checks.end_checks(
        stack, "5. Vertex job fails", run_id, "failed", tuning_failed=True, expect_jobs=1
    )
    outcome.expected += " (no automatic retry of a FAILED job)"


# --- 6. a user marks the deferred task failed ----------------------------------------------------


def test_s6_user_marks_deferred_task_failed_cancels_the_job(stack: AirflowStack) -> None:
    stack.control("PATCH", "settings", {"secondsPerStep": 5.0})
    run_id = start_run(stack, "2025-08-10")
    stack.wait_task_state(run_id, TUNE, {"deferred"}, timeout=300)
    name = tuning_job_name(stack, run_id)
    # A person sees the task deferred in the UI: by then its trigger is running in the triggerer. (Marked
    # within the second before the triggerer picks the trigger up, nothing runs to cancel the job.)
    polls = _job_gets(stack)
    deadline = time.monotonic() + 60
    while _job_gets(stack) == polls and time.monotonic() < deadline:
        time.sleep(0.2)
    stack.mark_task(run_id, TUNE, "failed")
    deadline = time.monotonic() + 120
    while job_state(stack, name) != "PIPELINE_STATE_CANCELLED" and time.monotonic() < deadline:
        time.sleep(1)
    state = job_state(stack, name)
    stack.wait_run(run_id, timeout=300)
    outcome = checks.end_checks(
        stack, "6. user marks deferred task failed", run_id, "failed", tuning_failed=True
    )
    outcome.outcome += f" (job {state.removeprefix('PIPELINE_STATE_')})"
    if state != "PIPELINE_STATE_CANCELLED":
        outcome.passed = False
        raise AssertionError(f"{name} is {state}, not CANCELLED, after the task was marked failed")


def _job_gets(stack: AirflowStack) -> int:
    requests = stack.control("GET", "counts").get("requests", {})
    return sum(
        n for route, n in requests.items() if route.startswith("GET") and route.endswith("/pipelineJobs/*}")
    )


# --- 7. a backfill over three dataset versions ----------------------------------------------------


def test_s7_backfill_three_versions_one_after_another(stack: AirflowStack) -> None:
    from scripts.sample_data import sample_signature, sample_versions, upload_version

    versions = sample_versions()[:3]
    # The DAG is weekly from 2025-06-01: three consecutive weeks, each with its own sample version.
    dates = ["2025-06-01", "2025-06-08", "2025-06-15"]
    signatures: dict[str, str] = {}
    for date, version in zip(dates, versions, strict=True):
        upload_version(version, as_version=date)
        signatures[date] = sample_signature(version)
    stack._request(
        "POST",
        "/api/v2/backfills",
        {
            "dag_id": "aria_text_tuning",
            "from_date": f"{dates[0]}T00:00:00Z",
            "to_date": f"{dates[-1]}T00:00:00Z",
            "max_active_runs": 1,
            "run_backwards": False,
            "dag_run_conf": PIPELINE_CONF,
            "reprocess_behavior": "completed",
        },
    )
    runs = _wait_backfill_runs(stack, dates, timeout=1800)
    intervals = sorted((r["start_date"], r["end_date"], r["dag_run_id"]) for r in runs)
    for (_, end, first), (start, _, second) in itertools.pairwise(intervals):
        assert end <= start, f"{first} and {second} overlapped"
    for run, date in zip(sorted(runs, key=lambda r: r["logical_date"]), dates, strict=True):
        checks.end_checks(stack, f"7. backfill {date}", run["dag_run_id"], "success")
        gate = checks.xcom(stack, run["dag_run_id"], "quality_gate")
        registered = checks.xcom(stack, run["dag_run_id"], "register_model")
        model = stack.vertex_client("ModelServiceClient").get_model(name=registered["model_version"])
        assert any(date in value for value in dict(model.labels).values()), dict(model.labels)
        # The emulator's tuned model answers like its nearest training example (names and numbers
        # of the prompt copied in): every answer must end with this version's signature line (each
        # version signs its answers differently).
        answers = {sample["answer"] for sample in gate["samples"]}
        strays = {a for a in answers if not a.rstrip().endswith(signatures[date])}
        assert answers and not strays, f"{date}: answers not from its own data: {strays}"


def _wait_backfill_runs(stack: AirflowStack, dates: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    wanted = {f"{d}T00:00:00Z" for d in dates}
    while time.monotonic() < deadline:
        runs = [r for r in stack.runs() if r["logical_date"].replace("+00:00", "Z") in wanted]
        if len(runs) == len(dates) and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        time.sleep(3)
    raise TimeoutError(f"backfill not finished within {timeout:.0f}s")


# --- 8. bad datasets dropped into the sensor's prefix --------------------------------------------


def test_s8_bad_datasets_fail_prep_with_file_line_and_create_no_job(stack: AirflowStack) -> None:
    from tests.aria_tuning.dataprep.test_corpus import BAD, CASES

    palm_cases = {name: case for name, case in CASES.items() if not name.startswith("gemini")}
    uri = upload("2025-08-17", files=[BAD / name for name in sorted(palm_cases)])
    run_id = stack.trigger("2025-08-17", PIPELINE_CONF)
    stack.wait_run(run_id, timeout=600)
    states = stack.task_states(run_id)
    assert states["prepare_dataset"] == "failed", states
    log = stack.task_log(run_id, "prepare_dataset", 1)
    missing = [
        f"{uri}{name}:{line}" for name, (line, _) in palm_cases.items() if f"{uri}{name}:{line}:" not in log
    ]
    outcome = checks.end_checks(
        stack, "8. bad datasets in the sensor prefix", run_id, "failed", expect_jobs=0, check_prepared=False
    )
    outcome.outcome += f" ({len(palm_cases) - len(missing)}/{len(palm_cases)} file:line reported)"
    if missing:
        outcome.passed = False
        raise AssertionError(f"prep log lacks {missing}")


# --- 9. GCS 429/503 bursts and latency -----------------------------------------------------------


@pytest.mark.parametrize("stack", [GCS_GATE], indirect=True)
def test_s9_gcs_429_503_bursts_and_latency_on_sensor_prep_and_report_are_ridden_out(
    stack: AirflowStack,
) -> None:
    uri = upload("2025-08-24")  # before any rule: the suite's own upload is not the subject
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    uploads = rf"/upload/storage/v1/b/{bucket}/o$"
    bursts = [
        _gcs_burst(stack, 429, "GET", rf"/b/{bucket}/o$", 3),  # the sensor listing the version
        # the sensor reading the manifest, data prep the files it names (metadata and media)
        _gcs_burst(stack, 503, "GET", rf"/b/{bucket}/o/{re.escape(prefix)}", 3),
        _gcs_burst(stack, 503, "POST", uploads, 2),  # data prep publishing its files and report.json
    ]
    latency = stack.control("POST", "faults", {"service": "gcs", "latencyMs": 200, "rate": 1.0})
    run_id = stack.trigger("2025-08-24", PIPELINE_CONF)
    prep = stack.wait_task_state(run_id, "prepare_dataset", {"success", "failed", "upstream_failed"}, 600)
    assert prep == "success", f"prepare_dataset {prep} under GCS bursts: {stack.task_states(run_id)}"
    # Prep is done: the next uploads are the quality gate's evaluation report (JSON, then HTML).
    bursts += [_gcs_burst(stack, 503, "POST", uploads, 2), _gcs_burst(stack, 429, "POST", uploads, 1)]
    stack.wait_run(run_id, timeout=900)
    rules = {rule["id"]: rule for rule in stack.control("GET", "faults")["faults"]}
    stack.control("DELETE", "faults")
    outcome = checks.end_checks(stack, "9. GCS 429/503 bursts + latency", run_id, "success")
    struck = sum(rules[rule["id"]]["hits"] for rule in bursts)
    outcome.outcome += f" ({struck} GCS calls answered 429/503, {rules[latency['id']]['hits']} delayed)"
    unspent = {rule["id"]: rules[rule["id"]]["count"] for rule in bursts if rules[rule["id"]]["count"]}
    if unspent:  # a burst that met no call proves nothing
        outcome.passed = False
        raise AssertionError(f"bursts no GCS call met (rule id: calls left): {unspent} of {rules}")


def _gcs_burst(stack: AirflowStack, status: int, method: str, path: str, count: int) -> dict[str, Any]:
    """A rule answering the next `count` GCS calls of `method` on `path` with `status`, in a row: what
    google-cloud-storage's default retry (429 and 5xx, exponential backoff from 1 s) must ride out."""
    rule = {"service": "gcs", "status": status, "rate": 1.0, "method": method, "path": path, "count": count}
    return dict(stack.control("POST", "faults", rule))
