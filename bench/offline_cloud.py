"""The emulators a benchmark needs, started fresh on free ports, and the Vertex resources it waits on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.emulators import start_gcs_emulator, start_vertex_emulator
from scripts.processes import Server

PROJECT = "aria-local"
REGION = "europe-west4"
DATA_BUCKET = "aria-datasets"
PIPELINE_ROOT = "gs://aria-pipeline-root"
TEMPLATE_URI = "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"
GCP_CONNECTION = json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}})


@dataclass
class OfflineCloud:
    gcs_url: str
    vertex_url: str
    gcs: Server
    vertex: Server

    @property
    def env(self) -> dict[str, str]:
        return {
            "STORAGE_EMULATOR_HOST": self.gcs_url,
            "ARIA_VERTEX_API_ENDPOINT": self.vertex_url,
            "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": GCP_CONNECTION,
        }


@contextmanager
def offline_cloud(
    log_dir: Path, seconds_per_step: float | None = None, vertex_args: Sequence[str] = ()
) -> Iterator[OfflineCloud]:
    """Both emulators; `vertex_args` are further Vertex emulator options (e.g. its gRPC port and TLS)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    gcs = start_gcs_emulator(log_dir)
    saved = {key: os.environ.get(key) for key in ("STORAGE_EMULATOR_HOST", "ARIA_VERTEX_API_ENDPOINT")}
    try:
        clock = ("--seconds-per-step", str(seconds_per_step)) if seconds_per_step is not None else ()
        vertex = start_vertex_emulator(log_dir, gcs_url=gcs.url, extra_args=(*clock, *vertex_args))
        cloud = OfflineCloud(gcs.url, vertex.url, gcs, vertex)
        os.environ.update(cloud.env)
        try:
            yield cloud
        finally:
            vertex.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        gcs.stop()


def upload_tuning_dataset(path: str = "bench/train.jsonl", examples: int = 32) -> str:
    """A small valid text-bison dataset in the GCS emulator; returns its gs:// URI."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    for name in (DATA_BUCKET, PIPELINE_ROOT.removeprefix("gs://")):
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)
    lines = [
        json.dumps({"input_text": f"pregunta {i}: ¿dónde está mi pedido?", "output_text": f"respuesta {i}"})
        for i in range(examples)
    ]
    client.bucket(DATA_BUCKET).blob(path).upload_from_string("\n".join(lines) + "\n")
    return f"gs://{DATA_BUCKET}/{path}"


def pipeline_client(vertex_url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1 import PipelineServiceClient

    return PipelineServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": vertex_url}
    )


def tune_parameters(dataset_uri: str, train_steps: int) -> dict[str, Any]:
    return {
        "project": PROJECT,
        "location": REGION,
        "large_model_reference": "text-bison@001",
        "model_display_name": "ARIA-text",
        "train_steps": train_steps,
        "dataset_uri": dataset_uri,
        "learning_rate_multiplier": 1.0,
        "accelerator_type": "TPU",
    }


def create_pipeline_jobs(
    vertex_url: str, count: int, dataset_uri: str, train_steps: int, prefix: str
) -> list[str]:
    """`count` tune-large-model pipeline jobs; returns their resource names."""
    from google.cloud.aiplatform_v1 import PipelineJob

    client = pipeline_client(vertex_url)
    parent = f"projects/{PROJECT}/locations/{REGION}"
    names = []
    for index in range(count):
        job = PipelineJob(
            display_name=f"{prefix}-{index}",
            template_uri=TEMPLATE_URI,
            runtime_config=PipelineJob.RuntimeConfig(
                gcs_output_directory=PIPELINE_ROOT,
                parameter_values=tune_parameters(dataset_uri, train_steps),
            ),
        )
        created = client.create_pipeline_job(
            parent=parent, pipeline_job=job, pipeline_job_id=f"{prefix}-{index}"
        )
        names.append(created.name)
    return names
