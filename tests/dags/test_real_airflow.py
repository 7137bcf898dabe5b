"""The DAG on a real Airflow: api-server, scheduler, dag-processor and triggerer as separate processes,
LocalExecutor, PostgreSQL from the machine's packages; triggered through the REST API.

Uses the same machinery as `make up` (scripts/local_airflow.py), on free ports and temporary dirs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import local_airflow as la
from scripts.processes import free_port
from scripts.sample_data import create_buckets, upload_version
from tests.support.emulator_settings import EmulatorSettings

PASSWORD = "aria-test-password"
LOGICAL_DATE = "2025-06-22"  # past (no future logical dates) and after the DAG start_date

pytestmark = pytest.mark.slow


def _postgres_available() -> bool:
    try:
        la.pg_bin("initdb")
    except RuntimeError:
        return False
    return True


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs it (apt-get install postgresql)")
        pytest.skip("PostgreSQL (initdb) is not installed")
    # Not under pytest's tmp dir: the `postgres` user must be able to reach the cluster's directory.
    base = Path(tempfile.mkdtemp(prefix="aria-pg-"))
    url, data = la.start_postgres(base, free_port())
    try:
        yield url
    finally:
        la.stop_postgres(data)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def airflow_api(
    postgres: str, gcs_emulator: str, vertex_emulator: str, tmp_path_factory: Any
) -> Iterator[str]:
    """Base URL of a running api-server; scheduler, dag-processor and triggerer run beside it."""
    home = tmp_path_factory.mktemp("airflow-home")
    port = free_port()
    extra = {
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        # Deferrals last >= 10 s here: LocalExecutor reports a deferring process's exit as an event the
        # scheduler may only read after a fast resume started, and then it fails the running task
        # ("task state changed externally"). Real uploads and tuning runs take minutes.
        "ARIA_UPLOAD_INACTIVITY_SECONDS": "10",
        "ARIA_SENSOR_POKE_SECONDS": "1",
        "ARIA_VERTEX_POLL_SECONDS": "1",
        "ARIA_RETRY_DELAY_SECONDS": "1",
        "ARIA_TUNING_SCHEDULE": "none",
        # A canary (when another test's version serves the default endpoint) soaks 10 s, not 30 minutes.
        "ARIA_CANARY_SOAK_SECONDS": "10",
    }
    env = la.airflow_env(
        home, postgres, port, gcs_emulator, vertex_emulator, "aria-test-jwt-secret", extra,
        log_server_ports=(free_port(), free_port()),
    )  # fmt: skip
    la.write_admin_password(home, PASSWORD)
    la.migrate(env, home / "logs")
    processes = la.start_airflow(env, home / "logs")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in processes:
            process.stop()


def _call(url: str, token: str | None = None, body: Any = None, method: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read() or b"{}")


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_triggered_through_the_rest_api_the_tuning_task_defers_and_the_run_succeeds(
    airflow_api: str, emulator_settings: EmulatorSettings
) -> None:
    create_buckets(["aria-datasets", "aria-pipeline-root"])
    upload_version("2025-06-01", as_version=LOGICAL_DATE)
    token = _call(f"{airflow_api}/auth/token", body={"username": "admin", "password": PASSWORD})[
        "access_token"
    ]
    dag_url = f"{airflow_api}/api/v2/dags/aria_text_tuning"
    _wait(lambda: _call(dag_url, token), 180, "the dag-processor to parse the DAG")
    _call(dag_url, token, {"is_paused": False}, method="PATCH")

    # Slow the emulated TPU down so the deferred tuning task is observable through the API.
    emulator_settings.set(secondsPerStep=0.4, operationSeconds=10)
    run = _call(
        f"{dag_url}/dagRuns",
        token,
        {"logical_date": f"{LOGICAL_DATE}T00:00:00Z", "conf": {"base_model": "text-bison@001"}},
    )
    run_url = f"{dag_url}/dagRuns/{run['dag_run_id']}"
    tune_states: list[str] = []

    def finished() -> str | None:
        tune = _call(f"{run_url}/taskInstances/tune", token)
        if not tune_states or tune_states[-1] != tune["state"]:
            tune_states.append(str(tune["state"]))
        state = _call(run_url, token)["state"]
        return state if state in ("success", "failed") else None

    final = _wait(finished, 300, f"the DAG run to finish (tune went {tune_states})", interval=0.5)
    states = {ti["task_id"]: ti["state"] for ti in _call(f"{run_url}/taskInstances", token)["task_instances"]}
    assert final == "success", states
    assert "deferred" in tune_states, tune_states
    assert states["quality_gate"] == "success"
