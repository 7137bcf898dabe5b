"""The publish manifest of a dataset version: its schema, JSON in and out, and its check against GCS.

A version (`gs://bucket/.../raw/v=DATE/`) is complete once `_MANIFEST.json` exists under its prefix,
written after every file it lists. Pure: no Airflow, no Google import; the GCS side is
`aria_tuning.dataset_versions`.

    {"schemaVersion": 1,
     "createdAt": "2025-06-01T08:00:00Z",
     "exampleCount": 300,                                   # optional
     "files": [{"name": "train-000.jsonl", "size": 51234, "crc32c": "yZRlqg=="}]}

`name` is relative to the version's prefix (so a version can be copied elsewhere unchanged); `size`
is in bytes; `crc32c` is what GCS reports in the object's metadata: the base64 of the big-endian
CRC32C of its bytes (https://cloud.google.com/storage/docs/json_api/v1/objects#resource, `crc32c`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from aria_tuning.errors import DatasetError

#: The manifest's object name under the version's prefix. Leading "_" keeps it out of the way of
#: data files in listings and in tools that skip "_" files (Hadoop's `_SUCCESS` convention).
MANIFEST_NAME = "_MANIFEST.json"
#: The schema this code writes and the only one it reads; a reader meeting a newer one refuses it.
SCHEMA_VERSION = 1

_TOP_LEVEL = {"schemaVersion", "createdAt", "exampleCount", "files"}
_FILE_KEYS = {"name", "size", "crc32c"}


class ManifestError(DatasetError):
    """A manifest that cannot be read or does not describe what GCS holds; `problems` lists each issue."""


@dataclass(frozen=True)
class ManifestFile:
    """One data file of the version: its name under the prefix, its size and GCS's crc32c."""

    name: str
    size: int
    crc32c: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "crc32c": self.crc32c}


@dataclass(frozen=True)
class Manifest:
    """What a published dataset version holds (schema version `SCHEMA_VERSION`)."""

    files: tuple[ManifestFile, ...]
    created_at: str
    example_count: int | None = None

    @classmethod
    def new(cls, files: Iterable[ManifestFile], example_count: int | None = None) -> Manifest:
        """A manifest created now, its files in name order."""
        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        manifest = cls(tuple(sorted(files, key=lambda f: f.name)), created, example_count)
        problems = _file_problems([f.to_dict() for f in manifest.files])
        if problems:
            raise ManifestError(f"cannot write this manifest: {problems[0]}", problems)
        return manifest

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "createdAt": self.created_at}
        if self.example_count is not None:
            out["exampleCount"] = self.example_count
        out["files"] = [f.to_dict() for f in self.files]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> Manifest:
        """Parse and validate a manifest; raises ManifestError naming `where` and every problem."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(
                f"{where}: not valid JSON: {exc}", [f"{where}: not valid JSON: {exc}"]
            ) from exc
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: object, where: str) -> Manifest:
        if not isinstance(data, dict):
            raise _invalid(where, [f"expected a JSON object, got {type(data).__name__}"])
        version = data.get("schemaVersion")
        if version != SCHEMA_VERSION:
            detail = (
                f"schemaVersion {version!r} is not supported: this reader knows version {SCHEMA_VERSION}"
                + (
                    " (upgrade aria_tuning to read newer manifests)"
                    if _is_int(version) and version > 1
                    else ""
                )
            )
            raise _invalid(where, [detail])
        problems = [f"unknown field {key!r}" for key in sorted(set(data) - _TOP_LEVEL)]
        created = data.get("createdAt")
        if not isinstance(created, str) or not _is_timestamp(created):
            problems.append(f"createdAt must be an RFC 3339 timestamp, got {created!r}")
        count = data.get("exampleCount")
        if count is not None and not (_is_int(count) and count >= 0):
            problems.append(f"exampleCount must be a non-negative integer, got {count!r}")
        files = data.get("files")
        if not isinstance(files, list) or not files:
            problems.append("files must be a non-empty list")
            files = []
        problems += _file_problems(files)
        if problems:
            raise _invalid(where, problems)
        return cls(
            files=tuple(ManifestFile(f["name"], f["size"], f["crc32c"]) for f in files),
            created_at=str(created),
            example_count=count,
        )


def _invalid(where: str, problems: list[str]) -> ManifestError:
    listed = [f"{where}: {p}" for p in problems]
    return ManifestError(f"{where}: invalid manifest: {'; '.join(problems)}", listed)


def _file_problems(files: list[Any]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, entry in enumerate(files):
        at = f"files[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{at} must be an object with name, size and crc32c")
            continue
        problems += [f"{at}: unknown field {key!r}" for key in sorted(set(entry) - _FILE_KEYS)]
        name, size, crc = entry.get("name"), entry.get("size"), entry.get("crc32c")
        if not isinstance(name, str) or not _is_relative_name(name):
            problems.append(f"{at}: name must be a path relative to the version's prefix, got {name!r}")
        elif name == MANIFEST_NAME:
            problems.append(f"{at}: the manifest cannot list itself")
        elif name in seen:
            problems.append(f"{at}: {name!r} is listed twice")
        else:
            seen.add(name)
        if not (_is_int(size) and size >= 0):
            problems.append(f"{at}: size must be a non-negative integer (bytes), got {size!r}")
        if not (isinstance(crc, str) and is_crc32c(crc)):
            problems.append(f"{at}: crc32c must be the base64 of 4 bytes, as GCS reports it, got {crc!r}")
    return problems


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_timestamp(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_relative_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def is_crc32c(text: str) -> bool:
    """True for GCS's form of a CRC32C: base64 (standard alphabet, padded) of exactly 4 bytes."""
    try:
        return len(base64.b64decode(text, validate=True)) == 4
    except (binascii.Error, ValueError):
        return False


