"""Reading datasets from, and writing prepared files to, the GCS emulator (real client, real process)."""

from __future__ import annotations

import gc
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aria_tuning.cli import main
from aria_tuning.dataprep import DatasetError, file_io, prepare_dataset, validate_sources
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import storage

from tests.aria_tuning.dataprep.conftest import DATASETS, palm_line


@pytest.fixture
def bucket(gcs_emulator: str) -> storage.Bucket:
    client = storage.Client(project="aria-local", credentials=AnonymousCredentials())
    return client.create_bucket(f"prep-{uuid.uuid4().hex[:10]}")


def test_prefix_source_reads_every_object(bucket: storage.Bucket) -> None:
    bucket.blob("raw/v1/a.jsonl").upload_from_string("\n".join(palm_line(i) for i in range(8)) + "\n")
    bucket.blob("raw/v1/b.jsonl").upload_from_string("\n".join(palm_line(i) for i in range(8, 16)) + "\n")
    bucket.blob("raw/other.jsonl").upload_from_string("not read\n")
    result = validate_sources([f"gs://{bucket.name}/raw/v1/"], "text-bison@002")
    assert result.acceptable() and result.read == 16
    assert list(result.formats) == [
        f"gs://{bucket.name}/raw/v1/a.jsonl",
        f"gs://{bucket.name}/raw/v1/b.jsonl",
    ]


def test_problems_name_the_gs_uri_and_line(bucket: storage.Bucket) -> None:
    bucket.blob("bad.jsonl").upload_from_filename(str(DATASETS / "bad" / "not_utf8.jsonl"))
    result = validate_sources([f"gs://{bucket.name}/bad.jsonl"], "text-bison@002")
    assert [str(p) for p in result.problems] == [
        f"gs://{bucket.name}/bad.jsonl:5: not UTF-8: byte 0xf3 at column 20"
    ]


def test_prepare_from_gcs_to_gcs(bucket: storage.Bucket) -> None:
    # Bigger than one 4 MiB read block, so the streaming reads cross block edges.
    lines = [palm_line(i) + " " * 200 for i in range(30_000)]
    bucket.blob("raw/big.jsonl").upload_from_string("\n".join(lines) + "\n")
    out = f"gs://{bucket.name}/prepared/v1"
    result = prepare_dataset([f"gs://{bucket.name}/raw/big.jsonl"], "gemini-2.5-flash", out)
    assert result.train_uri == f"{out}/train.jsonl" and result.eval_uri == f"{out}/eval.jsonl"
    train = bucket.blob("prepared/v1/train.jsonl").download_as_bytes().splitlines()
    evals = bucket.blob("prepared/v1/eval.jsonl").download_as_bytes().splitlines()
    assert len(train) == result.counts["train"] and len(evals) == result.counts["eval"]
    assert len(train) + len(evals) == 30_000
    assert json.loads(train[0])["contents"][0]["role"] == "user"
    report = json.loads(bucket.blob("prepared/v1/report.json").download_as_bytes())
    assert report["content_sha256"] == result.content_sha256


def test_failed_prep_writes_nothing_to_gcs(bucket: storage.Bucket) -> None:
    bucket.blob("bad.jsonl").upload_from_filename(str(DATASETS / "bad" / "invalid_json.jsonl"))
    with pytest.raises(DatasetError):
        prepare_dataset([f"gs://{bucket.name}/bad.jsonl"], "text-bison@002", f"gs://{bucket.name}/out")
    assert [b.name for b in bucket.list_blobs(prefix="out")] == []


def test_missing_prefix_is_reported(bucket: storage.Bucket) -> None:
    with pytest.raises(DatasetError, match="no dataset files found"):
        validate_sources([f"gs://{bucket.name}/nothing/"], "text-bison@002")


def test_cli_validate_on_a_gs_uri(bucket: storage.Bucket, capsys: pytest.CaptureFixture[str]) -> None:
    bucket.blob("d/bad.jsonl").upload_from_filename(str(DATASETS / "bad" / "mixed_formats.jsonl"))
    # A PaLM model, so the only problem is the one the file has (a Gemini default would also count
    # the examples against its minimum).
    assert main(["validate", f"gs://{bucket.name}/d/", "--model", "text-bison@001"]) == 1
    assert capsys.readouterr().out.startswith(f"gs://{bucket.name}/d/bad.jsonl:12: mixed formats")


def test_a_write_that_fails_uploads_nothing(bucket: storage.Bucket) -> None:
    with pytest.raises(RuntimeError), file_io.open_write(f"gs://{bucket.name}/half.jsonl") as out:
        out.write(b'{"input_text": "a", "output_text": "b"}\n')
        raise RuntimeError("disk full")
    gc.collect()
    assert bucket.get_blob("half.jsonl") is None


class RecordingCredentials(AnonymousCredentials):
    """Anonymous (the emulator checks nothing), remembering each request it is asked to sign."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []

    def before_request(self, request: Any, method: str, url: str, headers: Any) -> None:
        self.requests.append((method, url))


def test_every_gcs_call_goes_through_the_client_passed_in(
    gcs_emulator: str, bucket: storage.Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket.blob("raw/a.jsonl").upload_from_string("\n".join(palm_line(i) for i in range(40)) + "\n")
    credentials = RecordingCredentials()
    client = storage.Client(
        project="another-project", credentials=credentials, client_options={"api_endpoint": gcs_emulator}
    )
    # No emulator variable and no usable ADC: a client dataprep built for itself fails, so what
    # succeeds below went through `client` (the `bucket` fixture's client keeps its endpoint).
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    source, out = f"gs://{bucket.name}/raw/", f"gs://{bucket.name}/prepared"
    with pytest.raises(DefaultCredentialsError):
        validate_sources([source], "text-bison@002")

    assert validate_sources([source], "text-bison@002", storage_client=client).read == 40
    result = prepare_dataset([source], "text-bison@002", out, storage_client=client)
    written = sorted(b.name for b in bucket.list_blobs(prefix="prepared/"))
    assert written == ["prepared/eval.jsonl", "prepared/report.json", "prepared/train.jsonl"]
    assert result.counts["train"] + result.counts["eval"] == 40
    assert {method for method, _ in credentials.requests} >= {"GET", "POST"}  # reads and uploads
    assert all(url.startswith(gcs_emulator) for _, url in credentials.requests)
