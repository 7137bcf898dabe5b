"""Cloud Monitoring: the online-prediction counts Vertex AI exports per deployed model of an endpoint.

Metric types `aiplatform.googleapis.com/prediction/online/prediction_count` and `.../error_count` on
the monitored resource `aiplatform.googleapis.com/Endpoint` (label `endpoint_id`), one series per
`deployed_model_id` (https://cloud.google.com/vertex-ai/docs/general/monitoring-metrics). Read over
Monitoring's REST API (`projects.timeSeries.list`) with the connection's credentials: the Python
client of Monitoring speaks gRPC only, and the emulator serves this call over REST.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aria_tuning.hooks.base import CALL_TIMEOUT_SECONDS, VertexHook, translated
from aria_tuning.resources import resource_id, resource_project

#: Where Monitoring is, when not monitoring.googleapis.com: a connection extra or the environment.
#: Unset, an http(s) Vertex endpoint override (the emulator) serves it too.
ENDPOINT_ENV = "ARIA_MONITORING_API_ENDPOINT"
ENDPOINT_EXTRA = "monitoring_api_endpoint"
GOOGLE = "https://monitoring.googleapis.com"
PREDICTIONS = "aiplatform.googleapis.com/prediction/online/prediction_count"
ERRORS = "aiplatform.googleapis.com/prediction/online/error_count"


@dataclass(frozen=True)
class Served:
    """Predictions a deployed model served in a window, and how many of them failed."""

    predictions: int = 0
    errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"predictions": self.predictions, "errors": self.errors}


class MonitoringHook(VertexHook):
    @cached_property
    def monitoring_endpoint(self) -> str:
        configured = self._setting(ENDPOINT_EXTRA, ENDPOINT_ENV)
        if configured:
            return configured.rstrip("/")
        override = self.endpoint_override or ""
        return override if override.startswith(("http://", "https://")) else GOOGLE

    @cached_property
    def _session(self) -> Any:
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self.credentials)

    def served(self, endpoint: str, start: dt.datetime, end: dt.datetime) -> dict[str, Served]:
        """Per deployed model id of `endpoint`: predictions and errors between `start` and `end`."""
        counts = {metric: self._sums(endpoint, metric, start, end) for metric in (PREDICTIONS, ERRORS)}
        ids = set(counts[PREDICTIONS]) | set(counts[ERRORS])
        return {i: Served(counts[PREDICTIONS].get(i, 0), counts[ERRORS].get(i, 0)) for i in sorted(ids)}

    def _sums(self, endpoint: str, metric: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
        from google.cloud.monitoring_v3.types import ListTimeSeriesResponse
        from google.protobuf import json_format

        url = f"{self.monitoring_endpoint}/v3/projects/{resource_project(endpoint)}/timeSeries"
        params = {
            "filter": f'metric.type = "{metric}" AND resource.type = "aiplatform.googleapis.com/Endpoint" '
            f'AND resource.labels.endpoint_id = "{resource_id(endpoint)}"',
            "interval.startTime": _rfc3339(start),
            "interval.endTime": _rfc3339(end),
        }
        sums: dict[str, int] = {}
        while True:
            with translated(endpoint, f"reading {metric} from Cloud Monitoring"):
                body = self.retry()(self._get)(url, params)
            page = ListTimeSeriesResponse.pb()()
            json_format.ParseDict(body, page, ignore_unknown_fields=True)
            for series in page.time_series:
                deployed = series.metric.labels.get("deployed_model_id", "")
                sums[deployed] = sums.get(deployed, 0) + sum(int(p.value.int64_value) for p in series.points)
            if not page.next_page_token:
                return sums
            params["pageToken"] = page.next_page_token

    def _get(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        from google.api_core import exceptions

        response = self._session.get(url, params=params, timeout=CALL_TIMEOUT_SECONDS)
        if response.status_code >= 400:
            raise exceptions.from_http_response(response)
        return dict(response.json())


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
