"""A real Airflow on this machine, no Docker: `make up` / `make down`.

Starts the emulators and Airflow's own processes (api-server with the UI, scheduler, dag-processor,
triggerer) with AIRFLOW_HOME in .run/airflow, on SQLite by default or on a PostgreSQL cluster of the
machine's packages (ARIA_DB=postgres). Every process it starts is recorded in a state file, and
`down` stops exactly those. The functions are reused by the real-Airflow test on free ports.

    python -m scripts.local_airflow up [--db sqlite|postgres] [--port 8080]
    python -m scripts.local_airflow down
    eval "$(python -m scripts.local_airflow env)"   # the airflow CLI against that Airflow
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scripts import emulators
from scripts.processes import Process, load_state, save_state, spawn, wait_http

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN_USER = "admin"


@dataclass
class State:
    """What `up` started, so `down` stops exactly that: Airflow's processes, PostgreSQL, the emulators."""

    run_dir: str
    processes: list[Process] = field(default_factory=list)
    postgres_data: str | None = None
    emulators: bool = False

    @classmethod
    def path(cls, run_dir: Path) -> Path:
        return run_dir / "airflow" / "processes.json"

    def save(self) -> None:
        save_state(
            self.path(Path(self.run_dir)),
            {
                "run_dir": self.run_dir,
                "processes": [p.record() for p in self.processes],
                "postgres_data": self.postgres_data,
                "emulators": self.emulators,
            },
        )

    @classmethod
    def load(cls, run_dir: Path) -> State | None:
        data = load_state(cls.path(run_dir))
        if data is None:
            return None
        data["processes"] = [Process.from_record(p) for p in data.get("processes", [])]
        return cls(**data)


# --- PostgreSQL from the machine's packages ----------------------------------------------------


def pg_bin(tool: str) -> str:
    """Path of a PostgreSQL server tool (initdb, pg_ctl): PATH first, then Debian's layout."""
    found = shutil.which(tool) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(f"PostgreSQL's {tool} is not installed: apt-get install -y postgresql")
    return found


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as root we become the `postgres` user for its tools.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_postgres(base: Path, port: int) -> tuple[str, Path]:
    """Init (once) and start a cluster in `base`/data on 127.0.0.1:`port`; returns (URL, data dir)."""
    data = base / "data"
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            _as_postgres(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            cwd=base,
        )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [
                pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "postgres.log"),
                "-o",
                options,
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        cwd=base,
    )
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'")
        if cursor.fetchone() is None:
            cursor.execute("CREATE DATABASE airflow")
    conn.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/airflow", data


def stop_postgres(data: Path) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
            cwd=data.parent,
        )


# --- Airflow -----------------------------------------------------------------------------------


