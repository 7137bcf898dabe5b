"""Which dataset version a run trains on: the `dataset_uri` param, the run's own `raw/v=<logical date>/`,
or, for a manual run without a URI whose own version is not complete, the newest complete version.

A manual run's logical date is, by default, when someone pressed Trigger, not a dataset version: waiting
for `raw/v=<today>/` held the DAG's only run slot for the sensor's 12 hours. So a manual run takes its own
version only when that is already complete (its manifest verifies: someone chose that date), and the
newest complete version otherwise; with none, it fails at once. Scheduled runs and backfills keep waiting
for their own version. Pure: the GCS look-ups come in as `is_complete` and `newest`.
"""

from __future__ import annotations

from collections.abc import Callable

from aria_tuning.errors import DatasetError
from aria_tuning.newest_version import Search

#: `dag_run.run_type` of a run someone triggered (the UI form, the REST API, `airflow dags trigger`).
MANUAL = "manual"

BY_URI = "the dataset_uri param"
BY_LOGICAL_DATE = "the run's logical date"
BY_OWN_COMPLETE = "the run's logical date (a manual run whose own version is complete)"
BY_NEWEST = "the newest complete version (a manual run without dataset_uri whose own version is not)"


class NoCompleteVersion(DatasetError):
    """A manual run without dataset_uri found no published version: nothing to wait for."""


def resolve_run_dataset(
    *,
    dataset_uri: str | None,
    run_type: str,
    ds: str | None,
    bucket: str,
    dataset_prefix: str,
    model: str,
    newest: Callable[[str, str], Search],
    is_complete: Callable[[str, str], bool],
) -> dict[str, str]:
    """`{uri, bucket, prefix, version, prepared_uri, chosen_by}` of the version this run trains on.

    Raises NoCompleteVersion (a manual run, no URI, nothing published) naming where it looked.
    """
    raw = f"{dataset_prefix}/raw/"
    own = f"{raw}v={ds}/" if ds else None
    if dataset_uri:
        uri, chosen_by = dataset_uri, BY_URI
    elif run_type == MANUAL and own and is_complete(bucket, own):
        uri, chosen_by = f"gs://{bucket}/{own}", BY_OWN_COMPLETE
    elif run_type == MANUAL or not own:
        search = newest(bucket, raw)
        if search.newest is None:
            raise NoCompleteVersion(search.explain_none())
        uri, chosen_by = f"gs://{bucket}/{search.newest}", BY_NEWEST
    else:
        uri, chosen_by = f"gs://{bucket}/{own}", BY_LOGICAL_DATE
    uri = uri if uri.endswith("/") else uri + "/"
    source_bucket, _, source_prefix = uri.removeprefix("gs://").partition("/")
    version = source_prefix.rstrip("/").rsplit("/", 1)[-1] or source_bucket
    return {
        "uri": uri,
        "bucket": source_bucket,
        "prefix": source_prefix,
        "version": version,
        "prepared_uri": f"gs://{bucket}/{dataset_prefix}/prepared/{version}/{model}/",
        "chosen_by": chosen_by,
    }
