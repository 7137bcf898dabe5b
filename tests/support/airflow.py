"""An Airflow for tests: a temporary AIRFLOW_HOME with a SQLite metadata DB, and the GCP connection.

`configure_environment()` must run before anything imports airflow (tests/conftest.py calls it from
pytest_configure); `migrate_database()` runs `airflow db migrate` once per session; `use_emulators()`
points the `google_cloud_default` connection at the Vertex emulator (anonymous, REST) through a
MonkeyPatch, so the change is undone with it.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = "aria-local"
CONN_ENV = "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"
#: DAG bundles tests run with `dag.test()`: the project's dags/ plus DAG files that exist only for tests
#: (`dag.test()` needs every DAG it runs to be in a bundle, so it can serialize it).
TEST_DAG_FOLDERS = {"aria-tests-components": REPO / "tests" / "aria_tuning" / "dags"}


_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


def configure_environment(home: Path | None = None) -> Path:
    """Set AIRFLOW_HOME and the settings tests need; returns the home. Idempotent per process."""
    if os.environ.get("ARIA_TEST_AIRFLOW_HOME"):
        return Path(os.environ["ARIA_TEST_AIRFLOW_HOME"])
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="aria-airflow-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    settings = {
        "ARIA_TEST_AIRFLOW_HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__API_AUTH__JWT_SECRET": "aria-tests-only",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [{"name": "dags-folder", "classpath": _LOCAL_BUNDLE, "kwargs": {}}]
            + [
                {"name": name, "classpath": _LOCAL_BUNDLE, "kwargs": {"path": str(path)}}
                for name, path in TEST_DAG_FOLDERS.items()
            ]
        ),
        # Without a connection pointing at an emulator nothing may reach Google: fail fast instead.
        CONN_ENV: json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}),
    }
    os.environ.update(settings)
    return home


def migrate_database() -> None:
    """Create the SQLite metadata DB (a subprocess: the CLI sets its own logging and exits)."""
    marker = Path(os.environ["AIRFLOW_HOME"]) / ".migrated"
    if marker.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    marker.touch()


def connection_extra(vertex_url: str) -> dict[str, object]:
    return {"is_anonymous": True, "project": PROJECT, "vertex_api_endpoint": vertex_url}


def grpc_connection_extra(grpc_target: str) -> dict[str, object]:
    """The connection of a production setup: the client libraries' default transport, gRPC."""
    return {
        "is_anonymous": True,
        "project": PROJECT,
        "vertex_api_endpoint": grpc_target,
        "vertex_transport": "grpc",
    }


def connection_json(extra: dict[str, object]) -> str:
    return json.dumps({"conn_type": "google_cloud_platform", "extra": extra})


def use_emulators(vertex_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point `google_cloud_default` at the Vertex emulator (anonymous credentials, project aria-local)
    until `monkeypatch` is undone (a fixture's own, or `pytest.MonkeyPatch.context()` in a wider one)."""
    monkeypatch.setenv(CONN_ENV, connection_json(connection_extra(vertex_url)))
