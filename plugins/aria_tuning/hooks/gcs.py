"""Cloud Storage through the same Airflow connection as Vertex: one client for every read and write.

Data prep, the quality gate and reports use it, so `gcp_conn_id` and `impersonation_chain` reach
GCS exactly as they reach Vertex (a bare `storage.Client()` would use the machine's default account).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from aria_tuning.errors import ConfigurationError
from aria_tuning.hooks.base import VertexHook, translated


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/path` -> (`bucket`, `path`)."""
    if not str(uri).startswith("gs://"):
        raise ConfigurationError(f"expected a gs:// URI, got {uri!r}")
    bucket, _, path = str(uri)[len("gs://") :].partition("/")
    return bucket, path


class StorageHook(VertexHook):
    """A `google.cloud.storage.Client` with the connection's credentials and project."""

    @cached_property
    def storage_client(self) -> Any:
        from google.cloud import storage  # type: ignore[attr-defined]

        # STORAGE_EMULATOR_HOST (the GCS emulator) is honoured by the client itself.
        return storage.Client(project=self.project_id, credentials=self.credentials)

    def read_text(self, uri: str) -> str:
        bucket, path = split_uri(uri)
        with translated(uri, "reading"):
            return str(self.storage_client.bucket(bucket).blob(path).download_as_text(encoding="utf-8"))

    def write_text(self, uri: str, text: str, content_type: str) -> None:
        bucket, path = split_uri(uri)
        with translated(uri, "writing"):
            self.storage_client.bucket(bucket).blob(path).upload_from_string(
                text.encode("utf-8"), content_type=content_type
            )
