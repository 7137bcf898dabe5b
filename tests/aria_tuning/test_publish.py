"""`vertex-tuning publish` on the GCS emulator: the files, then a manifest of what GCS holds; no overwrite."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from aria_tuning.cli import main
from aria_tuning.commands.publish import AlreadyPublished, publish_version
from aria_tuning.errors import ConfigurationError
from aria_tuning.manifest import MANIFEST_NAME, Manifest

BUCKET = "aria-publish-tests"


@pytest.fixture
def client(gcs_emulator: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="aria-local", credentials=AnonymousCredentials())
    if client.lookup_bucket(BUCKET) is None:
        client.create_bucket(BUCKET)
    return client


@pytest.fixture
def destination() -> str:
    return f"gs://{BUCKET}/team-{uuid.uuid4().hex[:8]}/raw/v=2030-01-01/"


def _dataset(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "part-000.jsonl").write_text('{"input_text": "a", "output_text": "b"}\n\n{"x": 1}\n')
    (root / "sub" / "part-001.jsonl").write_text('{"input_text": "c", "output_text": "d"}\n')
    (root / ".hidden.jsonl").write_text("not published\n")
    return root


def _stored(client: Any, destination: str) -> dict[str, Any]:
    prefix = destination.removeprefix(f"gs://{BUCKET}/")
    return {b.name.removeprefix(prefix): b for b in client.list_blobs(BUCKET, prefix=prefix)}


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def test_publish_uploads_the_files_then_a_manifest_of_what_gcs_reports(
    client: Any, destination: str, tmp_path: Path
) -> None:
    published = publish_version([_dataset(tmp_path / "data")], destination, storage_client=client)

    stored = _stored(client, destination)
    assert set(stored) == {"part-000.jsonl", "sub/part-001.jsonl", MANIFEST_NAME}
    generations = {name: blob.generation for name, blob in stored.items()}
    manifest = Manifest.from_json(stored[MANIFEST_NAME].download_as_bytes(), "published")
    assert manifest == published.manifest
    for entry in manifest.files:
        assert (entry.size, entry.crc32c) == (stored[entry.name].size, stored[entry.name].crc32c)
        assert entry.crc32c == _crc((tmp_path / "data" / entry.name).read_bytes())
    assert manifest.example_count == 3  # non-blank lines, as data prep counts them
    # Written last: a newer generation than every file it lists.
    assert generations[MANIFEST_NAME] > max(generations[f.name] for f in manifest.files)
    assert published.manifest_uri == destination + MANIFEST_NAME


def test_a_published_version_is_not_overwritten_without_force(
    client: Any, destination: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "data")
    publish_version([data], destination, storage_client=client)
    before = {name: blob.generation for name, blob in _stored(client, destination).items()}
    (data / "part-000.jsonl").write_text('{"input_text": "new", "output_text": "data"}\n')

    with pytest.raises(AlreadyPublished) as refused:
        publish_version([data], destination, storage_client=client)
    assert str(refused.value).startswith(f"{destination} is already published (manifest {MANIFEST_NAME}")
    assert "--force" in str(refused.value)
    assert main(["publish", str(data), destination]) == 1
    assert "is already published" in capsys.readouterr().err
    assert {name: blob.generation for name, blob in _stored(client, destination).items()} == before

    replaced = publish_version([data], destination, storage_client=client, force=True)
    after = _stored(client, destination)
    assert after["part-000.jsonl"].generation != before["part-000.jsonl"]
    assert after[MANIFEST_NAME].generation != before[MANIFEST_NAME]
    entry = next(f for f in replaced.manifest.files if f.name == "part-000.jsonl")
    assert entry.crc32c == after["part-000.jsonl"].crc32c == _crc((data / "part-000.jsonl").read_bytes())


def test_large_files_go_up_resumable_in_chunks(client: Any, destination: str, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    line = json.dumps({"input_text": "x" * 200, "output_text": "y" * 200}) + "\n"
    big.write_text(line * (9 * (1 << 20) // len(line) + 1))  # over 8 MiB: the resumable protocol
    published = publish_version([big], destination, storage_client=client, chunk_size=1 << 20)
    [entry] = published.manifest.files
    assert entry.size == big.stat().st_size > 8 << 20
    assert entry.crc32c == _crc(big.read_bytes()) == _stored(client, destination)["big.jsonl"].crc32c


def test_the_command_line_reports_each_file_and_the_manifest(
    gcs_emulator: str, client: Any, destination: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert os.environ["STORAGE_EMULATOR_HOST"] == gcs_emulator  # the CLI's client goes there
    data = _dataset(tmp_path / "data")
    assert (
        main(["publish", str(data / "part-000.jsonl"), str(data / "sub"), destination, "--workers", "2"]) == 0
    )
    out = capsys.readouterr()
    assert "[1/2] uploaded" in out.err and "[2/2] uploaded" in out.err
    assert f"published {destination}: 2 files" in out.out
    assert f"manifest {destination}{MANIFEST_NAME}" in out.out
    assert set(_stored(client, destination)) == {"part-000.jsonl", "part-001.jsonl", MANIFEST_NAME}


@pytest.mark.parametrize(
    ("sources", "target", "expected"),
    [
        (["data"], "/local/dir", "the destination must be a gs://bucket/prefix/"),
        (["missing"], None, "missing: no such file or directory"),
        (["empty"], None, "nothing to publish in"),
        (["data/part-000.jsonl", "again/part-000.jsonl"], None, "as the same object: part-000.jsonl"),
    ],
)
def test_bad_arguments_are_refused_before_any_upload(
    client: Any, destination: str, tmp_path: Path, sources: list[str], target: str | None, expected: str
) -> None:
    _dataset(tmp_path / "data")
    _dataset(tmp_path / "again")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match=expected):
        publish_version([tmp_path / s for s in sources], target or destination, storage_client=client)
    assert _stored(client, destination) == {}


def test_the_seeded_sample_versions_carry_manifests_that_gcs_agrees_with(
    client: Any, destination: str
) -> None:
    """docker-compose seeds fake-gcs-server with include/sample_data/gcs, manifests included."""
    from scripts.sample_data import sample_files, sample_versions, seed_manifest, seed_manifest_path

    for version in sample_versions():
        seeded = Manifest.from_json(seed_manifest_path(version).read_text(encoding="utf-8"), str(version))
        # Stale after regenerating the samples? `python -m scripts.sample_data` rewrites them.
        assert seed_manifest_path(version).read_text(encoding="utf-8") == seed_manifest(version)
        published = publish_version(sample_files(version), f"{destination}{version}/", storage_client=client)
        assert published.manifest.files == seeded.files
        assert published.manifest.example_count == seeded.example_count
