"""A throw-away real Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor) on the
emulators, for the fault suite (tests/faults) and the detection-latency benchmark (bench/detection.py).

Built from scripts/local_airflow.py's pieces, on free ports and a throw-away AIRFLOW_HOME, with the
Vertex emulator keeping its state on disk so it can be restarted mid-run. Its users drive it only from
outside: the REST API, GCS, the emulators' control plane, and signals to the processes.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts import local_airflow as la
from scripts.emulators import emulator_control, start_gcs_emulator, start_vertex_emulator
from scripts.processes import Process, Server, free_port

DAG_ID = "aria_text_tuning"
PROJECT = "aria-local"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class ApiError(RuntimeError):
    pass


def _without_test_settings(build: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Build an environment from os.environ minus the unit-test Airflow settings of tests/conftest.py.

    Those (unit-test mode, a test AIRFLOW_HOME, extra DAG bundles) are for `dag.test()` in the pytest
    process; the real Airflow processes get only what scripts/local_airflow.py gives `make up`.
    """
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if (
                key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "ARIA_TEST_"))
                or key == "AIRFLOW_HOME"
            ):
                del os.environ[key]
        return build()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class AirflowStack:
    base: Path
    seconds_per_step: float = 0.05
    extra_env: dict[str, str] = field(default_factory=dict)
    gcs: Server | None = None
    vertex: Server | None = None
    gcs_url: str = ""
    vertex_url: str = ""
    api_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    password: str = ""
    _token: str = ""
    _previous_gcs_host: str | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> AirflowStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.gcs = start_gcs_emulator(self.logs)
        self.gcs_url = self.gcs.url
        # In-process GCS clients of the suite talk to this stack's emulator until stop() gives the
        # session's own emulator back to the tests that run after the suite.
        self._previous_gcs_host = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.gcs_url
        self.vertex = start_vertex_emulator(
            self.logs,
            gcs_url=self.gcs_url,
            state_dir=self.base / "vertex-state",
            extra_args=("--seconds-per-step", str(self.seconds_per_step)),
        )
        self.vertex_url = self.vertex.url
        from scripts.sample_data import create_buckets

        create_buckets(["aria-datasets", "aria-pipeline-root"])
        home = self.base / "airflow"
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.env = _without_test_settings(
            lambda: la.airflow_env(
                home,
                f"sqlite:///{home / 'airflow.db'}",
                api_port,
                self.gcs_url,
                self.vertex_url,
                secrets.token_urlsafe(32),
                extra=self.extra_env,
            )
        )
        self.password = la.write_admin_password(home, "faults-admin")
        la.migrate(self.env, self.logs)
        for started in la.start_airflow(self.env, self.logs):
            self.processes[started.name] = started
        return self

    def stop(self) -> None:
        for started in reversed(list(self.processes.values())):
            started.stop()
        self.processes.clear()
        if self.vertex:
            self.vertex.stop()
        if self.gcs:
            self.gcs.stop()
        if self._previous_gcs_host is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = self._previous_gcs_host

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    def restart_vertex(self) -> None:
        """Stop the emulator (SIGTERM) and start it again on the same port and state directory."""
        assert self.vertex is not None
        self.vertex.restart()

    def restart(self, name: str) -> None:
        """SIGTERM one Airflow process (e.g. the triggerer) and start a new one with the same config."""
        self.processes[name].stop()
        self.processes[name] = la.start_airflow_process(name, self.env, self.logs)

    # --- Airflow REST API ------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(
                f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:500]}"
            ) from exc
        return json.loads(text) if text else None

    def token(self) -> str:
        if not self._token:
            answer = self._request(
                "POST", "/auth/token", {"username": la.ADMIN_USER, "password": self.password}, auth=False
            )
            self._token = answer["access_token"]
        return self._token

    def wait_dag_parsed(self, dag_id: str = DAG_ID, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._request("GET", f"/api/v2/dags/{dag_id}")
                return
            except ApiError:
                time.sleep(1)
        raise TimeoutError(
            f"{dag_id} was not parsed within {timeout:.0f}s; see {self.logs}/dag-processor.log"
        )

    def fail_scheduled_runs(self, dag_id: str = DAG_ID) -> list[str]:
        """Mark the scheduler's own runs failed (with catchup off it starts the latest weekly interval at
        once, whose dataset never comes; under max_active_runs=1 it would block every scenario)."""
        failed = []
        for run in self.runs(dag_id):
            if run["run_type"] == "scheduled" and run["state"] in ("queued", "running"):
                path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"
                self._request("PATCH", path, {"state": "failed"})
                failed.append(run["dag_run_id"])
        return failed

    def trigger(self, logical_date: str, conf: dict[str, Any] | None = None, dag_id: str = DAG_ID) -> str:
        body = {"logical_date": f"{logical_date}T00:00:00Z", "conf": conf or {}}
        return str(self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def run(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        return dict(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}"))

    def runs(self, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def wait_run(self, run_id: str, timeout: float = 600, dag_id: str = DAG_ID) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run(run_id, dag_id)["state"]
            if state in TERMINAL_RUN_STATES:
                return str(state)
            time.sleep(2)
        raise TimeoutError(
            f"run {run_id} not finished within {timeout:.0f}s: {self.task_states(run_id, dag_id)}"
        )

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
        return list(self._request("GET", path)["task_instances"])

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str | None]:
        return {ti["task_id"]: ti["state"] for ti in self.task_instances(run_id, dag_id)}

    def task_instance(self, run_id: str, task_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}"
        return dict(self._request("GET", path))

    def wait_task_state(
        self, run_id: str, task_id: str, states: set[str], timeout: float = 300, dag_id: str = DAG_ID
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.task_states(run_id, dag_id).get(task_id)
            if state in states:
                return str(state)
            time.sleep(0.5)
        raise TimeoutError(
            f"{task_id} of {run_id} never reached {states}: {self.task_states(run_id, dag_id)}"
        )

    def mark_task(self, run_id: str, task_id: str, new_state: str, dag_id: str = DAG_ID) -> None:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}"
        self._request("PATCH", path, {"new_state": new_state})

    def task_log(self, run_id: str, task_id: str, try_number: int, dag_id: str = DAG_ID) -> str:
        """The try's log as text: one line per structured entry (its event and fields, JSON-encoded)."""
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}"
            f"/logs/{try_number}?full_content=true"
        )
        content = self._request("GET", path)["content"]
        return "\n".join(
            json.dumps(entry, ensure_ascii=False) if not isinstance(entry, str) else entry
            for entry in content
        )

    # --- the Vertex emulator ---------------------------------------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return emulator_control(self.vertex_url, path, body, method)

    def vertex_client(self, service: str) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import aiplatform_v1

        cls = getattr(aiplatform_v1, service)
        return cls(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options={"api_endpoint": self.vertex_url},
        )
