"""Reading datasets from, and writing prepared files to, the GCS emulator (real client, real process)."""

from __future__ import annotations

import gc
import json
import uuid

import pytest
from aria_tuning.cli import main
from aria_tuning.dataprep import DatasetError, prepare_dataset, sources, validate_sources
from google.auth.credentials import AnonymousCredentials
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
    assert main(["validate", f"gs://{bucket.name}/d/"]) == 1
    assert capsys.readouterr().out.startswith(f"gs://{bucket.name}/d/bad.jsonl:12: mixed formats")


def test_a_write_that_fails_uploads_nothing(bucket: storage.Bucket) -> None:
    with pytest.raises(RuntimeError), sources.open_write(f"gs://{bucket.name}/half.jsonl") as out:
        out.write(b'{"input_text": "a", "output_text": "b"}\n')
        raise RuntimeError("disk full")
    gc.collect()
    assert bucket.get_blob("half.jsonl") is None
