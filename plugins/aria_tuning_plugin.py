"""Registers the ARIA-text operator extra links (Vertex AI console pages) and the run-notes listener.

Links must be known to the plugin manager to render on the serialized DAG in the UI; the listener
(`aria_tuning.run_notes`) names each run after the dataset version it trains on.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from aria_tuning import run_notes
from aria_tuning.links import VertexConsoleLink, VertexEndpointLink, VertexModelLink, VertexTuningJobLink


class AriaTuningPlugin(AirflowPlugin):
    name = "aria_tuning"
    operator_extra_links = [
        VertexConsoleLink(),
        VertexTuningJobLink(),
        VertexModelLink(),
        VertexEndpointLink(),
    ]
    listeners = [run_notes]
