"""Tuning datasets as the real pipelines read them: JSONL files in GCS (the GCS emulator here).

`read_palm` checks the `tune-large-model` format ({"input_text", "output_text"} per line) and
`read_gemini` the Gemini supervised-tuning format ({"contents": [...]} per line). Both return
the (prompt, answer) pairs the tuned model will answer from, or raise `DatasetInvalid` naming
`gs://bucket/file.jsonl:LINE` and what was wrong there.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any

#: Examples kept per tuned model (enough for answers; bounds record size).
MAX_KEPT_EXAMPLES = 5000


class DatasetInvalid(Exception):
    pass


@dataclass(frozen=True)
class Dataset:
    uri: str
    examples: list[tuple[str, str]]
    characters: int


class GcsReader:
    """Reads `gs://` objects through google-cloud-storage pointed at the GCS emulator."""

    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
        self._client: Any = None
        self._lock = threading.Lock()

    def _storage(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import storage

                if not self.endpoint:
                    raise DatasetInvalid(
                        "the emulator has no GCS endpoint: pass --gcs-endpoint or set STORAGE_EMULATOR_HOST"
                    )
                self._client = storage.Client(
                    project="vertex-emulator",
                    credentials=AnonymousCredentials(),
                    client_options={"api_endpoint": self.endpoint},
                )
            return self._client

    def write_text(self, uri: str, text: str, content_type: str = "application/jsonl") -> None:
        """Write an object, as a job writes its outputs (DatasetInvalid when GCS refuses)."""
        from google.api_core import exceptions as core_exceptions

        bucket, _, blob = uri[len("gs://") :].partition("/")
        try:
            self._storage().bucket(bucket).blob(blob).upload_from_string(text, content_type=content_type)
        except (core_exceptions.GoogleAPICallError, OSError) as exc:
            raise DatasetInvalid(f"{uri}: GCS write failed: {exc}") from exc

    def read_text(self, uri: str) -> str:
        from google.api_core import exceptions as core_exceptions

        if not uri.startswith("gs://") or "/" not in uri[len("gs://") :]:
            raise DatasetInvalid(f"{uri!r} is not a gs://bucket/object URI")
        bucket, _, blob = uri[len("gs://") :].partition("/")
        try:
            return str(self._storage().bucket(bucket).blob(blob).download_as_text())
        except core_exceptions.NotFound as exc:
            raise DatasetInvalid(f"{uri}: no such object in GCS") from exc
        except core_exceptions.GoogleAPICallError as exc:
            raise DatasetInvalid(f"{uri}: GCS read failed: {exc}") from exc
        except OSError as exc:
            raise DatasetInvalid(f"{uri}: GCS endpoint {self.endpoint} unreachable: {exc}") from exc


def _lines(uri: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetInvalid(f"{uri}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DatasetInvalid(f"{uri}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    if not rows:
        raise DatasetInvalid(f"{uri}: the dataset has no examples")
    return rows


def _text(uri: str, number: int, row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DatasetInvalid(f"{uri}:{number}: {key!r} must be a non-empty string")
    return value


def read_palm(reader: GcsReader, uri: str) -> Dataset:
    """A `tune-large-model` dataset: every line {"input_text": str, "output_text": str}."""
    examples = []
    characters = 0
    for number, row in _lines(uri, reader.read_text(uri)):
        unknown = sorted(set(row) - {"input_text", "output_text"})
        if unknown:
            raise DatasetInvalid(
                f"{uri}:{number}: unknown field(s) {unknown}; expected input_text, output_text"
            )
        prompt, answer = _text(uri, number, row, "input_text"), _text(uri, number, row, "output_text")
        characters += len(prompt) + len(answer)
        examples.append((prompt, answer))
    return Dataset(uri, examples[:MAX_KEPT_EXAMPLES], characters)


def _parts_text(uri: str, number: int, where: str, content: Any) -> str:
    if not isinstance(content, dict):
        raise DatasetInvalid(f"{uri}:{number}: {where} must be an object with 'parts'")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise DatasetInvalid(f"{uri}:{number}: {where}.parts must be a non-empty list")
    texts = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise DatasetInvalid(f"{uri}:{number}: {where}.parts[{index}] must be {{'text': str}}")
        texts.append(part["text"])
    return "".join(texts)


def read_gemini(reader: GcsReader, uri: str) -> Dataset:
    """A Gemini supervised-tuning dataset: {"systemInstruction"?, "contents": [user/model turns]}."""
    examples = []
    characters = 0
    for number, row in _lines(uri, reader.read_text(uri)):
        unknown = sorted(set(row) - {"contents", "systemInstruction", "system_instruction"})
        if unknown:
            raise DatasetInvalid(
                f"{uri}:{number}: unknown field(s) {unknown}; expected contents, systemInstruction"
            )
        contents = row.get("contents")
        if not isinstance(contents, list) or not contents:
            raise DatasetInvalid(f"{uri}:{number}: 'contents' must be a non-empty list of turns")
        turns = []
        for index, content in enumerate(contents):
            role = content.get("role") if isinstance(content, dict) else None
            if role not in ("user", "model"):
                raise DatasetInvalid(f"{uri}:{number}: contents[{index}].role must be 'user' or 'model'")
            turns.append((role, _parts_text(uri, number, f"contents[{index}]", content)))
        if turns[-1][0] != "model":
            raise DatasetInvalid(f"{uri}:{number}: the last turn must be the model's answer")
        if not any(role == "user" for role, _ in turns):
            raise DatasetInvalid(f"{uri}:{number}: no user turn")
        prompt = next(text for role, text in reversed(turns) if role == "user")
        characters += sum(len(text) for _, text in turns)
        examples.append((prompt, turns[-1][1]))
    return Dataset(uri, examples[:MAX_KEPT_EXAMPLES], characters)
