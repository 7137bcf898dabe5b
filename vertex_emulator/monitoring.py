"""The prediction metrics Vertex AI exports to Cloud Monitoring, served by Monitoring's `timeSeries.list`.

Every `:predict` and `:generateContent` an endpoint serves is recorded against the deployed model
that answered (an error too, e.g. a model failing through the control plane). `timeSeries.list`
(`GET /v3/projects/{project}/timeSeries`) answers for the metric types
`aiplatform.googleapis.com/prediction/online/prediction_count` and `.../error_count` on the monitored
resource `aiplatform.googleapis.com/Endpoint` (label `endpoint_id`), one DELTA INT64 series per
deployed model (metric label `deployed_model_id`) with one point summing the requested interval.
The filter understands `metric.type = "..."` and `resource.labels.KEY = "..."` joined by AND.
Kept in memory: a restarted emulator starts counting afresh, like a new monitoring window.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from vertex_emulator.exceptions import InvalidArgument
from vertex_emulator.lifecycle import rfc3339

PREDICTIONS = "aiplatform.googleapis.com/prediction/online/prediction_count"
ERRORS = "aiplatform.googleapis.com/prediction/online/error_count"
RESOURCE = "aiplatform.googleapis.com/Endpoint"
_TERM = re.compile(r'^\s*(metric\.type|resource\.type|resource\.labels\.\w+)\s*=\s*"([^"]*)"\s*$')


@dataclass(frozen=True)
class Served:
    endpoint: str  # projects/P/locations/L/endpoints/ID
    deployed_model_id: str
    error: bool
    at: float


class PredictionLog:
    def __init__(self) -> None:
        self._served: list[Served] = []
        self._lock = threading.Lock()

    def record(self, endpoint: str, deployed_model_id: str, error: bool, at: float) -> None:
        with self._lock:
            self._served.append(Served(endpoint, deployed_model_id, error, at))

    def clear(self) -> None:
        with self._lock:
            self._served.clear()

    def list_time_series(self, request: dict[str, Any]) -> dict[str, Any]:
        """ListTimeSeriesResponse (wire dict) for a ListTimeSeriesRequest (wire dict)."""
        project = str(request.get("name", "")).removeprefix("projects/")
        terms = _filter(str(request.get("filter", "")))
        metric = terms.get("metric.type")
        if metric not in (PREDICTIONS, ERRORS):
            raise InvalidArgument(
                f"filter must name metric.type {PREDICTIONS!r} or {ERRORS!r} (the emulator's metrics)"
            )
        if terms.get("resource.type", RESOURCE) != RESOURCE:
            return {}
        interval = request.get("interval") or {}
        if "endTime" not in interval:
            raise InvalidArgument("interval.end_time is required")
        start, end = _seconds(interval.get("startTime") or interval["endTime"]), _seconds(interval["endTime"])
        prefix = "resource.labels."
        wanted = {k.removeprefix(prefix): v for k, v in terms.items() if k.startswith(prefix)}
        counts: dict[tuple[str, str], int] = {}
        with self._lock:
            served = list(self._served)
        for event in served:
            parts = event.endpoint.split("/")
            labels = {"resource_container": parts[1], "location": parts[3], "endpoint_id": parts[5]}
            if parts[1] != project or not start <= event.at <= end:
                continue
            if any(labels.get(k) != v for k, v in wanted.items()):
                continue
            if metric == ERRORS and not event.error:
                continue
            key = (event.endpoint, event.deployed_model_id)
            counts[key] = counts.get(key, 0) + 1
        series = [
            {
                "metric": {"type": metric, "labels": {"deployed_model_id": deployed}},
                "resource": {
                    "type": RESOURCE,
                    "labels": {
                        "resource_container": e.split("/")[1],
                        "location": e.split("/")[3],
                        "endpoint_id": e.split("/")[5],
                    },
                },
                "metricKind": "DELTA",
                "valueType": "INT64",
                "points": [
                    {
                        "interval": {"startTime": rfc3339(start), "endTime": rfc3339(end)},
                        "value": {"int64Value": str(count)},
                    }
                ],
            }
            for (e, deployed), count in sorted(counts.items())
        ]
        return {"timeSeries": series} if series else {}


def _filter(text: str) -> dict[str, str]:
    terms = {}
    for term in re.split(r"\s+AND\s+", text.strip()):
        match = _TERM.match(term)
        if match is None:
            raise InvalidArgument(
                f'filter term {term!r} is not KEY = "VALUE" (metric.type, resource.labels.*)'
            )
        terms[match.group(1)] = match.group(2)
    return terms


def _seconds(timestamp: str) -> float:
    from google.protobuf import timestamp_pb2

    parsed = timestamp_pb2.Timestamp()
    parsed.FromJsonString(timestamp)
    return parsed.seconds + parsed.nanos / 1e9
