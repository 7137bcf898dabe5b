"""The checks every fault scenario ends with, and the row it adds to the suite's table.

1. the DAG run's final state is the expected one;
2. the emulator holds exactly one tuning job per DAG run (looked up by our idempotency label);
3. nothing was registered or deployed from a run whose tuning failed;
4. the prepared data in GCS is intact (every file's SHA-256 and line count match report.json).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aria_tuning import vertex_jobs as vj
from aria_tuning.resources import label_value

from scripts.airflow_stack import DAG_ID, PROJECT, AirflowStack

TUNING_OPERATOR = "VertexTuningOperator"
PREPARE_TASK = "prepare_dataset"


@dataclass
class Outcome:
    scenario: str
    outcome: str
    jobs_created: int
    expected: str
    passed: bool


RESULTS: list[Outcome] = []


def tuning_task_ids(stack: AirflowStack) -> list[str]:
    tasks = stack._request("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]
    return [t["task_id"] for t in tasks if t.get("operator_name") == TUNING_OPERATOR]


def tuning_jobs(stack: AirflowStack, run_id: str) -> list[Any]:
    """Every pipeline job and tuningJob, in every region, whose idempotency label is this run's."""
    keys = {vj.run_key(DAG_ID, run_id, task_id, -1) for task_id in tuning_task_ids(stack)}
    found: list[Any] = []
    pipelines = stack.vertex_client("PipelineServiceClient")
    tunings = stack.vertex_client("GenAiTuningServiceClient")
    for region in ("europe-west4", "us-central1"):
        parent = f"projects/{PROJECT}/locations/{region}"
        for job in list(pipelines.list_pipeline_jobs(parent=parent)) + list(
            tunings.list_tuning_jobs(parent=parent)
        ):
            if dict(job.labels).get(vj.LABEL_RUN_KEY) in keys:
                found.append(job)
    return found


def models_from(stack: AirflowStack, job_names: set[str]) -> list[str]:
    """Registered model versions that point back at one of `job_names` (by label or by description)."""
    models = stack.vertex_client("ModelServiceClient")
    found = []
    for region in ("europe-west4", "us-central1"):
        for model in models.list_models(parent=f"projects/{PROJECT}/locations/{region}"):
            labels = " ".join(dict(model.labels).values())
            for job in job_names:
                job_id = job.rsplit("/", 1)[-1]
                if label_value(job_id) in labels or job_id in (model.description or ""):
                    found.append(model.name)
    return found


def xcom(stack: AirflowStack, run_id: str, task_id: str, key: str = "return_value") -> Any:
    path = (
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}?deserialize=true"
    )
    value = stack._request("GET", path)["value"]
    return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


def prepared_data_intact(stack: AirflowStack, run_id: str) -> str | None:
    """None when the prepared files match report.json; else what does not match."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    prepared = xcom(stack, run_id, PREPARE_TASK)
    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())

    def read(uri: str) -> bytes:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return client.bucket(bucket).blob(name).download_as_bytes()

    report = json.loads(read(prepared["report_uri"]))
    for described in report["files"].values():
        data = read(described["uri"])
        if hashlib.sha256(data).hexdigest() != described["sha256"]:
            return f"{described['uri']}: SHA-256 differs from report.json"
        lines = data.count(b"\n")
        if lines != described["examples"]:
            return f"{described['uri']}: {lines} lines, report.json says {described['examples']}"
    return None


def end_checks(
    stack: AirflowStack,
    scenario: str,
    run_id: str,
    expected_state: str,
    tuning_failed: bool = False,
    expect_jobs: int = 1,
    check_prepared: bool = True,
) -> Outcome:
    """Run the four checks; record and return the scenario's row; raise AssertionError on a failure."""
    state = stack.run(run_id)["state"]
    jobs = tuning_jobs(stack, run_id)
    problems = []
    if state != expected_state:
        problems.append(f"run ended {state}, expected {expected_state}: {stack.task_states(run_id)}")
    if len(jobs) != expect_jobs:
        problems.append(
            f"{len(jobs)} tuning jobs for the run, expected {expect_jobs}: {[j.name for j in jobs]}"
        )
    if tuning_failed:
        registered = models_from(stack, {j.name for j in jobs})
        downstream = {
            t: s for t, s in stack.task_states(run_id).items() if t.startswith(("register", "deploy"))
        }
        if registered:
            problems.append(f"models registered from a failed tuning: {registered}")
        if any(s == "success" for s in downstream.values()):
            problems.append(f"downstream ran after a failed tuning: {downstream}")
    if check_prepared:
        damage = prepared_data_intact(stack, run_id)
        if damage:
            problems.append(damage)
    outcome = Outcome(
        scenario=scenario,
        outcome=f"run {state}" + (f"; {'; '.join(problems)}" if problems else ""),
        jobs_created=len(jobs),
        expected=f"run {expected_state}, {expect_jobs} job(s)",
        passed=not problems,
    )
    RESULTS.append(outcome)
    assert not problems, "\n".join(problems)
    return outcome


def record(scenario: str, outcome: str, jobs: int, expected: str, passed: bool) -> None:
    RESULTS.append(Outcome(scenario, outcome, jobs, expected, passed))


def table(outcomes: list[Outcome]) -> str:
    header = ("Scenario", "Outcome", "Jobs created", "Expected", "Pass")
    rows = [
        (o.scenario, o.outcome, str(o.jobs_created), o.expected, "yes" if o.passed else "NO")
        for o in outcomes
    ]
    widths = [min(70, max(len(r[i]) for r in [header, *rows])) for i in range(len(header))]
    line = " | ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), "-+-".join("-" * w for w in widths)]
    out += [line.format(*(cell[:70] for cell in row)) for row in rows]
    return "\n".join(out)