@dataclass(frozen=True)
class StoredObject:
    """An object as a GCS listing reports it (full object name)."""

    name: str
    size: int
    crc32c: str | None
    generation: int


@dataclass(frozen=True)
class VerifiedObject:
    """A listed file found in GCS as the manifest describes it, pinned to the generation checked."""

    name: str
    generation: int
    size: int
    crc32c: str
    uri: str  # gs://bucket/name#generation: what data prep reads

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generation": self.generation,
            "size": self.size,
            "crc32c": self.crc32c,
            "uri": self.uri,
        }


@dataclass
class Verification:
    """The manifest against one listing: the files as verified, what is wrong, what it does not list."""

    verified: list[VerifiedObject] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def pinned_uri(bucket: str, name: str, generation: int) -> str:
    """`gs://bucket/name#generation`: one generation of an object (gsutil's notation)."""
    return f"gs://{bucket}/{name}#{generation}"


def verify(manifest: Manifest, bucket: str, prefix: str, listing: Mapping[str, StoredObject]) -> Verification:
    """Check every file the manifest lists against `listing` (object name -> what GCS reports).

    A listed file missing, or with another size or crc32c, is a problem naming the object and both
    values; objects under `prefix` that the manifest does not list (nor the manifest itself) are
    `unlisted`.
    """
    result = Verification()
    listed = set()
    for entry in manifest.files:
        name = prefix + entry.name
        listed.add(name)
        where = f"gs://{bucket}/{name}"
        found = listing.get(name)
        if found is None:
            result.problems.append(
                f"{where}: listed in the manifest (crc32c {entry.crc32c}, {entry.size} bytes) but missing "
                "in GCS (crc32c: none): was the manifest written before its files?"
            )
            continue
        if found.crc32c != entry.crc32c or found.size != entry.size:
            result.problems.append(
                f"{where}: differs from the manifest: crc32c {found.crc32c or 'none'} in GCS, "
                f"{entry.crc32c} in the manifest; size {found.size} bytes in GCS, "
                f"{entry.size} in the manifest"
            )
            continue
        result.verified.append(
            VerifiedObject(
                name, found.generation, found.size, entry.crc32c, pinned_uri(bucket, name, found.generation)
            )
        )
    manifest_name = prefix + MANIFEST_NAME
    result.unlisted = sorted(n for n in listing if n not in listed and n != manifest_name)
    return result
