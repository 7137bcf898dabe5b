"""Clients and data for the emulator's conformance tests: official Google clients over HTTP only.

Every test gets its own project id, so tests share the session emulator without seeing each
other's jobs, models or endpoints (state is keyed by project and location).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1, storage

TPU_REGION = "europe-west4"
GPU_REGION = "us-central1"
TEMPLATE = "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"
BUCKET = "emulator-tests"


@dataclass
class Gapic:
    """The sync REST GAPIC clients the project uses, pointed at one emulator."""

    url: str
    pipelines: aiplatform_v1.PipelineServiceClient
    tuning: aiplatform_v1.GenAiTuningServiceClient
    models: aiplatform_v1.ModelServiceClient
    endpoints: aiplatform_v1.EndpointServiceClient
    prediction: aiplatform_v1.PredictionServiceClient


def gapic_clients(url: str) -> Gapic:
    kwargs: dict[str, Any] = {
        "credentials": AnonymousCredentials(),
        "client_options": ClientOptions(api_endpoint=url),
        "transport": "rest",
    }
    return Gapic(
        url,
        aiplatform_v1.PipelineServiceClient(**kwargs),
        aiplatform_v1.GenAiTuningServiceClient(**kwargs),
        aiplatform_v1.ModelServiceClient(**kwargs),
        aiplatform_v1.EndpointServiceClient(**kwargs),
        aiplatform_v1.PredictionServiceClient(**kwargs),
    )


@pytest.fixture(scope="session")
def gapic(vertex_emulator: str) -> Gapic:
    return gapic_clients(vertex_emulator)


@pytest.fixture
def project() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tpu_parent(project: str) -> str:
    return f"projects/{project}/locations/{TPU_REGION}"


@pytest.fixture
def gpu_parent(project: str) -> str:
    return f"projects/{project}/locations/{GPU_REGION}"


@pytest.fixture
def sdk(vertex_emulator: str, project: str) -> None:
    """The high-level SDK (`google.cloud.aiplatform`) initialised against the emulator, REST transport."""
    from google.cloud import aiplatform

    aiplatform.init(
        project=project,
        location=GPU_REGION,
        api_endpoint=vertex_emulator,
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )


@pytest.fixture(scope="session")
def bucket(gcs_emulator: str) -> storage.Bucket:
    client = storage.Client(project="emulator-tests", credentials=AnonymousCredentials())
    return client.create_bucket(BUCKET)


Upload = Callable[[str, list[Any] | str], str]


@pytest.fixture
def upload(bucket: storage.Bucket) -> Upload:
    """Write JSONL rows (dicts) or raw text to the GCS emulator; returns the gs:// URI."""

    def write(path: str, rows: list[Any] | str) -> str:
        text = rows if isinstance(rows, str) else "\n".join(json.dumps(row) for row in rows) + "\n"
        name = f"{uuid.uuid4().hex[:8]}/{path}"
        bucket.blob(name).upload_from_string(text)
        return f"gs://{bucket.name}/{name}"

    return write


def palm_rows(tag: str, n: int = 12) -> list[dict[str, str]]:
    return [{"input_text": f"question {i} about {tag}", "output_text": f"{tag} answer {i}"} for i in range(n)]


def gemini_rows(tag: str, n: int = 12) -> list[dict[str, Any]]:
    return [
        {
            "contents": [
                {"role": "user", "parts": [{"text": f"question {i} about {tag}"}]},
                {"role": "model", "parts": [{"text": f"{tag} answer {i}"}]},
            ]
        }
        for i in range(n)
    ]


def pipeline_job(
    dataset_uri: str,
    location: str = TPU_REGION,
    accelerator: str = "TPU",
    train_steps: int = 10,
    **extra: Any,
) -> aiplatform_v1.PipelineJob:
    values: dict[str, Any] = {
        "project": "aria-local",
        "location": location,
        "large_model_reference": "text-bison@001",
        "model_display_name": "emulator-test-model",
        "dataset_uri": dataset_uri,
        "train_steps": train_steps,
        "accelerator_type": accelerator,
        **extra,
    }
    return aiplatform_v1.PipelineJob(
        display_name="tune",
        labels={"suite": "emulator"},
        template_uri=TEMPLATE,
        runtime_config=aiplatform_v1.PipelineJob.RuntimeConfig(
            gcs_output_directory="gs://aria-pipeline-root", parameter_values=values
        ),
    )


def wait_for(get: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    """Poll `get()` until `done(result)`; returns the last result."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = get()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def terminal_pipeline(state: aiplatform_v1.PipelineState) -> bool:
    return state.name in ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")


def terminal_job(state: aiplatform_v1.JobState) -> bool:
    return state.name in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")


# -- credentials (test_auth*.py) ---------------------------------------------------------------
@pytest.fixture
def auth_required(vertex_emulator: str) -> Iterator[str]:
    """The session emulator refuses calls without a valid bearer token during the test (then as before)."""
    from scripts.emulators import emulator_control

    before = emulator_control(vertex_emulator, "auth")["required"]
    emulator_control(vertex_emulator, "auth", {"required": True})
    try:
        yield vertex_emulator
    finally:
        emulator_control(vertex_emulator, "auth", {"required": before})


@dataclass(frozen=True)
class AuthEmulator:
    """A Vertex emulator started with --require-auth, its GCS gate and gRPC port, and its log file."""

    url: str
    gcs_gate: str
    grpc_target: str
    log: Path


@pytest.fixture(scope="session")
def auth_emulator(gcs_emulator: str, run_dir: Path) -> Iterator[AuthEmulator]:
    """A Vertex emulator of its own requiring auth, with a GCS gate in front of the session's GCS
    emulator and a gRPC port; debug logging, so the log shows whatever the emulator would ever log."""
    from scripts.emulators import start_vertex_emulator
    from scripts.processes import free_port, wait_http

    gate_port, grpc_port = free_port(), free_port()
    options = ["--require-auth", "--gcs-gate-port", str(gate_port), "--grpc-port", str(grpc_port)]
    server = start_vertex_emulator(
        run_dir, gcs_url=gcs_emulator, extra_args=[*options, "--log-level", "debug"], name="vertex-auth"
    )
    try:
        gate = f"http://127.0.0.1:{gate_port}"
        wait_http(f"{gate}/storage/v1/b", 30, server.process.gone)
        yield AuthEmulator(server.url, gate, f"127.0.0.1:{grpc_port}", Path(server.process.log))
    finally:
        server.stop()
