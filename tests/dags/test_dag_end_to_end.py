"""The DAG end to end through `dag.test()` against the GCS and Vertex AI emulators.

Each test uploads its own dataset version (its own logical date) and names its own model, so the
tests share the session's emulators without seeing each other's resources.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.demo import run_dag
from scripts.sample_data import create_buckets, sample_signature, upload_version
from tests.dags.conftest import parse_dags
from tests.support import airflow as airflow_support

FAST = {
    "ARIA_UPLOAD_INACTIVITY_SECONDS": "1",
    "ARIA_SENSOR_POKE_SECONDS": "1",
    "ARIA_VERTEX_POLL_SECONDS": "1",
    "ARIA_RETRY_DELAY_SECONDS": "1",
}


@pytest.fixture(scope="module")
def e2e_dag(gcs_emulator: str, vertex_emulator: str) -> Iterator[Any]:
    """The DAG parsed with emulator-speed polling, on a migrated test database."""
    previous = {key: os.environ.get(key) for key in [*FAST, airflow_support.CONN_ENV]}
    os.environ.update(FAST)
    airflow_support.use_emulators(vertex_emulator)
    airflow_support.migrate_database()
    create_buckets(["aria-datasets", "aria-pipeline-root"])
    bag = parse_dags()
    assert not bag.import_errors, bag.import_errors
    yield bag.dags["aria_text_tuning"]
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _json(url: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def counts(vertex: str) -> dict[str, int]:
    found = _json(f"{vertex}/_emulator/counts")
    return {k: v for k, v in found.items() if isinstance(v, int)}


def conf(**overrides: Any) -> dict[str, Any]:
    # Every param a test varies is given explicitly: dag.test() keeps the previous run's conf in dag.params.
    defaults = {"base_model": "text-bison@001", "dry_run": False, "dataset_uri": None}
    return {**defaults, "tuned_model_name": f"ARIA-text-test-{uuid.uuid4().hex[:8]}", **overrides}


def test_text_bison_success_tunes_registers_deploys_and_promotes(e2e_dag: Any, vertex_emulator: str) -> None:
    uploaded = upload_version("2025-06-01", as_version="2030-01-06")
    state, states, xcoms = run_dag(e2e_dag, "2030-01-06", conf(base_model="text-bison@001"))
    assert state == "success", states
    assert states["tune"] == "success" and states["dry_run_report"] == "skipped"
    prep = xcoms["prepare_dataset"]
    assert prep["counts"]["train"] + prep["counts"]["eval"] == uploaded.examples
    assert prep["plan"]["train_steps"] == -(-3 * prep["counts"]["train"] // 24)
    assert "/pipelineJobs/" in xcoms["tune"]["job"] and xcoms["tune"]["state"] == "SUCCEEDED"
    assert "candidate" in xcoms["register_model"]["aliases"]
    gate = xcoms["quality_gate"]
    assert gate["passed"] and gate["score"] >= gate["threshold"] == 0.35
    model = _json(f"{vertex_emulator}/v1/{xcoms['register_model']['model_version']}")
    assert "production" in model["versionAliases"]


def test_gemini_success_and_the_answers_come_from_the_dataset_version(e2e_dag: Any) -> None:
    upload_version("2025-06-08", as_version="2030-01-13")
    state, states, xcoms = run_dag(e2e_dag, "2030-01-13", conf(base_model="gemini-2.5-flash"))
    assert state == "success", states
    assert "/tuningJobs/" in xcoms["tune"]["job"]
    assert xcoms["prepare_dataset"]["plan"]["method"] == "tuning_job"
    answers = [sample["answer"] for sample in xcoms["quality_gate"]["samples"]]
    signature = sample_signature("2025-06-08")
    assert answers and all(answer.rstrip().endswith(signature) for answer in answers)


def test_bad_dataset_fails_in_prep_with_file_and_line_and_starts_no_job(
    e2e_dag: Any, vertex_emulator: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps({"input_text": "Hola, ¿qué tarifa tengo?", "output_text": "Tienes Nubia Básica."})
    bad = tmp_path / "bad.jsonl"
    lines = [good] * 3 + ['{"input_text": "sin cerrar"', json.dumps({"input_text": "sin respuesta"})]
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    upload_version(as_version="2030-01-20", files=[bad])
    before = counts(vertex_emulator)
    state, states, _ = run_dag(e2e_dag, "2030-01-20", conf())
    output = capfd.readouterr()
    assert state == "failed"
    assert states["prepare_dataset"] == "failed"
    assert states["tune"] in ("upstream_failed", "None")
    assert "bad.jsonl:4:" in output.out + output.err and "bad.jsonl:5:" in output.out + output.err
    after = counts(vertex_emulator)
    assert (after["pipelineJobs"], after["tuningJobs"]) == (before["pipelineJobs"], before["tuningJobs"])


def test_vertex_failure_fails_the_run_and_deploys_nothing(e2e_dag: Any, vertex_emulator: str) -> None:
    upload_version("2025-06-01", as_version="2030-01-27")
    settings = _json(f"{vertex_emulator}/_emulator/settings")
    _json(f"{vertex_emulator}/_emulator/settings", {"secondsPerStep": 0.3}, method="PATCH")
    stop = threading.Event()
    failed: set[str] = set()

    def fail_every_job() -> None:
        # Vertex fails each attempt (the retry included) while it runs.
        jobs_url = f"{vertex_emulator}/v1/projects/aria-local/locations/europe-west4/pipelineJobs"
        while not stop.wait(0.2):
            for job in _json(jobs_url).get("pipelineJobs", []):
                if job["state"] in (
                    "PIPELINE_STATE_RUNNING",
                    "PIPELINE_STATE_PENDING",
                ) and "2030-01-27" in str(job.get("labels", {})) + json.dumps(job.get("runtimeConfig", {})):
                    _json(
                        f"{vertex_emulator}/_emulator/jobs/{job['name']}:fail",
                        {"message": "RESOURCE_EXHAUSTED: TPU v3 quota exceeded (injected)"},
                    )
                    failed.add(job["name"])

    watcher = threading.Thread(target=fail_every_job, daemon=True)
    watcher.start()
    before = counts(vertex_emulator)
    try:
        state, states, _ = run_dag(e2e_dag, "2030-01-27", conf())
    finally:
        stop.set()
        watcher.join()
        _json(
            f"{vertex_emulator}/_emulator/settings",
            {"secondsPerStep": settings.get("secondsPerStep", 0.01)},
            method="PATCH",
        )
    assert failed, "no pipeline job was seen running"
    assert state == "failed"
    assert states["tune"] == "failed"
    assert {states[t] for t in ("register_model", "deploy_model", "quality_gate")} == {"upstream_failed"}
    after = counts(vertex_emulator)
    assert after["endpoints"] == before["endpoints"]
    assert after["models"] == before["models"]


def test_dry_run_validates_and_plans_but_spends_nothing(e2e_dag: Any, vertex_emulator: str) -> None:
    upload_version("2025-06-15", as_version="2030-02-03")
    before = counts(vertex_emulator)
    state, states, xcoms = run_dag(e2e_dag, "2030-02-03", conf(dry_run=True))
    assert state == "success", states
    assert states["dry_run_report"] == "success"
    assert {states[t] for t in ("tune", "register_model", "deploy_model", "quality_gate")} == {"skipped"}
    assert xcoms["dry_run_report"]["plan"]["train_steps"] > 0
    after = counts(vertex_emulator)
    assert {k: after[k] for k in ("pipelineJobs", "tuningJobs", "models", "endpoints")} == {
        k: before[k] for k in ("pipelineJobs", "tuningJobs", "models", "endpoints")
    }
