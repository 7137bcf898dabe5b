"""Registers the ARIA-text operator extra links (Vertex AI console pages), the run-notes listener and the
backfill-only timetable with Airflow.

Links must be known to the plugin manager to render on the serialized DAG in the UI; the listener
(`aria_tuning.run_notes`) names each run after the dataset version it trains on; a custom timetable
must be registered to be serialized (`aria_tuning.timetables`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from aria_tuning import run_notes
from aria_tuning.links import (
    EvaluationReportLink,
    VertexConsoleLink,
    VertexEndpointLink,
    VertexModelLink,
    VertexTuningJobLink,
)
from aria_tuning.timetables import BackfillOnlyTimetable


class AriaTuningPlugin(AirflowPlugin):
    name = "aria_tuning"
    operator_extra_links = [
        VertexConsoleLink(),
        VertexTuningJobLink(),
        VertexModelLink(),
        VertexEndpointLink(),
        EvaluationReportLink(),
    ]
    listeners = [run_notes]
    timetables = [BackfillOnlyTimetable]
