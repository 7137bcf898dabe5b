"""The manifest format (pure): JSON round trip, every refused input named, and the check against a listing."""

from __future__ import annotations

import base64
import json
from typing import Any

import google_crc32c
import pytest
from aria_tuning.dataset_versions import QuietWatch
from aria_tuning.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Manifest,
    ManifestError,
    ManifestFile,
    StoredObject,
    is_crc32c,
    verify,
)

PREFIX = "aria-text/raw/v=2030-01-01/"


def crc(data: bytes) -> str:
    """GCS's form: base64 of the big-endian CRC32C."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def valid() -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "createdAt": "2030-01-01T08:00:00Z",
        "exampleCount": 2,
        "files": [
            {"name": "part-000.jsonl", "size": 5, "crc32c": crc(b"hello")},
            {"name": "sub/part-001.jsonl", "size": 0, "crc32c": crc(b"")},
        ],
    }


def test_round_trip_keeps_every_field() -> None:
    manifest = Manifest.from_json(json.dumps(valid()), "m")
    assert manifest.example_count == 2 and manifest.created_at == "2030-01-01T08:00:00Z"
    assert [f.name for f in manifest.files] == ["part-000.jsonl", "sub/part-001.jsonl"]
    assert json.loads(manifest.to_json()) == valid()
    assert Manifest.from_json(manifest.to_json(), "again") == manifest


def test_new_sorts_files_stamps_utc_and_omits_an_unknown_count() -> None:
    files = [ManifestFile("b.jsonl", 1, crc(b"b")), ManifestFile("a.jsonl", 1, crc(b"a"))]
    manifest = Manifest.new(files)
    data = json.loads(manifest.to_json())
    assert data["schemaVersion"] == SCHEMA_VERSION and "exampleCount" not in data
    assert [f["name"] for f in data["files"]] == ["a.jsonl", "b.jsonl"]
    assert data["createdAt"].endswith("Z")


def test_crc32c_is_what_gcs_reports() -> None:
    # CRC32C (Castagnoli) of "hello" is 0x9a71bb4c: base64 of those four bytes, big-endian.
    assert crc(b"") == "AAAAAA==" and crc(b"hello") == "mnG7TA=="
    assert is_crc32c("mnG7TA==") and not is_crc32c("mnG7TA") and not is_crc32c("AAAAAAAA")


def _with(**changes: Any) -> dict[str, Any]:
    data = valid()
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return data


def _file(**changes: Any) -> dict[str, Any]:
    return _with(files=[{**valid()["files"][0], **changes}])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_with(schemaVersion=2), "schemaVersion 2 is not supported: this reader knows version 1 (upgrade"),
        (_with(schemaVersion=...), "schemaVersion None is not supported"),
        (_with(createdAt="yesterday"), "createdAt must be an RFC 3339 timestamp, got 'yesterday'"),
        (_with(exampleCount=-1), "exampleCount must be a non-negative integer, got -1"),
        (_with(exampleCount=True), "exampleCount must be a non-negative integer, got True"),
        (_with(files=[]), "files must be a non-empty list"),
        (_with(exampleCnt=3), "unknown field 'exampleCnt'"),
        (_file(name="../escape.jsonl"), "files[0]: name must be a path relative to the version's prefix"),
        (_file(name="/abs.jsonl"), "files[0]: name must be a path relative"),
        (_file(name=MANIFEST_NAME), "files[0]: the manifest cannot list itself"),
        (_file(size="5"), "files[0]: size must be a non-negative integer (bytes), got '5'"),
        (_file(crc32c="deadbeef"), "files[0]: crc32c must be the base64 of 4 bytes, as GCS reports it"),
        (_file(md5="x"), "files[0]: unknown field 'md5'"),
        (_with(files=[valid()["files"][0]] * 2), "files[1]: 'part-000.jsonl' is listed twice"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_invalid_manifests_are_refused_naming_the_problem(data: Any, expected: str) -> None:
    with pytest.raises(ManifestError) as refused:
        Manifest.from_json(json.dumps(data), "gs://b/v/_MANIFEST.json")
    assert str(refused.value).startswith("gs://b/v/_MANIFEST.json: ")
    assert expected in str(refused.value)
    assert all(p.startswith("gs://b/v/_MANIFEST.json: ") for p in refused.value.problems)


def test_not_json_names_the_object() -> None:
    with pytest.raises(ManifestError, match=r"^gs://b/v/_MANIFEST.json: not valid JSON"):
        Manifest.from_json(b'{"schemaVersion": 1,', "gs://b/v/_MANIFEST.json")


def _listing(*objects: tuple[str, bytes, int]) -> dict[str, StoredObject]:
    return {PREFIX + n: StoredObject(PREFIX + n, len(d), crc(d), g) for n, d, g in objects}


def _manifest(*files: tuple[str, bytes]) -> Manifest:
    return Manifest.new(ManifestFile(n, len(d), crc(d)) for n, d in files)


def test_verify_pins_every_listed_file_to_the_generation_it_saw() -> None:
    manifest = _manifest(("a.jsonl", b"aa"), ("b.jsonl", b"bbb"))
    listing = _listing(("a.jsonl", b"aa", 11), ("b.jsonl", b"bbb", 12), (MANIFEST_NAME, b"{}", 13))
    result = verify(manifest, "bkt", PREFIX, listing)
    assert result.ok and result.unlisted == []
    assert [(v.name, v.generation, v.uri) for v in result.verified] == [
        (PREFIX + "a.jsonl", 11, f"gs://bkt/{PREFIX}a.jsonl#11"),
        (PREFIX + "b.jsonl", 12, f"gs://bkt/{PREFIX}b.jsonl#12"),
    ]


def test_verify_names_a_missing_file_with_its_checksum() -> None:
    result = verify(
        _manifest(("a.jsonl", b"aa"), ("b.jsonl", b"bbb")), "bkt", PREFIX, _listing(("a.jsonl", b"aa", 1))
    )
    assert not result.ok and len(result.problems) == 1
    assert result.problems[0].startswith(
        f"gs://bkt/{PREFIX}b.jsonl: listed in the manifest (crc32c {crc(b'bbb')}"
    )
    assert "missing in GCS (crc32c: none)" in result.problems[0]


def test_verify_gives_both_checksums_of_a_changed_file() -> None:
    listing = _listing(("a.jsonl", b"ab", 1))
    result = verify(_manifest(("a.jsonl", b"aa")), "bkt", PREFIX, listing)
    assert result.problems == [
        f"gs://bkt/{PREFIX}a.jsonl: differs from the manifest: crc32c {crc(b'ab')} in GCS, "
        f"{crc(b'aa')} in the manifest; size 2 bytes in GCS, 2 in the manifest"
    ]


def test_verify_reports_objects_the_manifest_does_not_list() -> None:
    listing = _listing(("a.jsonl", b"aa", 1), ("stray.jsonl", b"x", 2), (MANIFEST_NAME, b"{}", 3))
    result = verify(_manifest(("a.jsonl", b"aa")), "bkt", PREFIX, listing)
    assert result.ok and result.unlisted == [PREFIX + "stray.jsonl"]


def test_quiet_watch_restarts_on_any_change_and_needs_min_objects() -> None:
    watch = QuietWatch(inactivity_period=10, min_objects=2)
    one = _listing(("a.jsonl", b"aa", 1))
    two = {**one, **_listing(("b.jsonl", b"b", 2))}
    assert not watch.quiet(one, now=0) and not watch.quiet(one, now=30)  # quiet, but too few objects
    assert not watch.quiet(two, now=31) and not watch.quiet(two, now=40.9)
    assert watch.quiet(two, now=41)
    replaced = {**two, **_listing(("b.jsonl", b"b", 3))}  # same name and size, new generation
    assert not watch.quiet(replaced, now=42) and watch.quiet(replaced, now=52)
