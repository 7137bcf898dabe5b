"""The /_emulator/ control plane, on a private in-memory emulator (reset would disturb the shared one)."""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import TPU_REGION, Upload, gapic_clients, palm_rows, pipeline_job


def test_counts_inspect_settings_reset_and_memory_restart(
    vertex_emulator_factory: Callable[..., Any], project: str, upload: Upload
) -> None:
    emulator = vertex_emulator_factory()
    gapic = gapic_clients(emulator.url)
    parent = f"projects/{project}/locations/{TPU_REGION}"

    settings = emulator_control(emulator.url, "settings", {"secondsPerStep": 30}, method="PATCH")
    assert settings["seconds_per_step"] == 30.0
    job = gapic.pipelines.create_pipeline_job(
        parent=parent, pipeline_job=pipeline_job(upload("t.jsonl", palm_rows("ctl")), train_steps=100)
    )
    gapic.endpoints.create_endpoint(parent=parent, endpoint=aiplatform_v1.Endpoint(display_name="e")).result()

    counts = emulator_control(emulator.url, "counts")
    assert {k: counts[k] for k in ("pipelineJobs", "tuningJobs", "endpoints", "operations")} == {
        "pipelineJobs": 1,
        "tuningJobs": 0,
        "endpoints": 1,
        "operations": 1,
    }
    assert counts["requests"]["POST /v1/{parent=projects/*/locations/*}/pipelineJobs"] == 1
    assert emulator_control(emulator.url, "stats")["requests"] == sum(counts["requests"].values())

    record = emulator_control(emulator.url, f"inspect/{job.name}")
    tuner = dict(record["internal"]["steps"])["large-language-model-tuner"]
    assert tuner - dict(record["internal"]["steps"])["dataset-encoder"] == pytest.approx(100 * 30)

    assert emulator_control(emulator.url, "reset", {})["reset"] is True
    assert emulator_control(emulator.url, "counts")["pipelineJobs"] == 0
    assert list(gapic.pipelines.list_pipeline_jobs(parent=parent)) == []

    endpoint = gapic.endpoints.create_endpoint(
        parent=parent, endpoint=aiplatform_v1.Endpoint(display_name="e")
    )
    emulator.restart()  # without --state-dir, a restart forgets
    with pytest.raises(exceptions.NotFound):
        gapic.endpoints.get_endpoint(name=endpoint.result().name)

    for route, body in (("nowhere", None), (f"jobs/{job.name}:explode", {})):
        with pytest.raises(urllib.error.HTTPError) as raised:
            emulator_control(emulator.url, route, body)
        assert raised.value.code == 404
