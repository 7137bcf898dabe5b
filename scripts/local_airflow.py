"""A real Airflow on this machine, no Docker: `make up` / `make down`.

Starts the emulators and Airflow's own processes (api-server with the UI, scheduler, dag-processor,
triggerer) with AIRFLOW_HOME in .run/airflow, on SQLite by default or on a PostgreSQL cluster of the
machine's packages (ARIA_DB=postgres). Every process it starts is recorded in a state file, and
`down` stops exactly those. The functions are reused by the real-Airflow test on free ports.

    python -m scripts.local_airflow up [--db sqlite|postgres] [--port 8080]
    python -m scripts.local_airflow down
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN_USER = "admin"


@dataclass
class Started:
    """One background process: its pid leads its own process group (start_new_session)."""

    name: str
    pid: int
    start_ticks: int  # /proc/<pid>/stat start time: a recycled pid never matches
    log: str


@dataclass
class State:
    run_dir: str
    processes: list[Started] = field(default_factory=list)
    postgres_data: str | None = None
    emulators: bool = False

    @classmethod
    def path(cls, run_dir: Path) -> Path:
        return run_dir / "airflow" / "processes.json"

    def save(self) -> None:
        path = self.path(Path(self.run_dir))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> State | None:
        path = cls.path(run_dir)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["processes"] = [Started(**p) for p in data.get("processes", [])]
        return cls(**data)


# --- processes ---------------------------------------------------------------------------------


def _start_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[19])


def spawn(name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path) -> Started:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO
        )
    return Started(name, process.pid, _start_ticks(process.pid), str(log))


def is_running(started: Started) -> bool:
    return _start_ticks(started.pid) == started.start_ticks


def stop(started: Started, timeout: float = 15.0) -> None:
    """SIGTERM the process group this script started, then SIGKILL what is left after `timeout`."""
    if not is_running(started):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(started.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.waitpid(started.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not is_running(started) or _is_zombie(started.pid):
                return
            time.sleep(0.2)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_http(url: str, timeout: float, started: Started | None = None) -> None:
    """`vertex_emulator.launcher.wait_http`, failing early when `started` has exited."""
    from vertex_emulator.launcher import wait_http as wait

    def gone() -> str | None:
        return f"{started.name} exited (see {started.log})" if started and not is_running(started) else None

    wait(url, timeout, gone)


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
        # Task-log servers of the LocalExecutor workers and of the triggerer (0.0.0.0 by Airflow's design).
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_server_ports[0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_server_ports[1]),
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
        # Locally the DAG runs when a person triggers it: an unpaused weekly schedule would start this
        # week's run at once and, with max_active_runs=1, make manual runs queue behind its sensor.
        "ARIA_TUNING_SCHEDULE": os.environ.get("ARIA_TUNING_SCHEDULE", "none"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.update(extra or {})
    return env


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


def start_airflow(env: dict[str, str], log_dir: Path, timeout: float = 180.0) -> list[Started]:
    """Start api-server, scheduler, dag-processor and triggerer; wait until the api-server answers."""
    started = [spawn(name, [airflow_bin(), name], env, log_dir) for name in AIRFLOW_PROCESSES]
    api = started[0]
    try:
        wait_http(f"{env['AIRFLOW__API__BASE_URL']}/api/v2/monitor/health", timeout, api)
    except BaseException:
        for process in started:
            stop(process)
        raise
    return started


# --- up / down ---------------------------------------------------------------------------------


def _emulators(action: str, run_dir: Path, gcs_port: int, vertex_port: int) -> None:
    argv = [sys.executable, "-m", "vertex_emulator.launcher", action, "--run-dir", str(run_dir)]
    if action == "start":
        argv += ["--gcs-port", str(gcs_port), "--vertex-port", str(vertex_port)]
    subprocess.run(argv, check=action == "start", cwd=REPO)


def slow_down_vertex(vertex_url: str) -> None:
    """A tuning run of ~20 s and deploys of ~10 s: long enough to watch the tasks defer and resume.

    A deferral that resumes within a few seconds can also race the LocalExecutor: the scheduler may read
    the exit of the deferring process after the resumed one started, and fail the running task.
    """
    body = json.dumps({"secondsPerStep": 0.5, "operationSeconds": 10}).encode()
    request = urllib.request.Request(
        f"{vertex_url}/_emulator/settings",
        data=body,
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def up(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).resolve()
    if (existing := State.load(run_dir)) and any(is_running(p) for p in existing.processes):
        print(f"Airflow is already running (state in {State.path(run_dir)}); `make down` first.")
        return 1
    home, logs = run_dir / "airflow", run_dir / "airflow" / "logs"
    state = State(run_dir=str(run_dir))
    try:
        _emulators("start", run_dir, args.gcs_port, args.vertex_port)
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
        "  or set the `dataset_uri` param to one of them. Stop everything with `make down`."
    )
    return 0


def down_state(state: State) -> None:
    for process in reversed(state.processes):
        stop(process)
    if state.postgres_data:
        stop_postgres(Path(state.postgres_data))
    if state.emulators:
        _emulators("stop", Path(state.run_dir), 0, 0)
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
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--run-dir", default=str(REPO / ".run"))
    parser.add_argument("--db", choices=["sqlite", "postgres"], default=os.environ.get("ARIA_DB", "sqlite"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", "8080")))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("ARIA_PG_PORT", "5433")))
    parser.add_argument("--gcs-port", type=int, default=int(os.environ.get("GCS_PORT", "9023")))
    parser.add_argument("--vertex-port", type=int, default=int(os.environ.get("VERTEX_PORT", "9024")))
    args = parser.parse_args(argv)
    return up(args) if args.action == "up" else down(args)


if __name__ == "__main__":
    sys.exit(main())
