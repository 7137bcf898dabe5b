"""The dataset-version sensor and its trigger against the GCS emulator: a published version proceeds; a
missing, changed or unlisted file, or a manifest written first, fails naming the object; the fallback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aria_tuning.dataset_trigger import DatasetVersionTrigger
from aria_tuning.dataset_versions import COMPLETE, WAITING, QuietWatch, check
from aria_tuning.manifest import MANIFEST_NAME, Manifest, ManifestFile
from aria_tuning.sensors import DatasetVersionSensor

from scripts.emulators import emulator_control
from tests.aria_tuning.conftest import first_event, new_ti, roundtrip, run_direct
from tests.support import airflow as airflow_support
from tests.support.service_accounts import create_key
from tests.vertex_emulator.conftest import AuthEmulator, auth_emulator  # noqa: F401  (fixture)

BUCKET = "aria-sensor-tests"
LINES = {
    "part-000.jsonl": '{"input_text": "¿Hola?", "output_text": "Hola."}\n' * 3,
    "part-001.jsonl": '{"input_text": "¿Adiós?", "output_text": "Adiós."}\n' * 2,
}
FAST = {"poll_interval": 0.05, "transient_error_budget": 2}


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch, gcs_emulator: str) -> None:
    """`google_cloud_default`: anonymous credentials (the emulator's default), project aria-local."""
    monkeypatch.setenv(
        airflow_support.CONN_ENV,
        airflow_support.connection_json({"is_anonymous": True, "project": airflow_support.PROJECT}),
    )


@pytest.fixture
def client(gcs_emulator: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=airflow_support.PROJECT, credentials=AnonymousCredentials())
    if client.lookup_bucket(BUCKET) is None:
        client.create_bucket(BUCKET)
    return client


@pytest.fixture
def prefix() -> str:
    return f"v-{uuid.uuid4().hex[:8]}/raw/v=2030-01-01/"


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    paths = []
    for name, text in LINES.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def publish(client: Any, prefix: str, files: list[Path], bucket: str = BUCKET) -> Manifest:
    from aria_tuning.commands.publish import publish_version

    return publish_version(files, f"gs://{bucket}/{prefix}", storage_client=client).manifest


def put(client: Any, prefix: str, name: str, data: str | bytes, bucket: str = BUCKET) -> Any:
    blob = client.bucket(bucket).blob(prefix + name)
    blob.upload_from_string(data)
    return blob


def trigger(prefix: str, bucket: str = BUCKET, **options: Any) -> DatasetVersionTrigger:
    return DatasetVersionTrigger(bucket=bucket, prefix=prefix, **{**FAST, **options})


def wait(t: DatasetVersionTrigger) -> dict[str, Any]:
    """What the triggerer does: rebuild from serialize(), run to the first event (bounded)."""
    return asyncio.run(asyncio.wait_for(first_event(roundtrip(t)), timeout=60))


def test_trigger_serialize_round_trip() -> None:
    original = trigger(
        "p/", refuse_unlisted=True, allow_unmanifested=True, inactivity_period=5, min_objects=2
    )
    path, kwargs = original.serialize()
    assert path == "aria_tuning.dataset_trigger.DatasetVersionTrigger"
    assert roundtrip(original).serialize() == (path, kwargs)
    assert kwargs["refuse_unlisted"] is True and kwargs["inactivity_period"] == 5.0


@pytest.mark.usefixtures("connection")
def test_a_published_version_is_complete_with_every_file_at_its_generation(
    client: Any, prefix: str, files: list[Path]
) -> None:
    manifest = publish(client, prefix, files)
    event = wait(trigger(prefix))
    assert event["status"] == "success" and event["mode"] == "manifest"
    generations = {b.name: b.generation for b in client.list_blobs(BUCKET, prefix=prefix)}
    assert event["objects"] == [
        {
            "name": prefix + f.name,
            "generation": generations[prefix + f.name],
            "size": f.size,
            "crc32c": f.crc32c,
            "uri": f"gs://{BUCKET}/{prefix}{f.name}#{generations[prefix + f.name]}",
        }
        for f in manifest.files
    ]
    assert event["manifest"]["example_count"] == 5 and event["unlisted"] == []
    assert (
        event["manifest"]["uri"]
        == f"gs://{BUCKET}/{prefix}{MANIFEST_NAME}#{generations[prefix + MANIFEST_NAME]}"
    )


@pytest.mark.usefixtures("connection")
def test_a_listed_file_missing_fails_naming_it(client: Any, prefix: str, files: list[Path]) -> None:
    publish(client, prefix, files)
    client.bucket(BUCKET).blob(prefix + "part-001.jsonl").delete()
    event = wait(trigger(prefix))
    assert event["status"] == "error" and event["retryable"] is False
    [problem] = event["problems"]
    assert problem.startswith(f"gs://{BUCKET}/{prefix}part-001.jsonl: listed in the manifest (crc32c ")
    assert "missing in GCS (crc32c: none)" in problem and problem in event["message"]


@pytest.mark.usefixtures("connection")
def test_a_file_whose_checksum_differs_fails_with_both_checksums(
    client: Any, prefix: str, files: list[Path]
) -> None:
    manifest = publish(client, prefix, files)
    listed = next(f for f in manifest.files if f.name == "part-000.jsonl")
    replaced = put(client, prefix, "part-000.jsonl", LINES["part-000.jsonl"].replace("Hola.", "Ciao."))
    assert replaced.size == listed.size  # same size: only the checksum tells
    event = wait(trigger(prefix))
    [problem] = event["problems"]
    assert problem == (
        f"gs://{BUCKET}/{prefix}part-000.jsonl: differs from the manifest: crc32c {replaced.crc32c} in GCS, "
        f"{listed.crc32c} in the manifest; size {listed.size} bytes in GCS, {listed.size} in the manifest"
    )


@pytest.mark.usefixtures("connection")
def test_an_unlisted_object_is_reported_and_ignored_or_refused(
    client: Any, prefix: str, files: list[Path]
) -> None:
    publish(client, prefix, files)
    put(client, prefix, "late-extra.jsonl", '{"input_text": "x", "output_text": "y"}\n')
    event = wait(trigger(prefix))
    assert event["status"] == "success"
    assert event["unlisted"] == [f"gs://{BUCKET}/{prefix}late-extra.jsonl"]
    assert all("late-extra" not in o["name"] for o in event["objects"])
    refused = wait(trigger(prefix, refuse_unlisted=True))
    assert refused["status"] == "error"
    assert refused["problems"] == [f"gs://{BUCKET}/{prefix}late-extra.jsonl: not listed in the manifest"]
    assert "refuse_unlisted is set" in refused["message"]


@pytest.mark.usefixtures("connection")
def test_a_manifest_written_before_its_files_fails(client: Any, prefix: str, files: list[Path]) -> None:
    import base64

    import google_crc32c

    # The manifest is right about the files' contents, but they are not there yet.
    entries = [
        ManifestFile(
            p.name,
            p.stat().st_size,
            base64.b64encode(google_crc32c.Checksum(p.read_bytes()).digest()).decode(),
        )
        for p in files
    ]
    put(client, prefix, MANIFEST_NAME, Manifest.new(entries).to_json())
    put(client, prefix, files[0].name, files[0].read_bytes())  # one of two has landed
    event = wait(trigger(prefix))
    assert event["status"] == "error"
    [problem] = event["problems"]
    assert problem.startswith(f"gs://{BUCKET}/{prefix}{files[1].name}: listed in the manifest")
    assert "was the manifest written before its files?" in problem


@pytest.mark.usefixtures("connection")
def test_an_invalid_manifest_fails_naming_the_manifest(client: Any, prefix: str) -> None:
    put(client, prefix, MANIFEST_NAME, json.dumps({"schemaVersion": 7, "files": []}))
    event = wait(trigger(prefix))
    assert event["status"] == "error"
    assert event["message"].startswith(f"gs://{BUCKET}/{prefix}{MANIFEST_NAME}#")
    assert "schemaVersion 7 is not supported" in event["message"]


def test_without_a_manifest_the_version_waits_unless_the_fallback_is_on(client: Any, prefix: str) -> None:
    put(client, prefix, "part-000.jsonl", LINES["part-000.jsonl"])
    assert check(client, BUCKET, prefix).status == WAITING
    watch = QuietWatch(inactivity_period=30)
    assert check(client, BUCKET, prefix, watch=watch, now=100).status == WAITING
    done = check(client, BUCKET, prefix, watch=watch, now=130)
    assert done.status == COMPLETE and done.result["mode"] == "inactivity"
    assert [o["name"] for o in done.result["objects"]] == [prefix + "part-000.jsonl"]


@pytest.mark.usefixtures("connection")
def test_the_fallback_trigger_completes_a_quiet_version_without_a_manifest(
    client: Any, prefix: str, files: list[Path]
) -> None:
    blobs = [put(client, prefix, p.name, p.read_bytes()) for p in files]
    event = wait(trigger(prefix, allow_unmanifested=True, inactivity_period=0.2))
    assert event["status"] == "success" and event["mode"] == "inactivity" and event["manifest"] is None
    assert [(o["name"], o["generation"]) for o in event["objects"]] == [(b.name, b.generation) for b in blobs]


@pytest.mark.usefixtures("connection")
def test_a_gcs_failure_is_a_retryable_error_naming_the_version() -> None:
    event = wait(trigger("p/", bucket=f"aria-missing-{uuid.uuid4().hex[:8]}"))
    assert event["status"] == "error" and event["retryable"] is True
    assert (
        event["message"].startswith("gs://aria-missing-")
        and "checking the dataset version failed" in event["message"]
    )


# --- the sensor ---------------------------------------------------------------------------------


def sensor(prefix: str, **options: Any) -> DatasetVersionSensor:
    return DatasetVersionSensor(
        task_id="wait_for_dataset_version", bucket=BUCKET, prefix=prefix, poke_interval=0.05, **options
    )


def test_the_sensor_is_an_airflow_sensor() -> None:
    from airflow.sdk import BaseSensorOperator

    made = sensor("p/", timeout=120, soft_fail=True)
    assert isinstance(made, BaseSensorOperator) and made.deferrable
    assert (made.timeout, made.soft_fail, made.poke_interval) == (120, True, 0.05)


@pytest.mark.usefixtures("connection")
def test_a_published_version_passes_without_deferring(client: Any, prefix: str, files: list[Path]) -> None:
    publish(client, prefix, files)
    ti = new_ti("wait_for_dataset_version")
    result = sensor(prefix).execute({"ti": ti})  # returns: no TaskDeferred
    assert result["mode"] == "manifest" and len(result["objects"]) == 2


@pytest.mark.usefixtures("connection")
def test_the_sensor_defers_for_its_timeout_and_resumes_once_published(
    client: Any, prefix: str, files: list[Path]
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    waiting = sensor(prefix, timeout=3600)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({"ti": new_ti()})
    assert isinstance(deferred.value.trigger, DatasetVersionTrigger)
    assert (
        deferred.value.timeout == dt.timedelta(hours=1) and deferred.value.method_name == "execute_complete"
    )

    published: list[Manifest] = []
    result = run_direct(
        waiting, new_ti(), before_trigger=lambda _: published.append(publish(client, prefix, files))
    )
    assert published and [o["crc32c"] for o in result["objects"]] == [f.crc32c for f in published[0].files]


def test_a_failed_check_fails_the_task_without_retry_or_skips_with_soft_fail() -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

    bad = {"status": "error", "message": "gs://b/p/: the manifest does not match", "problems": ["x"]}
    with pytest.raises(AirflowFailException, match="the manifest does not match"):
        sensor("p/").execute_complete({}, {**bad, "retryable": False})
    with pytest.raises(AirflowSkipException, match="soft_fail"):
        sensor("p/", soft_fail=True).execute_complete({}, {**bad, "retryable": False})
    with pytest.raises(AirflowException) as unreachable:
        sensor("p/").execute_complete({}, {**bad, "retryable": True})
    assert not isinstance(unreachable.value, AirflowFailException)  # GCS down: retries apply


@pytest.mark.usefixtures("connection")
def test_poke_mode_checks_on_the_worker(client: Any, prefix: str, files: list[Path]) -> None:
    poking = sensor(prefix, deferrable=False)
    assert poking.poke({}) is False
    publish(client, prefix, files)
    done = poking.poke({})
    assert done and done.xcom_value["mode"] == "manifest"  # type: ignore[union-attr]


# --- credentials ---------------------------------------------------------------------------------


@pytest.fixture
def gate(auth_emulator: AuthEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthEmulator]:  # noqa: F811
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", auth_emulator.gcs_gate)
    yield auth_emulator


def test_every_check_carries_the_connections_credentials(
    gate: AuthEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: list[Path]
) -> None:
    """Through a GCS gate that requires auth (the provider's GCSAsyncHook sends none to an emulator)."""
    from google.cloud import storage

    key = create_key(gate.url, name="sensor", directory=tmp_path)
    monkeypatch.setenv(
        airflow_support.CONN_ENV,
        airflow_support.connection_json({"key_path": str(key.path), "project": airflow_support.PROJECT}),
    )
    client = storage.Client(project=airflow_support.PROJECT, credentials=key.credentials())
    bucket = f"gate-sensor-{uuid.uuid4().hex[:8]}"
    client.create_bucket(bucket)
    publish(client, "raw/v=2030-01-01/", files, bucket=bucket)

    event = wait(trigger("raw/v=2030-01-01/", bucket=bucket))
    assert event["status"] == "success", event

    calls = emulator_control(gate.url, "auth/calls")["calls"]
    lists = [c for c in calls if c["surface"] == "gcs" and c["path"].endswith(f"/b/{bucket}/o")]
    assert lists and {c["principal"] for c in calls if c["surface"] == "gcs" and bucket in c["path"]} == {
        key.email
    }


# --- data prep reads the generations the sensor verified --------------------------------------------


def test_data_prep_reads_the_verified_generations_and_refuses_a_file_replaced_since(
    client: Any, prefix: str, files: list[Path]
) -> None:
    from aria_tuning.dataprep import validate_sources
    from aria_tuning.errors import DatasetError

    publish(client, prefix, files)
    verified = check(client, BUCKET, prefix)
    uris = [o["uri"] for o in verified.result["objects"]]
    result = validate_sources(uris, "text-bison@001", storage_client=client)
    assert result.read == 5 and result.sources == uris  # the report keeps the generations read
    assert result.counts()["invalid"] == 0  # every line read and parsed (the tiny set is just too small)

    put(client, prefix, "part-001.jsonl", LINES["part-001.jsonl"] * 2)  # replaced after the check
    with pytest.raises(DatasetError) as refused:
        validate_sources(uris, "text-bison@001", storage_client=client)
    pinned = next(u for u in uris if "part-001" in u)
    generation = pinned.rsplit("#", 1)[1]
    assert str(refused.value).startswith(f"gs://{BUCKET}/{prefix}part-001.jsonl: generation {generation} ")
    assert "the file changed after it was checked" in str(refused.value)
