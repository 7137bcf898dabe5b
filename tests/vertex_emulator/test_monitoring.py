"""Prediction metrics in Cloud Monitoring's timeSeries.list, and the traffic split deciding who answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import Gapic

PREDICTIONS = "aiplatform.googleapis.com/prediction/online/prediction_count"
ERRORS = "aiplatform.googleapis.com/prediction/online/error_count"


def _rfc3339(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def series(url: str, project: str, metric: str, endpoint_id: str, start: dt.datetime) -> dict[str, int]:
    response = requests.get(
        f"{url}/v3/projects/{project}/timeSeries",
        params={
            "filter": f'metric.type = "{metric}" AND resource.labels.endpoint_id = "{endpoint_id}"',
            "interval.startTime": _rfc3339(start),
            "interval.endTime": _rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)),
        },
        timeout=10,
    )
    response.raise_for_status()
    return {
        s["metric"]["labels"]["deployed_model_id"]: int(s["points"][0]["value"]["int64Value"])
        for s in response.json().get("timeSeries", [])
    }


def _model(gapic: Gapic, parent: str, rows: int) -> str:
    operation = gapic.models.upload_model(parent=parent, model={"display_name": f"m{rows}"})
    return f"{operation.result(timeout=30).model}@1"


def _deploy(gapic: Gapic, endpoint: str, model: str, split: dict[str, int]) -> Any:
    operation = gapic.endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model=aiplatform_v1.DeployedModel(model=model, automatic_resources={"min_replica_count": 1}),
        traffic_split=split,
    )
    return operation.result(timeout=30).deployed_model


def test_a_split_sends_each_deployed_model_its_share_and_monitoring_counts_them(
    gapic: Gapic, vertex_emulator: str
) -> None:
    project = f"mon-{uuid.uuid4().hex[:8]}"
    parent = f"projects/{project}/locations/us-central1"
    endpoint = gapic.endpoints.create_endpoint(parent=parent, endpoint={"display_name": "e"}).result(
        timeout=30
    )
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    first = _deploy(gapic, endpoint.name, _model(gapic, parent, 1), {"0": 100})
    canary_model = _model(gapic, parent, 2)
    canary = _deploy(gapic, endpoint.name, canary_model, {"0": 20, first.id: 80})
    emulator_control(vertex_emulator, f"models/{canary_model}:fail", {})
    answered: dict[str, int] = {}
    errors = 0
    for n in range(200):
        try:
            reply = gapic.prediction.predict(
                endpoint=endpoint.name, instances=[{"content": f"q{n}"}], retry=None
            )
            answered[reply.deployed_model_id] = answered.get(reply.deployed_model_id, 0) + 1
        except exceptions.InternalServerError:
            errors += 1
    emulator_control(vertex_emulator, f"models/{canary_model}:restore", {})
    # About a fifth reached the canary (the request's bytes pick the bucket), all failing.
    assert 20 <= errors <= 60 and answered == {first.id: 200 - errors}
    endpoint_id = endpoint.name.rsplit("/", 1)[1]
    assert series(vertex_emulator, project, PREDICTIONS, endpoint_id, start) == {
        first.id: 200 - errors,
        canary.id: errors,
    }
    assert series(vertex_emulator, project, ERRORS, endpoint_id, start) == {canary.id: errors}
    # The same request lands on the same deployed model every time.
    again = {
        gapic.prediction.predict(endpoint=endpoint.name, instances=[{"content": "q1"}]).deployed_model_id
        for _ in range(3)
    }
    assert len(again) == 1


@pytest.mark.parametrize(
    "params", [{"filter": 'metric.type = "compute.googleapis.com/cpu"'}, {"filter": "metric.type = unquoted"}]
)
def test_a_filter_the_emulator_does_not_serve_is_a_400(vertex_emulator: str, params: dict[str, str]) -> None:
    response = requests.get(
        f"{vertex_emulator}/v3/projects/p/timeSeries",
        params={**params, "interval.endTime": "2030-01-01T00:00:00Z"},
        timeout=10,
    )
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
