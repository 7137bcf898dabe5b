"""Airflow connections with a service-account key (`keyfile_dict`, `key_path`) give credentials the
emulators accept, through the Google provider's own GoogleBaseHook and GCSHook."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import Credentials
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.support.service_accounts import create_key
from tests.vertex_emulator.conftest import GPU_REGION, AuthEmulator


def _connection(monkeypatch: pytest.MonkeyPatch, **extra: object) -> str:
    """A google_cloud_platform connection in AIRFLOW_CONN_<ID> (JSON form); returns its id."""
    conn_id = f"gcp_sa_{uuid.uuid4().hex[:8]}"
    payload = {"conn_type": "google_cloud_platform", "extra": {"project": "aria-local", **extra}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
    return conn_id


def _list_pipeline_jobs(url: str, credentials: Credentials, project: str) -> str:
    client = aiplatform_v1.PipelineServiceClient(
        credentials=credentials, transport="rest", client_options=ClientOptions(api_endpoint=url)
    )
    parent = f"projects/{project}/locations/{GPU_REGION}"
    assert list(client.list_pipeline_jobs(parent=parent)) == []
    calls = emulator_control(url, "auth/calls")["calls"]
    return [c["principal"] for c in calls if c["path"] == f"/v1/{parent}/pipelineJobs"][-1]


def test_a_keyfile_dict_connection_yields_credentials_vertex_accepts(
    auth_required: str, monkeypatch: pytest.MonkeyPatch, project: str
) -> None:
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

    key = create_key(auth_required, name="keyfile-dict")
    # As the connection form stores it: the JSON key as a string in the extra.
    conn_id = _connection(monkeypatch, keyfile_dict=json.dumps(key.info))

    credentials = GoogleBaseHook(gcp_conn_id=conn_id).get_credentials()

    assert _list_pipeline_jobs(auth_required, credentials, project) == key.email


def test_a_key_path_connection_works_for_vertex_and_for_gcs_through_the_gate(
    auth_emulator: AuthEmulator, monkeypatch: pytest.MonkeyPatch, project: str, tmp_path: Path
) -> None:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

    key = create_key(auth_emulator.url, name="key-path", directory=tmp_path)
    conn_id = _connection(monkeypatch, key_path=str(key.path))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", auth_emulator.gcs_gate)

    credentials = GoogleBaseHook(gcp_conn_id=conn_id).get_credentials()
    assert _list_pipeline_jobs(auth_emulator.url, credentials, project) == key.email
    # GCSHook hands its credentials to storage.Client (hooks/gcs.py, get_conn), which sends them even
    # under STORAGE_EMULATOR_HOST: tokens from the emulator's /token endpoint, checked by the gate.
    gcs = GCSHook(gcp_conn_id=conn_id)
    bucket = f"hook-{uuid.uuid4().hex[:10]}"
    gcs.get_conn().create_bucket(bucket)
    gcs.upload(bucket, "raw/v=2025-06-01/train.jsonl", data='{"input_text": "q", "output_text": "a"}\n')
    assert gcs.download(bucket, "raw/v=2025-06-01/train.jsonl").startswith(b'{"input_text": "q"')
    assert gcs.list(bucket, prefix="raw/") == ["raw/v=2025-06-01/train.jsonl"]

    calls = emulator_control(auth_emulator.url, "auth/calls")["calls"]
    principals = [c["principal"] for c in calls if c["surface"] == "gcs" and f"/b/{bucket}" in c["path"]]
    assert len(principals) >= 3 and set(principals) == {key.email}
