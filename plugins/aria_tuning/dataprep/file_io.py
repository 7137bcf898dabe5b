"""Dataset files in and out, local paths or `gs://` URIs: list, stream, write, publish.

Every GCS call goes through the `storage_client` the caller passes (the Airflow task builds it
from its connection). Without one, a client for the environment is built on first GCS use only
(Application Default Credentials; with STORAGE_EMULATOR_HOST set, that emulator with anonymous
credentials), so the CLI works as is and local-only runs never need credentials.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from aria_tuning.errors import ConfigurationError, DatasetError

if TYPE_CHECKING:
    from google.cloud import storage

GCS_SCHEME = "gs://"
#: Buffer of local writes (the prepared files and the split's temp files).
WRITE_BUFFER_SIZE = 1 << 20
#: GCS range-request size: fewer, larger requests than the parse blocks.
GCS_CHUNK_SIZE = 8 << 20


def is_gcs(uri: str) -> bool:
    return uri.startswith(GCS_SCHEME)


def split_generation(uri: str) -> tuple[str, int | None]:
    """`gs://b/o#123` -> ("gs://b/o", 123): one generation of an object (gsutil's notation).

    Only an all-digit fragment is a generation: `#` is otherwise a legal character of object names.
    """
    base, hash_sign, fragment = uri.rpartition("#")
    if is_gcs(uri) and hash_sign and fragment.isdigit():
        return base, int(fragment)
    return uri, None


def split_gcs(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/name` -> ("bucket", "some/name")."""
    bucket, _, name = uri[len(GCS_SCHEME) :].partition("/")
    if not bucket:
        raise ConfigurationError(f"{uri!r} is not a gs://bucket/... URI")
    return bucket, name


def join(prefix: str, name: str) -> str:
    """`name` under a local directory or a gs:// prefix."""
    if is_gcs(prefix):
        return prefix.rstrip("/") + "/" + name
    return str(Path(prefix) / name)


@lru_cache(maxsize=4)
def _environment_client(emulator_host: str | None, project: str | None) -> storage.Client:
    from google.cloud import storage

    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=project or "aria-local", credentials=AnonymousCredentials())
    return storage.Client(project=project)


def default_storage_client() -> storage.Client:
    """The client used when the caller passes none (emulator when STORAGE_EMULATOR_HOST is set)."""
    return _environment_client(
        os.environ.get("STORAGE_EMULATOR_HOST"), os.environ.get("GOOGLE_CLOUD_PROJECT")
    )


def _client(storage_client: storage.Client | None) -> storage.Client:
    return storage_client if storage_client is not None else default_storage_client()


def expand(uris: list[str], storage_client: storage.Client | None = None) -> list[str]:
    """Every file the sources name: files as given, directories and gs:// prefixes expanded.

    A gs:// URI naming an existing object is that object; otherwise (or when it ends with "/")
    it is a prefix and stands for every object under it, in name order.
    """
    files: list[str] = []
    for uri in uris:
        found = _expand_gcs(uri, storage_client) if is_gcs(uri) else _expand_local(uri)
        if not found:
            raise DatasetError(f"{uri}: no dataset files found", [f"{uri}: no dataset files found"])
        files.extend(found)
    return files


def _expand_local(path: str) -> list[str]:
    root = Path(path)
    if root.is_file():
        return [path]
    if root.is_dir():
        return [
            str(p)
            for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        ]
    return []


def _expand_gcs(uri: str, storage_client: storage.Client | None) -> list[str]:
    if split_generation(uri)[1] is not None:
        return [uri]  # one object at one generation (checked when it is opened)
    bucket_name, name = split_gcs(uri)
    client = _client(storage_client)
    if name and not name.endswith("/") and client.bucket(bucket_name).get_blob(name) is not None:
        return [uri]
    blobs = client.list_blobs(bucket_name, prefix=name)
    return sorted(f"{GCS_SCHEME}{bucket_name}/{b.name}" for b in blobs if not b.name.endswith("/"))


def open_read(uri: str, storage_client: storage.Client | None = None) -> BinaryIO:
    """A binary stream over a local file or a GCS object (fetched in GCS_CHUNK_SIZE ranges).

    `gs://b/o#123` reads generation 123 of the object and nothing else: a file replaced since that
    generation was checked fails here instead of being mixed in.
    """
    if is_gcs(uri):
        return _blob(uri, storage_client).open("rb", chunk_size=GCS_CHUNK_SIZE)  # type: ignore[return-value]
    return open(uri, "rb", buffering=0)


@contextmanager
def open_write(uri: str, storage_client: storage.Client | None = None) -> Iterator[BinaryIO]:
    """A binary writer that publishes `uri` only when the block exits without an error.

    Local: written to a sibling temporary file, renamed into place. GCS: spooled locally (in
    memory up to a few MiB), uploaded once complete; on error nothing is uploaded at all (a
    streaming upload could be finalized half-written when its writer is garbage-collected).
    """
    if is_gcs(uri):
        with tempfile.SpooledTemporaryFile(max_size=GCS_CHUNK_SIZE) as spool:
            yield spool  # type: ignore[misc]
            spool.seek(0)
            _blob(uri, storage_client).upload_from_file(spool)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb", buffering=WRITE_BUFFER_SIZE) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish_file(local_path: str, uri: str, storage_client: storage.Client | None = None) -> None:
    """Move a finished local file to `uri` (rename when local, one upload when gs://)."""
    if is_gcs(uri):
        _blob(uri, storage_client).upload_from_filename(local_path)
        return
    os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
    shutil.move(local_path, uri)


def _blob(uri: str, storage_client: storage.Client | None) -> storage.Blob:
    base, generation = split_generation(uri)
    bucket_name, name = split_gcs(base)
    bucket = _client(storage_client).bucket(bucket_name)
    if generation is None:
        return bucket.blob(name)
    found = bucket.get_blob(name, generation=generation)
    # GCS answers 404 for a generation that is gone; a server that ignores the pin (the local GCS
    # emulator) answers with the live generation instead, which the comparison catches.
    if found is None or found.generation != generation:
        now = "no longer exists" if found is None else f"was replaced by generation {found.generation}"
        problem = f"{base}: generation {generation} {now}: the file changed after it was checked"
        raise DatasetError(problem, [problem])
    return bucket.blob(name, generation=generation)
