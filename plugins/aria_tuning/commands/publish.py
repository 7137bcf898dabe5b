"""`vertex-tuning publish PATH... gs://BUCKET/PREFIX/raw/v=DATE/ [--force]`: the files, then the manifest.

The files go up in parallel (resumable in `--chunk-mib` chunks above 8 MiB); the manifest is written
last, from the sizes and crc32c values GCS reports for the uploaded objects, so a sensor that sees
it sees a complete version. A version whose manifest exists is not overwritten without `--force`.
With STORAGE_EMULATOR_HOST set, everything goes to that emulator.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aria_tuning.errors import AriaTuningError, ConfigurationError
from aria_tuning.manifest import MANIFEST_NAME, Manifest, ManifestFile

if TYPE_CHECKING:
    from google.cloud import storage

#: Parallel uploads: a few streams fill a link; more only add memory (one chunk buffer each).
DEFAULT_WORKERS = 4
#: Resumable-upload chunk: a failed request re-sends at most this much. A multiple of 256 KiB (GCS).
DEFAULT_CHUNK_MIB = 16

#: Called after each upload with (object name, bytes, files done, files in all).
Progress = Callable[[str, int, int, int], None]


class AlreadyPublished(AriaTuningError):
    """The version's manifest exists: it is published, and publishing over it needs `force`."""


class PublishError(AriaTuningError):
    """A file could not be uploaded; no manifest was written, so the version stays unpublished."""


@dataclass(frozen=True)
class PublishedVersion:
    uri: str  # gs://bucket/prefix/
    manifest_uri: str
    manifest: Manifest

    @property
    def objects(self) -> list[str]:
        return [self.uri + f.name for f in self.manifest.files]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="PATH", help="local files or directories to upload")
    parser.add_argument("destination", metavar="gs://BUCKET/PREFIX/", help="the version's prefix")
    parser.add_argument("--force", action="store_true", help="replace a version that is already published")
    parser.add_argument(
        "--example-count", type=int, help="examples in the version (default: non-blank lines of .jsonl files)"
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="parallel uploads (%(default)s)")
    parser.add_argument(
        "--chunk-mib", type=int, default=DEFAULT_CHUNK_MIB, help="resumable-upload chunk, MiB (%(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        published = publish_version(
            args.sources,
            args.destination,
            force=args.force,
            example_count=args.example_count,
            workers=args.workers,
            chunk_size=args.chunk_mib << 20,
            progress=console_progress(),
        )
    except AriaTuningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    manifest = published.manifest
    total = sum(f.size for f in manifest.files)
    count = "" if manifest.example_count is None else f", {manifest.example_count:,} examples"
    print(f"published {published.uri}: {len(manifest.files)} files, {total:,} bytes{count}")
    print(f"manifest {published.manifest_uri}")
    return 0


def console_progress() -> Progress:
    """A tqdm bar on a terminal (when tqdm is installed), else one stderr line per uploaded file."""
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            bar: Any = None

            def advance(name: str, size: int, done: int, total: int) -> None:
                nonlocal bar
                if bar is None:
                    bar = tqdm(total=total, unit="file", desc="uploading", file=sys.stderr)
                bar.set_postfix_str(name, refresh=False)
                bar.update(1)
                if done == total:
                    bar.close()

            return advance

    def line(name: str, size: int, done: int, total: int) -> None:
        print(f"[{done}/{total}] uploaded {name} ({size:,} bytes)", file=sys.stderr)

    return line


