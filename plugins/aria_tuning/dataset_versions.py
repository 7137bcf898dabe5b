"""Is a dataset version in GCS complete? Its manifest checked against one listing, or the quiet-period rule.

Every call goes through the `storage_client` the caller passes (the sensor and its trigger build it
from the Airflow connection, `StorageHook`). Synchronous on purpose: the trigger runs `check` in a
thread. Google libraries are imported inside functions only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aria_tuning.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    StoredObject,
    pinned_uri,
    verify,
)

if TYPE_CHECKING:
    from google.cloud import storage

#: Only what the check reads, per listed object (the `fields` system parameter).
LIST_FIELDS = "items(name,size,crc32c,generation),nextPageToken"

WAITING, COMPLETE, FAILED = "waiting", "complete", "failed"


def version_uri(bucket: str, prefix: str) -> str:
    return f"gs://{bucket}/{prefix}"


def list_version(storage_client: storage.Client, bucket: str, prefix: str) -> dict[str, StoredObject]:
    """Every object under `prefix` (folder placeholders left out), by object name."""
    blobs = storage_client.list_blobs(bucket, prefix=prefix, fields=LIST_FIELDS)
    return {
        b.name: StoredObject(b.name, int(b.size or 0), b.crc32c, int(b.generation or 0))
        for b in blobs
        if not b.name.endswith("/")
    }


def read_manifest(storage_client: storage.Client, bucket: str, name: str, generation: int | None) -> Manifest:
    """The manifest object, at the generation the listing showed (raises ManifestError when invalid)."""
    blob = storage_client.bucket(bucket).blob(name, generation=generation)
    where = pinned_uri(bucket, name, generation) if generation else f"gs://{bucket}/{name}"
    return Manifest.from_json(blob.download_as_bytes(), where)


@dataclass
class QuietWatch:
    """The fallback for versions without a manifest: objects exist and nothing changed for a while.

    Like the provider's GCSUploadSessionCompleteSensor, but any change (an object added, removed,
    replaced or resized) restarts the period, not only a growing count.
    """

    inactivity_period: float
    min_objects: int = 1
    _seen: frozenset[tuple[str, int, int]] | None = None
    _since: float = 0.0

    def quiet(self, listing: dict[str, StoredObject], now: float) -> bool:
        """Record this listing (taken at `now`, monotonic seconds); True once the upload looks finished."""
        current = frozenset((o.name, o.generation, o.size) for o in listing.values())
        if current != self._seen:
            self._seen, self._since = current, now
        return len(current) >= self.min_objects and now - self._since >= self.inactivity_period


@dataclass
class Outcome:
    """One check's verdict: WAITING, COMPLETE (with `result`, the sensor's XCom) or FAILED."""

    status: str
    message: str = ""
    problems: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def event(self) -> dict[str, Any]:
        """As a trigger event payload (JSON-serializable)."""
        if self.status == COMPLETE:
            return {"status": "success", **self.result}
        # A version that does not match its manifest stays wrong on retry: not retryable.
        return {"status": "error", "message": self.message, "problems": self.problems, "retryable": False}


def check(
    storage_client: storage.Client,
    bucket: str,
    prefix: str,
    *,
    refuse_unlisted: bool = False,
    watch: QuietWatch | None = None,
    now: float = 0.0,
) -> Outcome:
    """One look at the version: one listing, plus one read of the manifest when it is there.

    With a manifest: COMPLETE when every listed file is in GCS with its size and crc32c, FAILED
    otherwise (and, with `refuse_unlisted`, when other objects share the prefix). Without one:
    WAITING, unless `watch` (the fallback) says the upload has been quiet long enough.
    """
    listing = list_version(storage_client, bucket, prefix)
    manifest_name = prefix + MANIFEST_NAME
    stored = listing.get(manifest_name)
    if stored is not None:
        from google.api_core.exceptions import NotFound

        try:
            manifest = read_manifest(storage_client, bucket, manifest_name, stored.generation)
        except ManifestError as exc:
            return Outcome(FAILED, str(exc), exc.problems)
        except NotFound:
            return Outcome(WAITING)  # deleted since the listing: a `publish --force` is replacing it
        return decide(manifest, stored, bucket, prefix, listing, refuse_unlisted)
    if watch is not None and watch.quiet(listing, now):
        objects = [
            {**asdict(o), "uri": pinned_uri(bucket, o.name, o.generation)}
            for o in sorted(listing.values(), key=lambda o: o.name)
        ]
        return Outcome(COMPLETE, result=_result(bucket, prefix, "inactivity", objects, [], None))
    return Outcome(WAITING)


def decide(
    manifest: Manifest,
    stored: StoredObject,
    bucket: str,
    prefix: str,
    listing: dict[str, StoredObject],
    refuse_unlisted: bool,
) -> Outcome:
    """The verdict on a version whose manifest was read (pure: no GCS call)."""
    where = version_uri(bucket, prefix)
    verification = verify(manifest, bucket, prefix, listing)
    if not verification.ok:
        n = len(verification.problems)
        return Outcome(
            FAILED,
            f"{where}: the manifest does not match GCS ({n} file{'s' * (n != 1)}): "
            + "; ".join(verification.problems),
            verification.problems,
        )
    unlisted = [f"gs://{bucket}/{name}" for name in verification.unlisted]
    if unlisted and refuse_unlisted:
        return Outcome(
            FAILED,
            f"{where}: {len(unlisted)} object(s) not listed in the manifest (refuse_unlisted is set): "
            + ", ".join(unlisted),
            [f"{uri}: not listed in the manifest" for uri in unlisted],
        )
    objects = [v.to_dict() for v in verification.verified]
    about = {
        "uri": pinned_uri(bucket, stored.name, stored.generation),
        "created_at": manifest.created_at,
        "example_count": manifest.example_count,
    }
    return Outcome(COMPLETE, result=_result(bucket, prefix, "manifest", objects, unlisted, about))


def _result(
    bucket: str,
    prefix: str,
    mode: str,
    objects: list[dict[str, Any]],
    unlisted: list[str],
    manifest: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "uri": version_uri(bucket, prefix),
        "bucket": bucket,
        "prefix": prefix,
        "mode": mode,
        "manifest": manifest,
        "objects": objects,
        "unlisted": unlisted,
    }
