"""The Composer twin: a local Airflow laid out as a Cloud Composer 3 environment, on the emulators.

- Its own venv (twin_venv.py) as the image: Airflow 3.3.1, the twin lock's libraries, and our package
  only as the deploy installs it (the wheel, from a local index): nothing from the repository on
  sys.path (no PYTHONPATH, every process runs from a directory outside the repository).
- A bucket-like directory filled by the deploy itself (`scripts.deploy_composer --target-dir`), mounted
  at /home/airflow/gcs/{dags,plugins,data} as Composer mounts it, per component in its own mount
  namespace: dags/ everywhere, plugins/ only in the API server, data/ in the scheduler (whose children
  are the LocalExecutor workers) and the DAG processor; the triggerers see dags/ only.
- PostgreSQL (the machine's initdb/pg_ctl, scripts/local_airflow.py), LocalExecutor, two triggerers
  (a highly resilient environment has at least two).

`layout="plugins"` lays the bucket out the old way instead: aria_tuning copied into plugins/, nothing
installed; the components that do not get plugins/ then cannot import it.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts import local_airflow as la
from scripts.airflow_stack import AirflowStack, ApiError, _without_test_settings
from scripts.composer.component_imports import (
    ComponentImportError,
    ImportFailure,
    from_dag_import_errors,
    from_log,
    from_plugin_import_errors,
)
from scripts.composer.deploy import uploads
from scripts.composer.image import REPO, TARGET_IMAGE
from scripts.composer.local_target import LocalTarget
from scripts.composer.steps import Printer, Upload
from scripts.composer.twin_venv import TwinVenv, ensure_venv
from scripts.emulators import start_gcs_emulator, start_vertex_emulator
from scripts.processes import Process, free_port, spawn, wait_http

MOUNT_ROOT = Path("/home/airflow/gcs")
#: What each component sees of the bucket (README, "Cloud Composer": Google's Composer 3 pages).
VISIBLE: dict[str, tuple[str, ...]] = {
    "api-server": ("dags", "plugins"),
    "scheduler": ("dags", "data"),
    "dag-processor": ("dags", "data"),
    "triggerer-1": ("dags",),
    "triggerer-2": ("dags",),
}
LAYOUTS = ("wheel", "plugins")
#: Fast polls and a periodic schedule (a backfill needs one); the DAG's shipped values are for real Vertex.
TWIN_ENV = {
    "ARIA_TUNING_SCHEDULE": "@weekly",
    "ARIA_SENSOR_POKE_SECONDS": "2",
    "ARIA_UPLOAD_INACTIVITY_SECONDS": "4",
    "ARIA_VERTEX_POLL_SECONDS": "2",
    "ARIA_RETRY_DELAY_SECONDS": "3",
    # The second backfill run's version replaces the first's by canary: seconds, not the shipped 30 min.
    "ARIA_CANARY_SOAK_SECONDS": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__API__WORKERS": "1",  # CPU: one uvicorn worker is plenty for one client
}


class TwinError(RuntimeError):
    pass


def mount_command(bucket: Path, visible: tuple[str, ...]) -> list[str]:
    """`unshare` + `sh -c`: a private /home/airflow/gcs with only `visible` bound (dags/plugins read-only),
    then exec the rest of the argv in it."""
    script = ["set -e", f"mount -t tmpfs -o size=1m,mode=0755 aria-twin {MOUNT_ROOT}"]
    script += [f"mkdir {MOUNT_ROOT / folder}" for folder in ("dags", "plugins", "data")]
    for folder in visible:
        target = MOUNT_ROOT / folder
        script.append(f"mount --bind {shlex.quote(str(bucket / folder))} {target}")
        if folder != "data":  # Composer syncs one way: components do not write to dags/ or plugins/
            script.append(f"mount -o remount,bind,ro {target}")
    script.append('exec "$@"')
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", *user, "--mount", "--propagation", "private", "sh", "-c", "; ".join(script), "sh"]


def ensure_mount_root() -> None:
    if MOUNT_ROOT.is_dir():
        return
    if os.geteuid() != 0:
        raise TwinError(f"{MOUNT_ROOT} does not exist: create it once with `sudo mkdir -p {MOUNT_ROOT}`")
    MOUNT_ROOT.mkdir(parents=True)


@dataclass
class ComposerTwin(AirflowStack):
    layout: str = "wheel"
    seconds_per_step: float = 0.5
    venv: TwinVenv | None = None
    postgres_data: Path | None = None
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def environment_dir(self) -> Path:
        return self.base / "environment"

    @property
    def bucket(self) -> Path:
        return self.environment_dir / "bucket"

    @property
    def cwd(self) -> Path:
        """Where every twin process runs: outside the repository, so `''` on sys.path is not the repo."""
        return self.base / "cwd"

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ComposerTwin:
        if self.layout not in LAYOUTS:
            raise TwinError(f"layout {self.layout!r}: choose one of {', '.join(LAYOUTS)}")
        ensure_mount_root()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.venv = ensure_venv()
        self.venv.reset_to_image()
        self.lay_out()
        self._start_emulators()
        db_url = self._start_postgres()
        self._configure(db_url)
        self._migrate()
        self._start_components()
        return self

    def stop(self) -> None:
        super().stop()
        if self.postgres_data is not None:
            la.stop_postgres(self.postgres_data)
            shutil.rmtree(self.postgres_data.parent, ignore_errors=True)
            self.postgres_data = None

    def lay_out(self) -> None:
        """Fill the bucket and the venv by the deploy itself, or (old layout) put the package in plugins/."""
        assert self.venv is not None
        log = self.logs / "deploy.log"
        if self.layout == "wheel":
            command = [
                sys.executable,
                "-m",
                "scripts.deploy_composer",
                "--target-dir",
                str(self.environment_dir),
                "--target-python",
                str(self.venv.python),
                "--dist-dir",
                str(self.base / "dist"),
            ]
            with log.open("w") as out:
                done = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                raise TwinError(
                    f"the deploy to the twin failed (exit {done.returncode}):\n{log.read_text()[-3000:]}"
                )
            return
        with log.open("w") as out:
            target = LocalTarget(self.environment_dir, self.venv.python, Printer(False, out), TARGET_IMAGE)
            target.inspect()
            for upload in [Upload("plugins", REPO / "plugins" / "aria_tuning"), *uploads()]:
                target.upload(upload)

    def _start_emulators(self) -> None:
        self.gcs = start_gcs_emulator(self.logs)
        self.gcs_url = self.gcs.url
        self._previous_gcs_host = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.gcs_url
        self.vertex = start_vertex_emulator(
            self.logs,
            gcs_url=self.gcs_url,
            state_dir=self.base / "vertex-state",
            extra_args=("--seconds-per-step", str(self.seconds_per_step)),
        )
        self.vertex_url = self.vertex.url
        # Deploy operations of ~8 s: a deferral that resumes within a second or two can race the
        # LocalExecutor (scripts/local_airflow.py, slow_down_vertex).
        self.control("PATCH", "settings", {"operationSeconds": 8})
        from scripts.sample_data import create_buckets

        create_buckets(["aria-datasets", "aria-pipeline-root"])

    def _start_postgres(self) -> str:
        # Not under `base` (pytest's tmp dirs are 0700): the `postgres` user must reach the cluster.
        db_url, data = la.start_postgres(Path(tempfile.mkdtemp(prefix="aria-twin-pg-")), free_port())
        self.postgres_data = data
        return db_url

    def _configure(self, db_url: str) -> None:
        assert self.venv is not None
        home = self.base / "airflow"
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        base = _without_test_settings(
            lambda: la.airflow_env(
                home,
                db_url,
                api_port,
                self.gcs_url,
                self.vertex_url,
                secrets.token_urlsafe(32),
                extra={**TWIN_ENV, **self.extra_env},
                log_server_ports=(free_port(), free_port()),
            )
        )
        for key in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
            base.pop(key, None)
        base.update(
            {
                "PATH": f"{self.venv.bin}{os.pathsep}/usr/bin{os.pathsep}/bin",
                "AIRFLOW__CORE__DAGS_FOLDER": str(MOUNT_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(MOUNT_ROOT / "plugins"),
            }
        )
        self.env = base
        for name in VISIBLE:
            env = dict(base)
            if name.startswith("triggerer"):  # each triggerer serves its trigger logs on its own port
                env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
            self.component_env[name] = env
        self.password = la.write_admin_password(home, "twin-admin")

    def _migrate(self) -> None:
        assert self.venv is not None
        with (self.logs / "db-migrate.log").open("ab") as out:
            done = subprocess.run(
                [str(self.venv.airflow), "db", "migrate"],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if done.returncode != 0:
            raise TwinError(f"airflow db migrate failed; see {self.logs / 'db-migrate.log'}")

    def start_component(self, name: str) -> Process:
        assert self.venv is not None
        command = "triggerer" if name.startswith("triggerer") else name
        argv = [*mount_command(self.bucket, VISIBLE[name]), str(self.venv.airflow), command]
        return spawn(name, argv, self.logs, self.component_env[name], cwd=self.cwd)

    def _start_components(self, timeout: float = 240) -> None:
        for name in VISIBLE:
            self.processes[name] = self.start_component(name)
        api = self.processes["api-server"]
        wait_http(f"{self.api_url}/api/v2/monitor/health", timeout, api.gone)

    def restart(self, name: str) -> None:
        self.processes[name].stop()
        self.processes[name] = self.start_component(name)

    # --- what the components say --------------------------------------------------------------

    def import_failures(self) -> list[ImportFailure]:
        """Every import failure a component reported: REST API import errors, component and task logs."""
        failures: list[ImportFailure] = []
        try:
            failures += from_dag_import_errors(self._request("GET", "/api/v2/importErrors")["import_errors"])
            failures += from_plugin_import_errors(
                self._request("GET", "/api/v2/plugins/importErrors")["import_errors"]
            )
        except (ApiError, OSError):
            pass  # the API server is not up (yet): the logs below still speak
        for name in self.processes:
            failures += from_log(name, self.logs / f"{name}.log")
        for task_log in sorted((self.base / "airflow" / "logs").glob("dag_id=*/**/*.log")):
            failures += from_log("worker", task_log)
        return failures

    def wait_dag_or_import_failure(self, dag_id: str = "aria_text_tuning", timeout: float = 240) -> None:
        """Return once the DAG is parsed with no component failing to import; raise ComponentImportError
        (naming each component and module) as soon as one fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if failures := self.import_failures():
                raise ComponentImportError(failures)
            for name, process in self.processes.items():
                if reason := process.gone():
                    raise TwinError(f"{name} stopped: {reason}\n{process.log_tail()}")
            try:
                self._request("GET", f"/api/v2/dags/{dag_id}")
                return
            except ApiError:
                time.sleep(1)
        raise TimeoutError(
            f"{dag_id} neither parsed nor failed to import within {timeout:.0f}s; see {self.logs}"
        )

    def probe_import(self, component: str, module: str = "aria_tuning.triggers") -> dict[str, Any]:
        """Import `module` with a component's interpreter, environment, working directory and mounts, after
        `import airflow` (which puts the plugins folder on sys.path, as in every component); returns where
        it came from and the interpreter's sys.path."""
        assert self.venv is not None
        code = (
            "import airflow, importlib, json, sys; m = importlib.import_module(sys.argv[1]); "
            "print(json.dumps({'file': m.__file__, 'sys_path': sys.path}))"
        )
        argv = [*mount_command(self.bucket, VISIBLE[component]), str(self.venv.python), "-c", code, module]
        done = subprocess.run(
            argv, env=self.component_env[component], cwd=self.cwd, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise TwinError(f"{component} cannot import {module}:\n{done.stderr.strip()[-1500:]}")
        import json

        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def alive_triggerers(self) -> list[dict[str, Any]]:
        jobs = self._request("GET", "/api/v2/jobs?job_type=TriggererJob&is_alive=true&limit=100")["jobs"]
        return list(jobs)

    def links(self, run_id: str, task_id: str) -> dict[str, str | None]:
        import urllib.parse

        run = urllib.parse.quote(run_id)
        path = f"/api/v2/dags/aria_text_tuning/dagRuns/{run}/taskInstances/{task_id}/links"
        return dict(self._request("GET", path)["extra_links"])

    def plugins(self) -> list[str]:
        return [p["name"] for p in self._request("GET", "/api/v2/plugins")["plugins"]]
