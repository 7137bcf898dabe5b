"""A throw-away real Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor) on the
emulators, for the fault suite (tests/faults) and the detection-latency benchmark (bench/detection.py).
`triggerers=2` and `db="postgres"` give Cloud Composer's highly resilient layout: two triggerers on
PostgreSQL; `triggerer_of` says which one runs a task's trigger (from the metadata DB). `gcs_gate=True`
sends Airflow's GCS calls through the Vertex emulator's GCS gate, where `"service": "gcs"` fault rules strike.

Built from scripts/local_airflow.py's pieces, on free ports and a throw-away AIRFLOW_HOME, with the
Vertex emulator keeping its state on disk so it can be restarted mid-run. Its users drive it only from
outside: the REST API, GCS, the emulators' control plane, and signals to the processes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import tempfile
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
from scripts.processes import Process, Server, free_port, spawn

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
    triggerers: int = 1
    db: str = "sqlite"  # or "postgres" (the machine's PostgreSQL, as `make up` runs it)
    #: The Vertex emulator also serves a GCS gate, and STORAGE_EMULATOR_HOST (Airflow's and this
    #: process's) names it: fault rules with "service": "gcs" then strike the DAG's GCS calls.
    gcs_gate: bool = False
    gcs: Server | None = None
    vertex: Server | None = None
    gcs_url: str = ""
    #: What STORAGE_EMULATOR_HOST names: the GCS gate with `gcs_gate`, else the GCS emulator (gcs_url).
    storage_url: str = ""
    vertex_url: str = ""
    api_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    password: str = ""
    _token: str = ""
    _previous_gcs_host: str | None = None
    _postgres_data: Path | None = None
    #: Triggerer process name -> the id of its TriggererJob row (what trigger.triggerer_id holds).
    triggerer_jobs: dict[str, int] = field(default_factory=dict)
    _triggerer_env: dict[str, dict[str, str]] = field(default_factory=dict)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> AirflowStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.gcs = start_gcs_emulator(self.logs)
        self.gcs_url = self.gcs.url
        gate_port = free_port() if self.gcs_gate else None
        self.storage_url = f"http://127.0.0.1:{gate_port}" if gate_port else self.gcs_url
        # In-process GCS clients of the suite talk to this stack's emulator until stop() gives the
        # session's own emulator back to the tests that run after the suite.
        self._previous_gcs_host = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.storage_url
        # The emulator itself reads datasets from the GCS emulator directly: GCS rules strike Airflow.
        self.vertex = start_vertex_emulator(
            self.logs,
            gcs_url=self.gcs_url,
            state_dir=self.base / "vertex-state",
            gcs_gate_port=gate_port,
            extra_args=("--seconds-per-step", str(self.seconds_per_step)),
        )
        self.vertex_url = self.vertex.url
        from scripts.sample_data import create_buckets

        create_buckets(["aria-datasets", "aria-pipeline-root"])
        home = self.base / "airflow"
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        if self.db == "postgres":
            # Not under `base`: pytest's temporary folders are private to root, and PostgreSQL runs as
            # the `postgres` user (start_postgres hands it this folder).
            cluster = Path(tempfile.mkdtemp(prefix="aria-stack-postgres-"))
            db_url, self._postgres_data = la.start_postgres(cluster, free_port())
        else:
            db_url = f"sqlite:///{home / 'airflow.db'}"
        self.env = _without_test_settings(
            lambda: la.airflow_env(
                home,
                db_url,
                api_port,
                self.storage_url,
                self.vertex_url,
                secrets.token_urlsafe(32),
                extra=self.extra_env,
                log_server_ports=(free_port(), free_port()),
            )
        )
        self.password = la.write_admin_password(home, "faults-admin")
        la.migrate(self.env, self.logs)
        for started in la.start_airflow(self.env, self.logs):
            self.processes[started.name] = started
        self.triggerer_jobs["triggerer"] = self._new_triggerer_job(set())
        for number in range(2, self.triggerers + 1):
            # Each triggerer serves its trigger logs on its own port (one machine, two "hosts").
            name = f"triggerer-{number}"
            self._triggerer_env[name] = {
                **self.env,
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
            self._start_triggerer(name)
        return self

    def stop(self) -> None:
        for started in reversed(list(self.processes.values())):
            started.stop()
        self.processes.clear()
        if self.vertex:
            self.vertex.stop()
        if self.gcs:
            self.gcs.stop()
        if self._postgres_data is not None:
            la.stop_postgres(self._postgres_data)
            shutil.rmtree(self._postgres_data.parent, ignore_errors=True)
            self._postgres_data = None
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
        """SIGTERM one Airflow process (e.g. the triggerer) and start a new one with the same config.

        A process already gone (killed) is just started again.
        """
        self.processes[name].stop()
        if name in self.triggerer_jobs:
            self._start_triggerer(name)
        else:
            self.processes[name] = la.start_airflow_process(name, self.env, self.logs)

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send `sig` to the process group of one Airflow process (its children too: a triggerer's
        trigger runner, its log server), e.g. SIGKILL for a lost node, SIGSTOP/SIGCONT for a stalled one."""
        process = self.processes[name]
        if not process.running():
            raise RuntimeError(f"{name} (pid {process.pid}) is not running: cannot send it {sig.name}")
        os.killpg(process.pid, sig)

    # --- triggerers and the metadata database ----------------------------------------------------

    def _start_triggerer(self, name: str) -> None:
        """Start `airflow triggerer` as `name` and record the TriggererJob row it creates."""
        before = set(self._triggerer_job_ids())
        env = self._triggerer_env.get(name, self.env)
        self.processes[name] = spawn(name, [la.airflow_bin(), "triggerer"], self.logs, env, cwd=la.REPO)
        self.triggerer_jobs[name] = self._new_triggerer_job(before)

    def _triggerer_job_ids(self) -> list[int]:
        rows = self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
        return [int(row[0]) for row in rows]

    def _new_triggerer_job(self, before: set[int], timeout: float = 120) -> int:
        """The id of the TriggererJob row that is not in `before` (one triggerer starts at a time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [job for job in self._triggerer_job_ids() if job not in before]
            if new:
                return new[-1]
            time.sleep(0.5)
        raise TimeoutError(f"no new TriggererJob row within {timeout:.0f}s; see {self.logs}/triggerer*.log")

    def sql(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the metadata database (SQLite or PostgreSQL alike)."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sqlalchemy.text(query), params)]
        finally:
            engine.dispose()

    def triggerer_of(self, run_id: str, task_id: str, dag_id: str = DAG_ID) -> str | None:
        """The triggerer process running the task's trigger (trigger.triggerer_id -> job.id), if any."""
        rows = self.sql(
            "SELECT t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = :dag_id AND ti.run_id = :run_id AND ti.task_id = :task_id",
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
        )
        holder = rows[0][0] if rows else None
        return next((name for name, job in self.triggerer_jobs.items() if job == holder), None)

    def wait_triggerer_of(
        self, run_id: str, task_id: str, other_than: str | None = None, timeout: float = 120
    ) -> str:
        """Wait until a triggerer (other than `other_than`) holds the task's trigger; its name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            holder = self.triggerer_of(run_id, task_id)
            if holder is not None and holder != other_than:
                return holder
            time.sleep(0.5)
        raise TimeoutError(
            f"no triggerer{' other than ' + other_than if other_than else ''} took the trigger of "
            f"{task_id} in {run_id} within {timeout:.0f}s (held by {self.triggerer_of(run_id, task_id)})"
        )

    # --- Airflow REST API ------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        # A read is asked again when the api-server, starved of CPU, does not answer in time.
        attempts = 3 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    text = response.read().decode()
                break
            except urllib.error.HTTPError as exc:
                raise ApiError(
                    f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:500]}"
                ) from exc
            except (TimeoutError, urllib.error.URLError):
                if attempt == attempts:
                    raise
                time.sleep(1)
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
