"""A schedule for an Airflow that should start no run by itself: weekly intervals for backfills and manual
runs only (`ARIA_TUNING_SCHEDULE=backfill`, what `make up` uses).

`schedule=None` cannot be backfilled: Airflow greys out Backfill in the trigger dialog and the CLI refuses
("a non-periodic schedule that does not support backfills", airflow/models/backfill.py). A real weekly
schedule would start this week's run at once, whose version never comes, and with `max_active_runs=1`
it would hold the DAG's only slot for its sensor's 12 hours. This timetable has the weekly intervals a
backfill needs and gives the scheduler no next run.
"""

from __future__ import annotations

from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable


class BackfillOnlyTimetable(CronDataIntervalTimetable):
    """Cron data intervals that backfills and manual runs use; the scheduler never starts a run."""

    def next_dagrun_info(self, *, last_automated_data_interval: Any, restriction: Any) -> Any:
        # Two callers ask: the scheduler, with the DAG's own restriction (no end date: `latest` is None),
        # for its next automatic run; and a backfill, which bounds its range (`latest` is its end) and
        # walks the intervals in it. Only the backfill gets an answer.
        if restriction.latest is None:
            return None
        return super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )

    @property
    def summary(self) -> str:
        return f"{super().summary}, backfills and manual runs only"
