"""DAG integrity: it parses, it is wired as documented, every task is production-ready, parsing is cheap."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

from aria_tuning.catalog import DEFAULT_MODEL, model_names

from tests.support.airflow import REPO

EXPECTED_EDGES = {
    ("resolve_dataset_version", "wait_for_dataset_version"),
    ("wait_for_dataset_version", "prepare_dataset"),
    ("prepare_dataset", "dry_run_or_tune"),
    ("dry_run_or_tune", "dry_run_report"),
    ("dry_run_or_tune", "tune"),
    ("tune", "register_model"),
    ("register_model", "clean_up_tuning_outputs"),
    ("register_model", "deploy_for_evaluation"),
    ("deploy_for_evaluation", "quality_gate"),
    ("quality_gate", "tear_down_evaluation"),
    ("quality_gate", "deploy_model"),
}


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert "aria_text_tuning" in dagbag.dag_ids


def test_wiring_is_the_documented_flow_without_cycles(dag: Any) -> None:
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert edges >= EXPECTED_EDGES
    # Kahn's algorithm: every task gets sorted only if there is no cycle.
    indegree = {t.task_id: len(t.upstream_task_ids) for t in dag.tasks}
    ready = [task_id for task_id, n in indegree.items() if n == 0]
    seen = 0
    while ready:
        task = dag.get_task(ready.pop())
        seen += 1
        for child in task.downstream_task_ids:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    assert seen == len(dag.tasks)


#: Retries that differ from default_args' 2: one TPU run per try is the quota; a sensor's timeout, or
#: a manual run with no complete dataset version to resolve, would only fail again. (A refusing
#: quality gate fails without retry; its retries are for endpoints.)
RETRIES = {"tune": 1, "resolve_dataset_version": 0}
SENSOR_RETRIES = 0


def test_every_task_has_owner_retries_timeout_and_docs(dag: Any) -> None:
    # The DAG's knob (ARIA_RETRY_DELAY_SECONDS, 5 minutes by default), doubling up to 30 minutes.
    delay = dt.timedelta(seconds=float(os.environ.get("ARIA_RETRY_DELAY_SECONDS", "300")))
    for task in dag.tasks:
        assert task.owner == "aria-ml", task.task_id
        expected = SENSOR_RETRIES if task.task_id.startswith("wait_for_") else RETRIES.get(task.task_id, 2)
        assert task.retries == expected, task.task_id
        assert task.retry_delay == delay, task.task_id
        assert task.retry_exponential_backoff and task.max_retry_delay == dt.timedelta(minutes=30)
        assert isinstance(task.execution_timeout, dt.timedelta), task.task_id
        assert task.doc_md, f"{task.task_id} has no doc_md"


def test_waiting_tasks_defer_instead_of_holding_a_worker(dag: Any) -> None:
    from airflow.sdk import BaseSensorOperator
    from aria_tuning.operators.tuning import VertexTuningOperator
    from aria_tuning.sensors import DatasetVersionSensor

    tune = dag.get_task("tune")
    assert isinstance(tune, VertexTuningOperator)
    assert callable(getattr(tune, "execute_complete", None))
    sensor = dag.get_task("wait_for_dataset_version")
    assert isinstance(sensor, DatasetVersionSensor) and isinstance(sensor, BaseSensorOperator)
    assert sensor.deferrable is True and callable(sensor.execute_complete)
    assert tune.max_active_tis_per_dag == 1


def test_dag_level_settings(dag: Any) -> None:
    assert dag.max_active_runs == 1
    assert dag.dagrun_timeout >= dt.timedelta(hours=12)
    assert dag.doc_md and "backfill" in dag.doc_md
    assert {"aria-text", "vertex-ai"} <= set(dag.tags)
    assert dag.schedule == "@weekly"
    outlets = {a.name for t in dag.tasks for a in getattr(t, "outlets", [])}
    assert {"aria_text_prepared_dataset", "aria_text_tuned_model"} <= outlets


def test_trigger_form_params(dag: Any) -> None:
    params = dag.params
    schema = {name: params.get_param(name).schema for name in params}
    assert schema["base_model"]["enum"] == model_names()
    assert params["base_model"] == DEFAULT_MODEL
    assert schema["accelerator"]["enum"] == ["TPU", "GPU"]
    assert params["learning_rate_multiplier"] == 1.0
    assert params["tuned_model_name"] == "ARIA-text"
    assert params["dry_run"] is False
    assert schema["traffic_percentage"]["minimum"] == 1 and schema["traffic_percentage"]["maximum"] == 100
    assert all(s.get("title") for s in schema.values())


def test_cloud_locations_are_templates_not_parse_time_values(dag: Any) -> None:
    tune = dag.get_task("tune")
    assert "var.value.get('aria_project'" in tune.project_id
    assert "var.value.get('aria_pipeline_root'" in tune.pipeline_root
    assert "xcom_pull" in dag.get_task("wait_for_dataset_version").bucket


PARSE_PROBE = textwrap.dedent(
    """
    import json, socket, sys, time
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while parsing: {args!r}")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    started = time.monotonic()
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    print(json.dumps({
        "errors": {str(k): v for k, v in bag.import_errors.items()},
        "dags": bag.dag_ids,
        "seconds": time.monotonic() - started,
        "modules": sorted(sys.modules),
    }))
    """
)
GOOGLE_CLIENTS = (
    "google.cloud.aiplatform", "google.cloud.aiplatform_v1", "google.cloud.storage", "google.genai",
    "vertexai", "googleapiclient", "google.api_core", "google.auth", "airflow.providers.google.cloud",
)  # fmt: skip


def test_parsing_imports_no_google_client_and_touches_no_network() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(REPO / "dags")],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert "aria_text_tuning" in result["dags"]
    loaded = [m for m in result["modules"] if m.startswith(GOOGLE_CLIENTS)]
    assert loaded == [], f"parsing imported Google client libraries: {loaded[:10]}"
