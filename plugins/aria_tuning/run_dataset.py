"""Which dataset version a run trains on: the `dataset_uri` param, the run's own `raw/v=<logical date>/`,
or, for a manual run without a URI, the newest complete version (its manifest verifies).

A manual run's logical date is when someone pressed Trigger, not a dataset version: waiting for
`raw/v=<today>/` held the DAG's only run slot for the sensor's 12 hours. Scheduled runs and backfills
keep waiting for their own version. Pure: the GCS search comes in as `newest`.
"""

from __future__ import annotations

from collections.abc import Callable

from aria_tuning.errors import DatasetError
from aria_tuning.newest_version import Search

#: `dag_run.run_type` of a run someone triggered (the UI form, the REST API, `airflow dags trigger`).
MANUAL = "manual"

BY_URI = "the dataset_uri param"
BY_LOGICAL_DATE = "the run's logical date"
BY_NEWEST = "the newest complete version (a manual run without dataset_uri)"


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
) -> dict[str, str]:
    """`{uri, bucket, prefix, version, prepared_uri, chosen_by}` of the version this run trains on.

    Raises NoCompleteVersion (a manual run, no URI, nothing published) naming where it looked.
    """
    raw = f"{dataset_prefix}/raw/"
    if dataset_uri:
        uri, chosen_by = dataset_uri, BY_URI
    elif run_type == MANUAL or not ds:
        search = newest(bucket, raw)
        if search.newest is None:
            raise NoCompleteVersion(search.explain_none())
        uri, chosen_by = f"gs://{bucket}/{search.newest}", BY_NEWEST
    else:
        uri, chosen_by = f"gs://{bucket}/{raw}v={ds}/", BY_LOGICAL_DATE
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
