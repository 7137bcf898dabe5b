"""The GCS gate: google-cloud-storage with service-account credentials through a gate that requires auth."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from scripts.emulators import emulator_control
from tests.support.service_accounts import ServiceAccountKey, create_key
from tests.vertex_emulator.conftest import AuthEmulator


@pytest.fixture
def gate(auth_emulator: AuthEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthEmulator]:
    # As the DAG's processes see it: STORAGE_EMULATOR_HOST names the gate, not the GCS emulator.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", auth_emulator.gcs_gate)
    yield auth_emulator


@pytest.fixture
def key(auth_emulator: AuthEmulator) -> ServiceAccountKey:
    return create_key(auth_emulator.url, name="gcs")


def _gcs_calls(url: str, bucket: str) -> list[dict[str, str]]:
    calls = emulator_control(url, "auth/calls")["calls"]
    return [c for c in calls if c["surface"] == "gcs" and f"/b/{bucket}" in c["path"]]


def test_service_account_credentials_read_and_write_through_the_gate(
    gate: AuthEmulator, key: ServiceAccountKey
) -> None:
    # storage.Client only falls back to anonymous credentials under STORAGE_EMULATOR_HOST when given
    # none (google/cloud/storage/client.py): these go out as a bearer token from the /token endpoint.
    client = storage.Client(project="aria-local", credentials=key.credentials())
    bucket = client.create_bucket(f"gate-{uuid.uuid4().hex[:10]}")
    small, large = b"small object\n" * 10, os.urandom(3 * 256 * 1024 + 17)
    bucket.blob("raw/small.txt").upload_from_string(small)  # multipart upload
    # A resumable upload (a POST, then one PUT per chunk to the Location it answered): 4 PUTs.
    with bucket.blob("raw/large.bin", chunk_size=256 * 1024).open("wb") as writer:
        writer.write(large)

    assert bucket.blob("raw/small.txt").download_as_bytes() == small
    fetched = bucket.get_blob("raw/large.bin")  # its mediaLink points at the gate, not the upstream
    assert fetched is not None and fetched.media_link.startswith(gate.gcs_gate)
    assert fetched.download_as_bytes() == large
    assert fetched.download_as_bytes(start=10, end=19) == large[10:20]  # a ranged read: 206 passed through
    assert sorted(b.name for b in client.list_blobs(bucket.name)) == ["raw/large.bin", "raw/small.txt"]
    bucket.delete(force=True)

    calls = _gcs_calls(gate.url, bucket.name)
    assert {c["principal"] for c in calls} == {key.email}
    assert sum(c["method"] == "PUT" for c in calls) == 4  # every chunk of the resumable upload


def test_anonymous_and_forged_callers_are_refused_by_the_gate(gate: AuthEmulator) -> None:
    name = f"gate-{uuid.uuid4().hex[:10]}"
    url = f"{gate.gcs_gate}/storage/v1/b/{name}/o"

    missing = requests.get(url)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="https://accounts.google.com/"'
    assert missing.json()["error"]["errors"][0]["reason"] == "required"
    forged = requests.get(url, headers={"Authorization": "Bearer ya29.forged"})
    assert (forged.status_code, forged.json()["error"]["errors"][0]["reason"]) == (401, "authError")
    client = storage.Client(project="aria-local", credentials=AnonymousCredentials())
    # AuthorizedSession answers the 401 by refreshing, which anonymous credentials cannot do.
    with pytest.raises(auth_exceptions.InvalidOperation):
        list(client.list_blobs(name))
    assert _gcs_calls(gate.url, name) == []  # refused calls never reach the GCS emulator


def test_the_gate_forwards_what_the_upstream_answers(gate: AuthEmulator, key: ServiceAccountKey) -> None:
    credentials = key.credentials()
    client = storage.Client(project="aria-local", credentials=credentials)
    bucket = client.create_bucket(f"gate-{uuid.uuid4().hex[:10]}")

    with pytest.raises(api_exceptions.NotFound):
        bucket.blob("no/such/object").download_as_bytes()
    bearer = {"Authorization": f"Bearer {credentials.token}"}
    url = f"{gate.gcs_gate}/storage/v1/b/{bucket.name}"
    assert requests.get(url, headers=bearer).json()["name"] == bucket.name
    # gcp-storage-emulator has no HEAD (http.server answers 501): the gate passes that on as it is.
    assert requests.head(url, headers=bearer).status_code == 501
