"""The DAG end to end the way Google Cloud runs it: gRPC, a service account's key, authentication required.

A Vertex emulator of its own refuses every call without a valid bearer token (REST, gRPC and the GCS
gate in front of the GCS emulator). The Airflow connection carries a service-account JSON key made in
the test (`keyfile_dict`, its token_uri at the emulator) and talks gRPC, the client libraries' default.
After the run, every call the emulators saw must name that service account, and no token, key or
secret may appear in a task log, an XCom, a rendered template or the emulator's log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.demo import run_dag
from scripts.emulators import emulator_control, start_vertex_emulator
from scripts.processes import free_port, wait_http
from scripts.sample_data import create_buckets, upload_version
from tests.dags.conftest import FAST, parse_dags
from tests.support import airflow as airflow_support
from tests.support.service_accounts import ServiceAccountKey, create_key


@dataclass(frozen=True)
class Production:
    """The authenticating emulator, the service account the run uses, and the parsed DAG."""

    url: str
    gcs_gate: str
    grpc_target: str
    log: Path
    key: ServiceAccountKey
    dag: Any


@pytest.fixture(scope="module")
def production(gcs_emulator: str, run_dir: Path) -> Iterator[Production]:
    gate_port, grpc_port = free_port(), free_port()
    server = start_vertex_emulator(
        run_dir,
        gcs_url=gcs_emulator,
        grpc_port=grpc_port,
        extra_args=["--require-auth", "--gcs-gate-port", str(gate_port), "--log-level", "debug"],
        name="vertex-production",
    )
    gate = f"http://127.0.0.1:{gate_port}"
    monkeypatch = pytest.MonkeyPatch()
    try:
        wait_http(f"{gate}/storage/v1/b", 30)
        key = create_key(server.url, name="aria-composer")
        # The buckets and the dataset version exist before the run (seeded past the gate).
        create_buckets(["aria-datasets", "aria-pipeline-root"])
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gate)
        for name, value in FAST.items():
            monkeypatch.setenv(name, value)
        extra = {
            "keyfile_dict": json.dumps(key.info),
            "project": airflow_support.PROJECT,
            "vertex_api_endpoint": f"127.0.0.1:{grpc_port}",
            "vertex_transport": "grpc",
        }
        monkeypatch.setenv(airflow_support.CONN_ENV, airflow_support.connection_json(extra))
        airflow_support.migrate_database()
        bag = parse_dags()
        assert not bag.import_errors, bag.import_errors
        yield Production(
            server.url,
            gate,
            f"127.0.0.1:{grpc_port}",
            Path(server.process.log),
            key,
            bag.dags["aria_text_tuning"],
        )
    finally:
        monkeypatch.undo()
        server.stop()


def _secrets_of(key: ServiceAccountKey) -> list[str]:
    """What must never be written anywhere: the private key (any line of it), its id, issued tokens."""
    private = [line for line in key.info["private_key"].splitlines() if len(line) > 20]
    return [key.info["private_key_id"], "ya29.emulator-", "BEGIN PRIVATE KEY", *private[:3]]


def _run_records(run_id: str) -> str:
    """Every XCom and rendered template of the run, as text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = session.scalars(select(XComModel).where(XComModel.run_id == run_id)).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.run_id == run_id)
        ).all()
        text = [json.dumps(XComModel.deserialize_value(x), default=str) for x in xcoms]
        text += [json.dumps(r.rendered_fields, default=str) for r in rendered]
    assert xcoms and rendered, "the run wrote no XComs or rendered fields: nothing was checked"
    return "\n".join(text)


def test_grpc_run_with_a_service_account_key_authenticates_every_call_and_leaks_nothing(
    production: Production, capfd: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import storage

    # The team publishes the version with its own service account, through the gate.
    client = storage.Client(project=airflow_support.PROJECT, credentials=production.key.credentials())
    upload_version("2025-06-01", as_version="2031-05-05", client=client)
    emulator_control(production.url, "auth", {"required": True})
    before = len(emulator_control(production.url, "auth/calls")["calls"])

    version = "gs://aria-datasets/aria-text/raw/v=2031-05-05/"
    state, states, xcoms = run_dag(
        production.dag,
        "2031-05-05",
        {"base_model": "text-bison@001", "dry_run": False, "dataset_uri": version},
    )
    assert state == "success", states
    assert xcoms["tune"]["state"] == "SUCCEEDED" and xcoms["quality_gate"]["passed"] is True

    calls = emulator_control(production.url, "auth/calls")["calls"][before:]
    surfaces = {call["surface"] for call in calls}
    # Vertex over gRPC only (the connection's transport), GCS through the gate; each call authenticated.
    assert {"grpc", "gcs"} <= surfaces and "rest" not in surfaces, surfaces
    assert {call["principal"] for call in calls} == {production.key.email}, [
        call for call in calls if call["principal"] != production.key.email
    ][:5]

    logs = capfd.readouterr()
    written = "\n".join(
        [
            logs.out,
            logs.err,
            _run_records(_run_id(production, "2031-05-05")),
            production.log.read_text(errors="replace"),
        ]
    )
    leaked = [secret for secret in _secrets_of(production.key) if secret in written]
    assert not leaked, f"secrets written: {[s[:12] + '...' for s in leaked]}"


def _run_id(production: Production, logical_date: str) -> str:
    """The run id of the test's dag.test() run (the only run of its logical date)."""
    import datetime as dt

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    when = dt.datetime.fromisoformat(logical_date).replace(tzinfo=dt.UTC)
    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == production.dag.dag_id, DagRun.logical_date == when)
        ).one()
        return str(run.run_id)


def test_an_anonymous_connection_is_refused_by_the_production_emulator(
    production: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check has teeth: the same call without the service account's credentials is refused."""
    from aria_tuning.catalog import TuningMethod
    from aria_tuning.errors import VertexPermissionDenied
    from aria_tuning.hooks.jobs import TuningJobHook

    conn = "google_cloud_anonymous_production"
    extra = airflow_support.grpc_connection_extra(production.grpc_target)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn.upper()}", airflow_support.connection_json(extra))
    with pytest.raises(VertexPermissionDenied, match="authentication credential"):
        TuningJobHook(gcp_conn_id=conn).find_jobs(
            f"projects/{airflow_support.PROJECT}/locations/europe-west4", TuningMethod.PIPELINE, "k" * 20
        )
