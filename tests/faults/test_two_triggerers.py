"""Fault scenarios on Cloud Composer's highly resilient layout: two triggerers on PostgreSQL.

t1..t3: the triggerer running the tuning trigger is killed, stalled past the health-check threshold
then resumed (Airflow 3.3 then calls on_kill on the old one), or both are restarted one after the other.
Each ends with the run succeeding, exactly one Vertex job, and no cancel call ever reaching Vertex.
r1..r3: the reconciler DAG, triggered through the REST API, cancels the job of a task marked failed
before any triggerer ran its trigger, leaves a healthy deferred run alone, and never touches a job
without our labels.

The tuning job runs on a slow emulator clock (it would take an hour) and is finished through the
emulator's control plane once the fault is over: the fault always lands while the job runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from bench.soak import BASE_MODEL, OPERATION_SECONDS
from scripts.airflow_stack import PROJECT, AirflowStack
from tests.faults import checks
from tests.faults.conftest import SUITE_ENV
from tests.faults.test_scenarios import TUNE, start_run, tuning_job_name

RECONCILE_DAG = "aria_vertex_reconcile"
#: Seconds per train step while a fault is injected: 20 steps take 20 minutes, far beyond any fault.
SLOW_STEP = 60.0
HA_ENV = {
    **SUITE_ENV,
    # Manual runs only: no scheduled run of either DAG competes with the scenarios.
    "ARIA_TUNING_SCHEDULE": "none",
    "ARIA_RECONCILE_SCHEDULE": "none",
    # A triggerer silent for 15 s (7 missed heartbeats) loses its triggers to the other one. Less is
    # flaky here: on a loaded machine a trigger's first poll can block a triggerer's loop for 8 s.
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
    # on_kill asks the API server for the task's state; a triggerer's first such request builds its
    # in-process Execution API app, which on this 2-core machine takes about Airflow's default 30 s
    # on_kill budget ("on_kill() timed out": nothing cancelled). Room for it, so on_kill decides.
    "AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT": "120",
}
ALIVE = frozenset({"PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING"})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """This module's own Airflow: two triggerers, PostgreSQL, GCS through the gate (the soak's GCS
    faults strike there), as `make soak`'s (overrides the suite's `stack`)."""
    started = AirflowStack(
        tmp_path_factory.mktemp("two-triggerers"),
        extra_env=HA_ENV,
        triggerers=2,
        db="postgres",
        gcs_gate=True,
    )
    try:
        started.start()
        started.wait_dag_parsed()
        started.wait_dag_parsed(RECONCILE_DAG)
        started.control("PATCH", "settings", {"operationSeconds": OPERATION_SECONDS})
        yield started
    finally:
        started.stop()


# --- helpers ----------------------------------------------------------------------------------------


def job_state(stack: AirflowStack, name: str) -> str:
    return str(stack.vertex_client("PipelineServiceClient").get_pipeline_job(name=name).state.name)


def cancel_calls(stack: AirflowStack) -> int:
    """Cancel requests Vertex received, all routes and transports."""
    requests = stack.control("GET", "counts").get("requests", {})
    return sum(n for route, n in requests.items() if ":cancel" in route)


def job_polls(stack: AirflowStack) -> int:
    requests = stack.control("GET", "counts").get("requests", {})
    return sum(
        n for route, n in requests.items() if route.startswith("GET") and route.endswith("/pipelineJobs/*}")
    )


def wait_polled(stack: AirflowStack, timeout: float = 60) -> None:
    """Wait until a trigger polls the job once more (the trigger is running, not just assigned)."""
    before = job_polls(stack)
    deadline = time.monotonic() + timeout
    while job_polls(stack) == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no trigger polled Vertex within {timeout:.0f}s")
        time.sleep(0.2)


def deferred_run(stack: AirflowStack, version: str) -> tuple[str, str, str]:
    """A run whose tune task is deferred on a slow job, its trigger running: (run id, job, triggerer)."""
    stack.control("PATCH", "settings", {"secondsPerStep": SLOW_STEP})
    run_id = start_run(stack, version, base_model=BASE_MODEL)
    stack.wait_task_state(run_id, TUNE, {"deferred"}, timeout=300)
    name = tuning_job_name(stack, run_id)
    holder = stack.wait_triggerer_of(run_id, TUNE)
    wait_polled(stack)
    return run_id, name, holder


def finish(stack: AirflowStack, run_id: str, name: str, scenario: str, cancels_before: int) -> None:
    """The fault is over: the job must still run; let it succeed and check the run and Vertex."""
    state = job_state(stack, name)
    assert state in ALIVE, f"{name} is {state} once the fault is over: it must still be running"
    stack.control("POST", f"jobs/{name}:succeed")
    stack.wait_run(run_id, timeout=600)
    outcome = checks.end_checks(stack, scenario, run_id, "success")
    cancels = cancel_calls(stack) - cancels_before
    final = job_state(stack, name)
    outcome.outcome += f" (job {final.removeprefix('PIPELINE_STATE_')}, {cancels} cancel calls)"
    if cancels or final != "PIPELINE_STATE_SUCCEEDED":
        outcome.passed = False
        raise AssertionError(f"{name} ended {final} after {cancels} cancel calls: the job was cancelled")


def trigger_log(stack: AirflowStack, run_id: str, triggerer_job: int, task_id: str = TUNE) -> str:
    """What one triggerer (by its job id) logged for the task's trigger: Airflow writes one file each."""
    folder = stack.base / "airflow" / "logs" / f"dag_id={checks.DAG_ID}" / f"run_id={run_id}"
    files = sorted(folder.glob(f"task_id={task_id}/attempt=*.log.trigger.{triggerer_job}.log"))
    return "\n".join(path.read_text(errors="replace") for path in files)


