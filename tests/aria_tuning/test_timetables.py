"""The backfill-only schedule: Backfill works (periodic weekly intervals), the scheduler starts no run."""

from __future__ import annotations

import datetime as dt

from aria_tuning.timetables import BackfillOnlyTimetable

UTC = dt.UTC


def _dag() -> object:
    from airflow.sdk import DAG

    return DAG("backfill_only_probe", schedule=BackfillOnlyTimetable("@weekly", "UTC"),
               start_date=dt.datetime(2025, 6, 1, tzinfo=UTC), catchup=False)  # fmt: skip


def test_the_scheduler_gets_no_next_run_and_a_backfill_gets_every_week(airflow_db: None) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = _dag()
    serialized = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))  # type: ignore[arg-type]
    assert isinstance(serialized.timetable, BackfillOnlyTimetable) and serialized.timetable.periodic
    assert serialized.next_dagrun_info(last_automated_run_info=None) is None
    weeks = serialized.iter_dagrun_infos_between(
        dt.datetime(2025, 6, 1, tzinfo=UTC), dt.datetime(2025, 6, 15, tzinfo=UTC)
    )
    assert [info.logical_date.date() for info in weeks] == [
        dt.date(2025, 6, 1),
        dt.date(2025, 6, 8),
        dt.date(2025, 6, 15),
    ]
    assert serialized.timetable.summary.endswith("backfills and manual runs only")


def test_the_plugin_registers_it() -> None:
    from aria_tuning_plugin import AriaTuningPlugin

    assert BackfillOnlyTimetable in AriaTuningPlugin.timetables
