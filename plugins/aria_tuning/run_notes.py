"""Each run of the tuning DAG gets a note naming the dataset version it trains on, in the UI's run list.

A listener the plugin registers. The scheduler calls it as a run starts (the note says what the run was
asked for: `dataset_uri`, or the logical date's version) and as it ends (the version
`resolve_dataset_version` chose, from its XCom: for a manual run without a URI, the newest complete one).
A note someone wrote is never replaced: only notes starting with `NOTE_PREFIX` are ours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

DAG_IDS = frozenset({"aria_text_tuning"})
RESOLVE_TASK = "resolve_dataset_version"
NOTE_PREFIX = "Dataset "


def note_for(
    conf: Mapping[str, Any] | None,
    logical_date: Any,
    run_type: str,
    resolved: Mapping[str, Any] | None,
    ended: bool = False,
) -> str:
    """The note of a run: the resolved version when known, else what the run was asked for."""
    if resolved and resolved.get("version"):
        how = resolved.get("chosen_by", "")
        return f"{NOTE_PREFIX}{resolved['version']} ({resolved.get('uri', '')}, by {how})"
    uri = (conf or {}).get("dataset_uri")
    if uri:
        return f"{NOTE_PREFIX}{str(uri).rstrip('/').rsplit('/', 1)[-1]} ({uri}, the dataset_uri param)"
    if run_type == "manual" or logical_date is None:
        if ended:
            return f"{NOTE_PREFIX}none: the run ended before {RESOLVE_TASK} chose one (see its log)"
        return f"{NOTE_PREFIX}to be chosen: the newest complete version ({RESOLVE_TASK} names it)"
    return f"{NOTE_PREFIX}v={logical_date:%Y-%m-%d} (the run's logical date)"


def _ours_to_write(dag_run: Any) -> bool:
    current = dag_run.note
    return dag_run.dag_id in DAG_IDS and (not current or str(current).startswith(NOTE_PREFIX))


def _resolved(dag_run: Any) -> Mapping[str, Any] | None:
    """The XCom `resolve_dataset_version` returned, read in the scheduler's own session."""
    from airflow.models.xcom import XComModel
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:
        return None
    query = XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=RESOLVE_TASK, key="return_value"
    ).limit(1)
    row = session.scalars(query).first()
    value = XComModel.deserialize_value(row) if row is not None else None
    return value if isinstance(value, Mapping) else None


def _annotate(dag_run: Any, ended: bool) -> None:
    try:
        if not _ours_to_write(dag_run):
            return
        run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
        resolved = _resolved(dag_run) if ended else None
        note = note_for(dag_run.conf, dag_run.logical_date, str(run_type), resolved, ended)
        if note != dag_run.note:
            dag_run.note = note
    except Exception:  # a note is never worth failing the scheduler's loop over
        log.warning("Could not write the dataset note of %s", getattr(dag_run, "run_id", "?"), exc_info=True)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    _annotate(dag_run, ended=False)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _annotate(dag_run, ended=True)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _annotate(dag_run, ended=True)