def local_files(sources: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(path, name under the version) for every file: a file as its own name, a directory's files by
    their path inside it (hidden files and a local manifest left out)."""
    found: list[tuple[Path, str]] = []
    for source in map(Path, sources):
        if source.is_file():
            found.append((source, source.name))
        elif source.is_dir():
            for path in sorted(source.rglob("*")):
                relative = path.relative_to(source)
                if path.is_file() and not any(p.startswith(".") for p in relative.parts):
                    found.append((path, relative.as_posix()))
        else:
            raise ConfigurationError(f"{source}: no such file or directory")
    found = [(path, name) for path, name in found if name != MANIFEST_NAME]
    names = [name for _, name in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"two sources would be uploaded as the same object: {', '.join(duplicates)}")
    if not found:
        raise ConfigurationError(f"nothing to publish in {', '.join(map(str, sources))}")
    return found


def publish_version(
    sources: Sequence[str | Path],
    destination: str,
    *,
    storage_client: storage.Client | None = None,
    force: bool = False,
    example_count: int | None = None,
    workers: int = DEFAULT_WORKERS,
    chunk_size: int = DEFAULT_CHUNK_MIB << 20,
    progress: Progress | None = None,
) -> PublishedVersion:
    """Upload `sources` under `destination` (gs://bucket/prefix/), then write the manifest, last."""
    from aria_tuning.dataprep import file_io

    if not file_io.is_gcs(destination):
        raise ConfigurationError(f"the destination must be a gs://bucket/prefix/, got {destination!r}")
    destination = destination if destination.endswith("/") else destination + "/"
    bucket_name, prefix = file_io.split_gcs(destination)
    files = local_files(sources)
    client = storage_client or file_io.default_storage_client()
    bucket = client.bucket(bucket_name)
    manifest_name = prefix + MANIFEST_NAME
    _make_room(bucket, destination, manifest_name, force)

    done, lock = 0, threading.Lock()

    def upload(item: tuple[Path, str]) -> ManifestFile:
        nonlocal done
        path, name = item
        blob = bucket.blob(prefix + name, chunk_size=chunk_size)
        content_type = "application/jsonl" if name.endswith(".jsonl") else mimetypes.guess_type(name)[0]
        try:
            blob.upload_from_filename(str(path), content_type=content_type)
        except Exception as exc:  # any failure leaves the version unpublished: say which file
            raise PublishError(f"uploading {path} to {destination}{name} failed: {exc}") from exc
        if blob.crc32c is None:  # the upload's reply normally carries the object's metadata
            blob.reload()
        if blob.size != path.stat().st_size:
            raise PublishError(
                f"{destination}{name}: GCS holds {blob.size} bytes, the local file {path} has "
                f"{path.stat().st_size}: was it modified during the upload?"
            )
        with lock:
            done += 1
            if progress is not None:
                progress(name, int(blob.size), done, len(files))
        return ManifestFile(name, int(blob.size), str(blob.crc32c))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish") as pool:
        uploaded = list(pool.map(upload, files))
    if example_count is None and all(name.endswith(".jsonl") for _, name in files):
        example_count = sum(_count_lines(path) for path, _ in files)
    manifest = Manifest.new(uploaded, example_count)
    manifest_blob = bucket.blob(manifest_name)
    try:
        # if_generation_match=0: only if no manifest appeared meanwhile (another publisher).
        manifest_blob.upload_from_string(
            manifest.to_json(), content_type="application/json", if_generation_match=0
        )
    except Exception as exc:
        raise PublishError(f"writing the manifest {destination}{MANIFEST_NAME} failed: {exc}") from exc
    return PublishedVersion(destination, f"{destination}{MANIFEST_NAME}", manifest)


def _make_room(bucket: Any, destination: str, manifest_name: str, force: bool) -> None:
    """Refuse a published version unless `force`; with it, unpublish first (delete the manifest), so
    that no sensor verifies a version while its files are being replaced."""
    existing = bucket.get_blob(manifest_name)
    if existing is None:
        return
    if not force:
        when = f"{existing.updated:%Y-%m-%d %H:%M:%S} UTC" if existing.updated else "earlier"
        raise AlreadyPublished(
            f"{destination} is already published (manifest {MANIFEST_NAME}, generation "
            f"{existing.generation}, written {when}): publish it under a new version, or pass "
            "--force to replace it"
        )
    existing.delete(if_generation_match=existing.generation)


def _count_lines(path: Path) -> int:
    """Non-blank lines: what data prep counts as read examples in a JSONL file."""
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())
