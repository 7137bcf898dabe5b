"""Run notes name the dataset version: what the run was asked for as it starts, what it chose as it ends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from aria_tuning import run_notes
from aria_tuning.run_notes import NOTE_PREFIX, note_for

DAY = dt.datetime(2025, 6, 8, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("conf", "logical_date", "run_type", "resolved", "ended", "note"),
    [
        ({}, DAY, "scheduled", None, False, "Dataset v=2025-06-08 (the run's logical date)"),
        ({}, DAY, "backfill", None, False, "Dataset v=2025-06-08 (the run's logical date)"),
        (
            {"dataset_uri": "gs://b/aria-text/raw/v=2025-06-01/"},
            DAY,
            "manual",
            None,
            False,
            "Dataset v=2025-06-01 (gs://b/aria-text/raw/v=2025-06-01/, the dataset_uri param)",
        ),
        ({}, DAY, "manual", None, False, "Dataset to be chosen: the newest complete version"),
        ({}, None, "manual", None, True, "Dataset none: the run ended before resolve_dataset_version"),
        (
            {},
            DAY,
            "manual",
            {"version": "v=2025-06-15", "uri": "gs://b/v=2025-06-15/", "chosen_by": "the newest"},
            True,
            "Dataset v=2025-06-15 (gs://b/v=2025-06-15/, by the newest)",
        ),
    ],
)
def test_the_note_names_the_version(
    conf: dict, logical_date: Any, run_type: str, resolved: Any, ended: bool, note: str
) -> None:
    assert note_for(conf, logical_date, run_type, resolved, ended).startswith(note)


@dataclass
class _Run:
    note: str | None
    dag_id: str = "aria_text_tuning"
    run_id: str = "manual__x"
    run_type: str = "scheduled"
    conf: dict = field(default_factory=dict)
    logical_date: Any = DAY


def test_a_note_someone_wrote_is_kept_and_ours_is_updated() -> None:
    mine = _Run(note="retraining after the label fix")
    run_notes.on_dag_run_running(dag_run=mine, msg="")
    assert mine.note == "retraining after the label fix"
    ours = _Run(note=f"{NOTE_PREFIX}to be chosen")
    run_notes.on_dag_run_running(dag_run=ours, msg="")
    assert ours.note == "Dataset v=2025-06-08 (the run's logical date)"
    other_dag = _Run(note=None, dag_id="someone_else")
    run_notes.on_dag_run_running(dag_run=other_dag, msg="")
    assert other_dag.note is None
