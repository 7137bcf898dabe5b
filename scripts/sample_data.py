"""Publish a dataset version shipped in include/sample_data/ to a GCS bucket (the emulator, usually).

The files live in include/sample_data/gcs/<bucket>/<prefix>/raw/v=<version>/ (the layout
fake-gcs-server is seeded with); `upload_version` publishes one version under any `raw/v=<as_version>/`
prefix the way a team does (`vertex-tuning publish`: the files, then the manifest, last), so the demo
can present the sample as the dataset version of any logical date.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ROOT = REPO / "include" / "sample_data" / "gcs"
SAMPLE_BUCKET = "aria-datasets"
SAMPLE_PREFIX = "aria-text"
DEFAULT_VERSION = "2025-06-01"


@dataclass(frozen=True)
class UploadedVersion:
    uri: str  # gs://bucket/prefix/raw/v=<version>/
    objects: list[str]
    examples: int
    manifest_uri: str | None  # None: uploaded without a manifest (`manifest=False`)


def sample_versions() -> list[str]:
    """The dataset versions shipped in include/sample_data, oldest first."""
    raw = SAMPLE_ROOT / SAMPLE_BUCKET / SAMPLE_PREFIX / "raw"
    return sorted(p.name.removeprefix("v=") for p in raw.glob("v=*") if p.is_dir())


def sample_files(version: str = DEFAULT_VERSION) -> list[Path]:
    folder = SAMPLE_ROOT / SAMPLE_BUCKET / SAMPLE_PREFIX / "raw" / f"v={version}"
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))
    if not files:
        raise FileNotFoundError(f"no sample files for dataset version {version} in {folder}")
    return files


def storage_client(project: str = "aria-local"):  # -> google.cloud.storage.Client
    """A client for the emulator named by STORAGE_EMULATOR_HOST (anonymous credentials)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=project, credentials=AnonymousCredentials())


def ensure_bucket(client, name: str) -> None:
    from google.api_core.exceptions import Conflict

    try:
        client.create_bucket(name)
    except Conflict:
        pass


def upload_version(
    version: str = DEFAULT_VERSION,
    as_version: str | None = None,
    bucket: str = SAMPLE_BUCKET,
    prefix: str = SAMPLE_PREFIX,
    files: list[Path] | None = None,
    client=None,
    manifest: bool = True,
    force: bool = True,
) -> UploadedVersion:
    """Publish the sample `version` (or `files`) under gs://bucket/prefix/raw/v=<as_version>/.

    `manifest=False` uploads the files only (a version from before manifests); `force` (the default:
    the samples are ours to replace) publishes over a version that is already published.
    """
    client = client or storage_client()
    ensure_bucket(client, bucket)
    target = f"{prefix}/raw/v={as_version or version}/"
    paths = files or sample_files(version)
    examples = sum(
        1
        for path in paths
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line
    )
    if manifest:
        from aria_tuning.commands.publish import publish_version

        published = publish_version(paths, f"gs://{bucket}/{target}", storage_client=client, force=force)
        names = [f"{target}{f.name}" for f in published.manifest.files]
        return UploadedVersion(published.uri, names, examples, published.manifest_uri)
    names = []
    for path in paths:
        blob = client.bucket(bucket).blob(target + path.name)
        blob.upload_from_filename(str(path), content_type="application/jsonl")
        names.append(blob.name)
    return UploadedVersion(f"gs://{bucket}/{target}", names, examples, None)


def create_buckets(names: list[str], client=None) -> None:
    client = client or storage_client()
    for name in names:
        ensure_bucket(client, name)


def sample_signature(version: str) -> str:
    """The closing line every answer of a sample version ends with (it differs per version)."""
    import json

    first = sample_files(version)[0].read_text(encoding="utf-8").splitlines()[0]
    return str(json.loads(first)["output_text"]).splitlines()[-1]


def seed_manifest(version: str) -> str:
    """The manifest of a sample version as docker-compose's fake-gcs-server is seeded with it
    (`include/sample_data/gcs/.../v=<version>/_MANIFEST.json`): computed from the local files, with
    the crc32c GCS computes for the same bytes."""
    import base64

    import google_crc32c
    from aria_tuning.manifest import Manifest, ManifestFile

    files = [
        ManifestFile(
            path.name,
            path.stat().st_size,
            base64.b64encode(google_crc32c.Checksum(path.read_bytes()).digest()).decode(),
        )
        for path in sample_files(version)
    ]
    examples = sum(
        1 for path in sample_files(version) for line in path.read_bytes().splitlines() if line.strip()
    )
    return Manifest(tuple(files), f"{version}T00:00:00Z", examples).to_json()


def seed_manifest_path(version: str) -> Path:
    from aria_tuning.manifest import MANIFEST_NAME

    return SAMPLE_ROOT / SAMPLE_BUCKET / SAMPLE_PREFIX / "raw" / f"v={version}" / MANIFEST_NAME


if __name__ == "__main__":
    # After regenerating the samples (include/sample_data/generate.py): rewrite the seeds' manifests.
    for sample in sample_versions():
        seed_manifest_path(sample).write_text(seed_manifest(sample), encoding="utf-8")
        print(seed_manifest_path(sample))