def airflow_env(
    home: Path,
    db_url: str,
    api_port: int,
    gcs_url: str,
    vertex_url: str,
    jwt_secret: str,
    extra: dict[str, str] | None = None,
    log_server_ports: tuple[int, int] = (8793, 8794),
) -> dict[str, str]:
    """The environment of every Airflow process: config, the emulator connection and variables."""
    connection = {
        "conn_type": "google_cloud_platform",
        "extra": {"is_anonymous": True, "project": "aria-local", "vertex_api_endpoint": vertex_url},
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # All four processes must sign and check task tokens with the same secret.
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Task-log servers of the LocalExecutor workers and of the triggerer (0.0.0.0 by Airflow's design);
        # the environment's own settings win, so a second `up` (the browser test's) can use free ports.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": os.environ.get(
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(log_server_ports[0])
        ),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": os.environ.get(
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", str(log_server_ports[1])
        ),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
        "STORAGE_EMULATOR_HOST": gcs_url,
        "ARIA_VERTEX_API_ENDPOINT": vertex_url,
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(connection),
        "AIRFLOW_VAR_ARIA_PROJECT": "aria-local",
        "AIRFLOW_VAR_ARIA_DATA_BUCKET": "aria-datasets",
        "AIRFLOW_VAR_ARIA_PIPELINE_ROOT": "gs://aria-pipeline-root",
        "ARIA_UPLOAD_INACTIVITY_SECONDS": os.environ.get("ARIA_UPLOAD_INACTIVITY_SECONDS", "15"),
        "ARIA_SENSOR_POKE_SECONDS": os.environ.get("ARIA_SENSOR_POKE_SECONDS", "5"),
        "ARIA_VERTEX_POLL_SECONDS": os.environ.get("ARIA_VERTEX_POLL_SECONDS", "2"),
        # Locally the DAG runs when a person triggers it or backfills it: an unpaused weekly schedule
        # would start this week's run at once and, with max_active_runs=1, make manual runs queue behind
        # its sensor; `none` would grey out Backfill. `backfill` keeps the weekly intervals, starts nothing.
        "ARIA_TUNING_SCHEDULE": os.environ.get("ARIA_TUNING_SCHEDULE", "backfill"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.update(extra or {})
    return env


#: The settings of `airflow_env` (everything else it passes on is the caller's own environment).
_OWN_SETTINGS = ("AIRFLOW_", "AIRFLOW__", "ARIA_", "STORAGE_EMULATOR_HOST", "PYTHONPATH")


def env_file(home: Path) -> Path:
    """Where `up` records the settings it gave Airflow, for `env` (the CLI against the same Airflow)."""
    return home / "env.json"


def save_env(home: Path, env: dict[str, str]) -> None:
    """Record the settings `airflow_env` chose (not the inherited environment) for `env`."""
    own = {k: v for k, v in env.items() if k.startswith(_OWN_SETTINGS)}
    env_file(home).write_text(json.dumps(own, indent=2, sort_keys=True) + "\n")


def env(args: argparse.Namespace) -> int:
    """Print `export` lines that point the `airflow` CLI at the Airflow `up` started (AIRFLOW_HOME, its
    database, DAG and plugin folders, the emulators): `eval "$(python -m scripts.local_airflow env)"`."""
    import shlex

    path = env_file(Path(args.run_dir).resolve() / "airflow")
    if not path.exists():
        print(f"echo 'No {path}: start Airflow with make up first' >&2; false")
        return 1
    recorded = json.loads(path.read_text())
    for key in sorted(recorded):
        print(f"export {key}={shlex.quote(recorded[key])}")
    print(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    return 0


def write_admin_password(home: Path, password: str | None = None) -> str:
    """Pin the simple auth manager's password for `admin` (it generates one only when absent)."""
    path = home / "simple_auth_manager_passwords.json.generated"
    home.mkdir(parents=True, exist_ok=True)
    passwords = json.loads(path.read_text()) if path.exists() else {}
    if password or ADMIN_USER not in passwords:
        passwords[ADMIN_USER] = password or secrets.token_urlsafe(12)
        path.write_text(json.dumps(passwords) + "\n")
    return str(passwords[ADMIN_USER])


def airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def migrate(env: dict[str, str], log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "db-migrate.log").open("ab") as out:
        subprocess.run(
            [airflow_bin(), "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT, check=True
        )


def start_airflow_process(name: str, env: dict[str, str], log_dir: Path) -> Process:
    """`airflow <name>` (api-server, scheduler, ...) in the background, from the repository."""
    return spawn(name, [airflow_bin(), name], log_dir, env, cwd=REPO)


def start_airflow(env: dict[str, str], log_dir: Path, timeout: float = 180.0) -> list[Process]:
    """Start api-server, scheduler, dag-processor and triggerer; wait until the api-server answers.

    Their ports come with `env` (one api-server port shared by four processes' settings), so unlike the
    emulators' start this one is not retried on another port.
    """
    started = [start_airflow_process(name, env, log_dir) for name in AIRFLOW_PROCESSES]
    api = started[0]
    try:
        wait_http(f"{env['AIRFLOW__API__BASE_URL']}/api/v2/monitor/health", timeout, api.gone)
    except BaseException:
        for process in started:
            process.stop()
        raise
    return started


# --- up / down ---------------------------------------------------------------------------------


def slow_down_vertex(vertex_url: str) -> None:
    """A tuning run of ~20 s and deploys of ~10 s: long enough to watch the tasks defer and resume.

    A deferral that resumes within a few seconds can also race the LocalExecutor: the scheduler may read
    the exit of the deferring process after the resumed one started, and fail the running task.
    """
    emulators.emulator_control(
        vertex_url, "settings", {"secondsPerStep": 0.5, "operationSeconds": 10}, method="PATCH"
    )


def up(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).resolve()
    if (existing := State.load(run_dir)) and any(p.running() for p in existing.processes):
        print(f"Airflow is already running (state in {State.path(run_dir)}); `make down` first.")
        return 1
    home, logs = run_dir / "airflow", run_dir / "airflow" / "logs"
    state = State(run_dir=str(run_dir))
    try:
        emulators.start(run_dir, args.gcs_port, args.vertex_port, args.vertex_grpc_port or None)
        state.emulators = True
        state.save()
        gcs_url, vertex_url = f"http://127.0.0.1:{args.gcs_port}", f"http://127.0.0.1:{args.vertex_port}"
        os.environ["STORAGE_EMULATOR_HOST"] = gcs_url
        from scripts.sample_data import create_buckets, sample_versions, upload_version

        create_buckets(["aria-datasets", "aria-pipeline-root"])
        slow_down_vertex(vertex_url)
        uris = [upload_version(version).uri for version in sample_versions()]
        if args.db == "postgres":
            db_url, data = start_postgres(run_dir / "postgres", args.pg_port)
            state.postgres_data = str(data)
            state.save()
        else:
            db_url = f"sqlite:///{home / 'airflow.db'}"
        secret_file = home / "jwt_secret"
        home.mkdir(parents=True, exist_ok=True)
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(32))
        env = airflow_env(home, db_url, args.port, gcs_url, vertex_url, secret_file.read_text().strip())
        save_env(home, env)
        password = write_admin_password(home, os.environ.get("ARIA_AIRFLOW_PASSWORD"))
        print(f"Migrating the metadata database ({args.db}) ...", flush=True)
        migrate(env, logs)
        state.processes = start_airflow(env, logs)
        state.save()
    except BaseException:
        down_state(state)
        raise
    print(
        f"\nAirflow UI: http://127.0.0.1:{args.port}   login: {ADMIN_USER} / {password}\n"
        f"  metadata database: {args.db}, executor: LocalExecutor, logs: {logs}\n"
        f"  emulators: GCS {gcs_url}, Vertex AI {vertex_url}\n"
        f"  sample dataset versions: {', '.join(uris)}\n"
        "  Trigger `aria_text_tuning` with a logical date of one of those versions (e.g. 2025-06-01),\n"
        "  or set the `dataset_uri` param to one of them. Stop everything with `make down`.\n"
        '  The airflow CLI against this Airflow: eval "$(python -m scripts.local_airflow env)"'
    )
    return 0


def down_state(state: State) -> None:
    for process in reversed(state.processes):
        process.stop()
    if state.postgres_data:
        stop_postgres(Path(state.postgres_data))
    if state.emulators:
        emulators.stop(Path(state.run_dir))
    State.path(Path(state.run_dir)).unlink(missing_ok=True)


def down(args: argparse.Namespace) -> int:
    state = State.load(Path(args.run_dir).resolve())
    if state is None:
        print("Nothing to stop: no state file (was `make up` run?).")
        return 0
    down_state(state)
    print(
        "Stopped: "
        + ", ".join([p.name for p in state.processes] + (["postgres"] if state.postgres_data else []))
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--run-dir", default=str(REPO / ".run"))
    parser.add_argument("--db", choices=["sqlite", "postgres"], default=os.environ.get("ARIA_DB", "sqlite"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", "8080")))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("ARIA_PG_PORT", "5433")))
    parser.add_argument("--gcs-port", type=int, default=int(os.environ.get("GCS_PORT", "9023")))
    parser.add_argument("--vertex-port", type=int, default=int(os.environ.get("VERTEX_PORT", "9024")))
    grpc_port = int(os.environ.get("VERTEX_GRPC_PORT", "9025"))
    parser.add_argument("--vertex-grpc-port", type=int, default=grpc_port, help="0: none")
    args = parser.parse_args(argv)
    return {"up": up, "down": down, "env": env}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