def wait_logged(
    stack: AirflowStack, run_id: str, job: int, texts: tuple[str, ...], timeout: float = 90
) -> str:
    """Wait until triggerer `job`'s log of the trigger says one of `texts`; the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = trigger_log(stack, run_id, job)
        if any(text in log for text in texts):
            return log
        time.sleep(0.5)
    raise TimeoutError(f"triggerer {job} never logged one of {texts} for {run_id}:\n{log[-3000:]}")


# --- t1. the triggerer holding the trigger is killed ------------------------------------------------


def test_t1_killed_triggerer_hands_the_trigger_over(stack: AirflowStack) -> None:
    run_id, name, holder = deferred_run(stack, "2025-09-07")
    cancels = cancel_calls(stack)
    stack.signal(holder, signal.SIGKILL)  # the node is gone: no shutdown, no on_kill
    try:
        taker = stack.wait_triggerer_of(run_id, TUNE, other_than=holder, timeout=120)
        wait_polled(stack)
    finally:
        stack.restart(holder)  # back to two triggerers for the next scenario
    finish(stack, run_id, name, f"t1. {holder} SIGKILLed, {taker} took over", cancels)


# --- t2. the triggerer holding the trigger stalls past the threshold, then resumes -------------------


def test_t2_stalled_triggerer_resumes_without_cancelling_the_moved_trigger(stack: AirflowStack) -> None:
    run_id, name, holder = deferred_run(stack, "2025-09-14")
    cancels = cancel_calls(stack)
    holder = stack.wait_triggerer_of(run_id, TUNE)  # a loaded machine may have moved it already
    job = stack.triggerer_jobs[holder]
    stack.signal(holder, signal.SIGSTOP)  # a frozen VM: its heartbeat stops, its trigger stays in memory
    try:
        taker = stack.wait_triggerer_of(run_id, TUNE, other_than=holder, timeout=120)
    finally:
        stack.signal(holder, signal.SIGCONT)
    # Resumed, the old triggerer finds the trigger assigned elsewhere and cancels its copy with
    # Airflow's user-action message, which calls on_kill (airflow/jobs/triggerer_job_runner.py 3.3.2).
    log = wait_logged(stack, run_id, job, ("Not cancelling", "stopped by a user"))
    wait_polled(stack)
    finish(stack, run_id, name, f"t2. {holder} SIGSTOPped past the threshold ({taker} took over)", cancels)
    assert "invoking on_kill" in log, log[-3000:]  # the case the fix is for did happen
    assert "Not cancelling" in log and "stopped by a user" not in log, log[-3000:]


# --- t3. both triggerers restarted one after the other -------------------------------------------------


def test_t3_rolling_restart_of_both_triggerers_keeps_the_job(stack: AirflowStack) -> None:
    run_id, name, holder = deferred_run(stack, "2025-09-21")
    cancels = cancel_calls(stack)
    order = [holder, *(n for n in stack.triggerer_jobs if n != holder)]
    for triggerer in order:  # SIGTERM (graceful), start again, wait until a live one runs the trigger
        stack.restart(triggerer)
        stack.wait_triggerer_of(run_id, TUNE, timeout=120)
        wait_polled(stack)
    finish(stack, run_id, name, "t3. rolling restart of both triggerers", cancels)


# --- r1..r3. the reconciler ---------------------------------------------------------------------------


def trigger_reconciler(stack: AirflowStack, **conf: Any) -> dict[str, Any]:
    """Run aria_vertex_reconcile once through the REST API; its report (the XCom of `reconcile`)."""
    body = {"logical_date": None, "conf": {"grace_minutes": 0, **conf}}
    run_id = str(stack._request("POST", f"/api/v2/dags/{RECONCILE_DAG}/dagRuns", body)["dag_run_id"])
    state = stack.wait_run(run_id, timeout=300, dag_id=RECONCILE_DAG)
    assert state == "success", stack.task_log(run_id, "reconcile", 1, dag_id=RECONCILE_DAG)[-3000:]
    path = (
        f"/api/v2/dags/{RECONCILE_DAG}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/reconcile"
        "/xcomEntries/return_value?deserialize=true"
    )
    value = stack._request("GET", path)["value"]
    return dict(json.loads(value) if isinstance(value, str) else value)


def verdict_for(report: dict[str, Any], resource: str) -> dict[str, Any] | None:
    return next((v for v in report["actions"] + report["kept"] if v["resource"] == resource), None)


def clean_unused_triggers(stack: AirflowStack) -> None:
    """What every triggerer loop does after loading its triggers (`Trigger.clean_unused`): drop the
    trigger rows of task instances that are no longer deferred."""
    code = "from airflow.models.trigger import Trigger; Trigger.clean_unused()"
    subprocess.run([sys.executable, "-c", code], env=stack.env, check=True, capture_output=True, timeout=120)


def wait_heartbeats_after(stack: AirflowStack, moment: Any, timeout: float = 60) -> None:
    """Wait until every current triggerer heartbeated after `moment` (the database's clock): each has
    run a loop (loaded, and cleaned, its triggers) since."""
    deadline = time.monotonic() + timeout
    ids = set(stack.triggerer_jobs.values())
    while time.monotonic() < deadline:
        beats = dict(stack.sql("SELECT id, latest_heartbeat FROM job WHERE job_type = 'TriggererJob'"))
        if all(beats.get(job) is not None and beats[job] > moment for job in ids):
            return
        time.sleep(0.5)
    raise TimeoutError(f"triggerers {sorted(ids)} did not heartbeat after {moment} within {timeout:.0f}s")


def test_r1_task_marked_failed_before_any_triggerer_ran_it_is_cancelled_by_the_reconciler(
    stack: AirflowStack,
) -> None:
    stack.control("PATCH", "settings", {"secondsPerStep": SLOW_STEP})
    run_id = start_run(stack, "2025-09-28", base_model=BASE_MODEL)
    # Past the (deferrable) sensors, before tune: freeze both triggerers, so the trigger is created,
    # and the user acts, before any triggerer runs it.
    stack.wait_task_state(run_id, checks.PREPARE_TASK, {"running", "success"}, timeout=300)
    for triggerer in stack.triggerer_jobs:
        stack.signal(triggerer, signal.SIGSTOP)
    try:
        stack.wait_task_state(run_id, TUNE, {"deferred"}, timeout=120)
        name = tuning_job_name(stack, run_id)
        stack.mark_task(run_id, TUNE, "failed")
        # The race's unlucky outcome: a triggerer's cleanup drops the trigger before any triggerer
        # started it, so no on_kill ever runs for it.
        clean_unused_triggers(stack)
        ((resumed_at,),) = stack.sql("SELECT now()")
    finally:
        for triggerer in stack.triggerer_jobs:
            stack.signal(triggerer, signal.SIGCONT)
    wait_heartbeats_after(stack, resumed_at)
    cancels = cancel_calls(stack)
    assert job_state(stack, name) in ALIVE, "the job should be orphaned (running, nobody waiting) here"
    assert stack.wait_run(run_id, timeout=300) == "failed"

    report = trigger_reconciler(stack)
    verdict = verdict_for(report, name)
    assert verdict is not None and verdict["action"] == "cancel", report
    assert verdict["task"] == f"{checks.DAG_ID}/{run_id}/{TUNE}" and "failed" in verdict["reason"]
    deadline = time.monotonic() + 60
    while job_state(stack, name) != "PIPELINE_STATE_CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.5)
    state = job_state(stack, name)
    checks.record(
        "r1. marked failed before any triggerer ran it",
        f"reconciler: {verdict['action']} ({verdict['reason']}); job {state.removeprefix('PIPELINE_STATE_')}",
        len(checks.tuning_jobs(stack, run_id)),
        "job CANCELLED by the reconciler",
        state == "PIPELINE_STATE_CANCELLED" and cancel_calls(stack) == cancels + 1,
    )
    assert state == "PIPELINE_STATE_CANCELLED", f"{name} is {state} after the reconciler ran"
    assert cancel_calls(stack) == cancels + 1


def test_r2_healthy_deferred_run_is_left_alone(stack: AirflowStack) -> None:
    run_id, name, _ = deferred_run(stack, "2025-10-05")
    cancels = cancel_calls(stack)
    report = trigger_reconciler(stack)
    verdict = verdict_for(report, name)
    assert verdict is not None and verdict["action"] == "keep", report
    assert "deferred" in verdict["reason"], verdict
    finish(stack, run_id, name, "r2. reconciler leaves a deferred run alone", cancels)


def test_r3_a_job_without_our_labels_is_left_alone(stack: AirflowStack) -> None:
    from aria_tuning import vertex_jobs as vj
    from google.cloud import aiplatform_v1

    from scripts.sample_data import SAMPLE_BUCKET, upload_version

    stack.control("PATCH", "settings", {"secondsPerStep": SLOW_STEP})
    uploaded = upload_version(as_version="2025-10-12")
    request = vj.validate_tuning_request(
        plan={"model": BASE_MODEL, "accelerator": "TPU", "train_steps": 20},
        project=PROJECT,
        training_data_uri=f"gs://{SAMPLE_BUCKET}/{uploaded.objects[0]}",
        pipeline_root="gs://aria-pipeline-root",
    )
    body = vj.pipeline_job_body(request, "unused", 1)
    body["labels"] = {"team": "not-aria"}  # someone else's tuning run in the same project
    pipelines = stack.vertex_client("PipelineServiceClient")
    stranger = pipelines.create_pipeline_job(
        parent=f"projects/{PROJECT}/locations/europe-west4",
        pipeline_job=aiplatform_v1.PipelineJob(body),
        pipeline_job_id=f"stranger-{int(time.time())}",
    )
    cancels = cancel_calls(stack)
    report = trigger_reconciler(stack)
    state = job_state(stack, stranger.name)
    checks.record(
        "r3. job without our labels",
        f"not in the report; job {state.removeprefix('PIPELINE_STATE_')}",
        0,
        "untouched",
        verdict_for(report, stranger.name) is None and state in ALIVE,
    )
    assert verdict_for(report, stranger.name) is None, report
    assert state in ALIVE and cancel_calls(stack) == cancels
    pipelines.cancel_pipeline_job(name=stranger.name)  # the test's own job: not left billing


# --- the short soak of `make test` ---------------------------------------------------------------------

#: The first runs of `make soak`'s plan for seed 1 (bench/soak.py): a few faults of each family.
SHORT_SOAK = 3


@pytest.mark.timeout(1800)
def test_soak_first_runs_of_the_seeded_plan(stack: AirflowStack) -> None:
    from bench import soak

    results = soak.soak(stack, soak.plan(SHORT_SOAK, seed=1))
    for result in results:
        checks.record(
            f"soak {result.plan.index}: {', '.join(result.plan.faults) or 'no fault'}",
            f"run {result.state}; {'; '.join(result.jobs)}; {'; '.join(result.violations) or 'ok'}",
            len(result.jobs),
            f"run {result.plan.expected_state}, {result.plan.expected_jobs} job(s)",
            not result.violations,
        )
    violations = [f"run {r.plan.index}: {v}" for r in results for v in r.violations]
    assert not violations, "\n".join(violations)
