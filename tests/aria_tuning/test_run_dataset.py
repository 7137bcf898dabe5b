"""Which version a run trains on; a manual run without dataset_uri takes the newest complete version."""

from __future__ import annotations

import uuid

import pytest
from aria_tuning.newest_version import Search, is_complete, newest_complete_version
from aria_tuning.run_dataset import (
    BY_LOGICAL_DATE,
    BY_NEWEST,
    BY_OWN_COMPLETE,
    BY_URI,
    NoCompleteVersion,
    resolve_run_dataset,
)

BUCKET = "aria-datasets"


def resolve(search: Search | None = None, own_complete: bool = False, **overrides: object) -> dict[str, str]:
    def newest(bucket: str, raw: str) -> Search:
        assert search is not None, "looked for the newest version when it should not have"
        return search

    arguments: dict[str, object] = {
        "dataset_uri": None,
        "run_type": "manual",
        "ds": "2026-12-01",
        "bucket": BUCKET,
        "dataset_prefix": "aria-text",
        "model": "gemini-3.5-flash",
        "newest": newest,
        "is_complete": lambda bucket, prefix: own_complete,
        **overrides,
    }
    return resolve_run_dataset(**arguments)  # type: ignore[arg-type]


def test_a_manual_run_without_a_uri_trains_the_newest_complete_version_not_todays() -> None:
    chosen = resolve(Search(BUCKET, "aria-text/raw/", newest="aria-text/raw/v=2025-06-15/"))
    assert (
        chosen["uri"] == "gs://aria-datasets/aria-text/raw/v=2025-06-15/"
        and chosen["version"] == "v=2025-06-15"
    )
    assert chosen["chosen_by"] == BY_NEWEST
    assert chosen["prepared_uri"] == "gs://aria-datasets/aria-text/prepared/v=2025-06-15/gemini-3.5-flash/"


def test_a_manual_run_dated_on_a_complete_version_trains_that_one() -> None:
    chosen = resolve(own_complete=True, ds="2025-06-01")
    assert (
        chosen["uri"] == "gs://aria-datasets/aria-text/raw/v=2025-06-01/"
        and chosen["chosen_by"] == BY_OWN_COMPLETE
    )


@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_scheduled_runs_and_backfills_keep_their_own_version(run_type: str) -> None:
    chosen = resolve(run_type=run_type, ds="2025-06-08")
    assert (
        chosen["uri"] == "gs://aria-datasets/aria-text/raw/v=2025-06-08/"
        and chosen["chosen_by"] == BY_LOGICAL_DATE
    )


def test_a_dataset_uri_wins_for_every_run_type() -> None:
    chosen = resolve(dataset_uri="gs://other-bucket/some/folder", run_type="scheduled")
    assert (chosen["uri"], chosen["bucket"], chosen["prefix"]) == (
        "gs://other-bucket/some/folder/",
        "other-bucket",
        "some/folder/",
    )
    assert chosen["version"] == "folder" and chosen["chosen_by"] == BY_URI


def test_no_complete_version_fails_naming_where_it_looked_and_how_to_publish() -> None:
    search = Search(BUCKET, "aria-text/raw/", passed_over=["v=2026-12-01: no _MANIFEST.json yet"])
    with pytest.raises(NoCompleteVersion) as failed:
        resolve(search)
    message = str(failed.value)
    assert "no complete dataset version under gs://aria-datasets/aria-text/raw/" in message
    assert "v=2026-12-01: no _MANIFEST.json yet" in message
    assert "vertex-tuning publish FILE... gs://aria-datasets/aria-text/raw/v=YYYY-MM-DD/" in message


def test_the_newest_published_version_is_found_in_gcs_and_unpublished_newer_ones_are_passed_over(
    gcs_emulator: str,
) -> None:
    from scripts.sample_data import storage_client, upload_version

    prefix = f"newest-{uuid.uuid4().hex[:8]}"
    client = storage_client()
    for version in ("2025-06-01", "2025-06-08"):
        upload_version(version, prefix=prefix, client=client)
    upload_version("2025-06-15", prefix=prefix, client=client, manifest=False)  # still uploading
    assert is_complete(client, "aria-datasets", f"{prefix}/raw/v=2025-06-01/")
    assert not is_complete(client, "aria-datasets", f"{prefix}/raw/v=2025-06-15/")

    search = newest_complete_version(client, "aria-datasets", f"{prefix}/raw")
    assert search.newest == f"{prefix}/raw/v=2025-06-08/"
    assert search.passed_over == ["v=2025-06-15: no _MANIFEST.json yet"]

    empty = newest_complete_version(client, "aria-datasets", f"{prefix}-nothing/raw/")
    assert empty.newest is None and "(no v=*/ folder at all)" in empty.explain_none()
