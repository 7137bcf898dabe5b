"""The newest complete dataset version under a `raw/` prefix: the one a manual run without a URI trains on.

Versions are the `v=YYYY-MM-DD/` folders under `raw/`; newest is the greatest name (ISO dates sort as
text). Complete means published: its manifest verifies against GCS (`aria_tuning.dataset_versions`), so a
version still uploading, or one whose files differ from its manifest, is passed over for an older one.
Synchronous, through the caller's `storage_client`; Google libraries are imported by what it calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aria_tuning.dataset_versions import COMPLETE, check
from aria_tuning.manifest import MANIFEST_NAME

if TYPE_CHECKING:
    from google.cloud import storage

VERSION_FOLDER = "v="


@dataclass
class Search:
    """What the search looked at: the versions newest first, and why each newer one was passed over."""

    bucket: str
    raw_prefix: str
    newest: str | None = None  # the chosen version's prefix, e.g. "aria-text/raw/v=2025-06-15/"
    passed_over: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"gs://{self.bucket}/{self.raw_prefix}"

    def explain_none(self) -> str:
        """Why no version was chosen: where it looked, what it found, and how to publish one."""
        found = f" ({'; '.join(self.passed_over)})" if self.passed_over else " (no v=*/ folder at all)"
        return (
            f"no complete dataset version under {self.where}: looked for {VERSION_FOLDER}YYYY-MM-DD/ "
            f"folders whose {MANIFEST_NAME} matches their files{found}. Publish one with "
            f"`vertex-tuning publish FILE... {self.where}{VERSION_FOLDER}YYYY-MM-DD/` (the files, then "
            "the manifest), or trigger with dataset_uri set to a folder of raw files"
        )


def version_folders(storage_client: storage.Client, bucket: str, raw_prefix: str) -> list[str]:
    """The `v=*/` folder prefixes directly under `raw_prefix`, newest first."""
    pages = storage_client.list_blobs(
        bucket, prefix=raw_prefix, delimiter="/", fields="prefixes,nextPageToken"
    )
    prefixes: set[str] = set()
    for page in pages.pages:
        prefixes.update(page.prefixes)
    names = [p for p in prefixes if p[len(raw_prefix) :].startswith(VERSION_FOLDER)]
    return sorted(names, reverse=True)


def is_complete(storage_client: storage.Client, bucket: str, prefix: str) -> bool:
    """Whether the version at `prefix` is published: its manifest verifies against GCS."""
    return check(storage_client, bucket, prefix).status == COMPLETE


def newest_complete_version(storage_client: storage.Client, bucket: str, raw_prefix: str) -> Search:
    """Search `gs://bucket/raw_prefix` newest first for a version whose manifest verifies."""
    raw_prefix = raw_prefix if raw_prefix.endswith("/") else raw_prefix + "/"
    search = Search(bucket, raw_prefix)
    for prefix in version_folders(storage_client, bucket, raw_prefix):
        outcome = check(storage_client, bucket, prefix)
        if outcome.status == COMPLETE:  # one listing and one manifest read per version looked at
            search.newest = prefix
            return search
        name = prefix[len(raw_prefix) :].rstrip("/")
        search.passed_over.append(f"{name}: {outcome.message or 'no ' + MANIFEST_NAME + ' yet'}")
    return search
