"""Runs one tuning task the way a worker would and reports the seconds it held the worker slot.

Run in a fresh interpreter by bench/slots.py:
`python -m bench.slot_driver --kind ours|provider --train-steps N --dataset URI --out FILE`.
Ours: `execute()` until it defers (slot), the trigger's wait (no slot: the triggerer), then
`execute_complete()` (slot again). The provider's RunPipelineJobOperator in its default,
non-deferrable mode: `execute()` from start to end, all of it in the slot.
"""

from __future__ import annotations

import argparse
import asyncio
import email.message
import io
import json
import os
import time
import urllib.request
import urllib.response
from pathlib import Path
from typing import Any

from bench.offline_cloud import GCP_CONNECTION, PIPELINE_ROOT, PROJECT, REGION, TEMPLATE_URI, tune_parameters


class WorkerTaskInstance:
    """What the operators read from `context["ti"]` (identity and xcom_push); XComs kept in memory."""

    def __init__(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id = dag_id, run_id, task_id
        self.map_index = -1
        self.try_number = 1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _context(run_id: str) -> dict[str, Any]:
    ti = WorkerTaskInstance("aria_text_tuning", run_id, "tune")
    return {"ti": ti, "task_instance": ti, "run_id": run_id}


def run_ours(train_steps: int, dataset: str, run_id: str) -> dict[str, Any]:
    from airflow.sdk.exceptions import TaskDeferred
    from aria_tuning.operators.tuning import VertexTuningOperator

    operator = VertexTuningOperator(
        task_id="tune",
        plan={"model": "text-bison@001", "train_steps": train_steps, "accelerator": "TPU"},
        training_data_uri=dataset,
        project_id=PROJECT,
        pipeline_root=PIPELINE_ROOT,
        poll_interval=2,
        max_poll_interval=2,
    )
    context = _context(run_id)
    started = time.perf_counter()
    try:
        operator.execute(context)  # type: ignore[arg-type]
        raise RuntimeError("the tuning operator returned without deferring")
    except TaskDeferred as deferred:
        first = time.perf_counter() - started
        trigger, method = deferred.trigger, deferred.method_name
    waited = time.perf_counter()
    event = asyncio.run(_first_event(trigger))
    wait_seconds = time.perf_counter() - waited
    resumed = time.perf_counter()
    result = getattr(operator, method)(context, event.payload)
    second = time.perf_counter() - resumed
    return {
        "slot_seconds": first + second,
        "segments": [first, second],
        "job_seconds": wait_seconds + first,
        "state": result.get("state"),
        "job": result.get("job"),
    }


async def _first_event(trigger: Any) -> Any:
    async for event in trigger.run():
        return event
    raise RuntimeError("the trigger ended without an event")


class ArtifactRegistryStandIn(urllib.request.BaseHandler):
    """Answers the SDK's template download from us-kfp.pkg.dev with the emulator's tune-large-model spec.

    There is no network here: this stands in for Artifact Registry the way the emulator stands in for
    Vertex, so the provider's code path (SDK sends `templateUri` + `pipelineSpec`) is unchanged.
    """

    handler_order = 100  # before urllib's own HTTPSHandler

    def https_open(self, request: urllib.request.Request) -> Any:
        if not request.full_url.startswith(TEMPLATE_URI):
            return None
        from vertex_emulator.templates import TUNE_LARGE_MODEL

        body = json.dumps(TUNE_LARGE_MODEL.pipeline_spec()).encode()
        headers = email.message.Message()
        headers["Content-Type"] = "application/json"
        response = urllib.response.addinfourl(io.BytesIO(body), headers, request.full_url, code=200)
        response.msg = "OK"  # type: ignore[attr-defined]
        return response


def run_provider(train_steps: int, dataset: str, run_id: str, endpoint: str) -> dict[str, Any]:
    from airflow.providers.google.cloud.operators.vertex_ai.pipeline_job import RunPipelineJobOperator
    from google.cloud import aiplatform

    urllib.request.install_opener(urllib.request.build_opener(ArtifactRegistryStandIn()))
    # The SDK's documented override: every client it builds talks to this endpoint over REST.
    aiplatform.init(api_endpoint=endpoint, api_transport="rest")
    operator = RunPipelineJobOperator(
        task_id="tune",
        project_id=PROJECT,
        region=REGION,
        display_name="ARIA-text",
        template_path=TEMPLATE_URI,
        job_id=f"provider-{run_id}",
        parameter_values=tune_parameters(dataset, train_steps),
        pipeline_root=PIPELINE_ROOT,
        deferrable=False,
    )
    context = _context(run_id)
    started = time.perf_counter()
    result = operator.execute(context)  # type: ignore[arg-type]
    held = time.perf_counter() - started
    return {
        "slot_seconds": held,
        "segments": [held],
        "job_seconds": held,
        "state": str(result.get("state")),
        "job": f"projects/{PROJECT}/locations/{REGION}/pipelineJobs/provider-{run_id}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("ours", "provider"), required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--train-steps", type=int, required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", GCP_CONNECTION)
    os.environ["ARIA_VERTEX_API_ENDPOINT"] = args.endpoint
    if args.kind == "ours":
        result = run_ours(args.train_steps, args.dataset, args.run_id)
    else:
        result = run_provider(args.train_steps, args.dataset, args.run_id, args.endpoint)
    result.update(kind=args.kind, train_steps=args.train_steps)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
