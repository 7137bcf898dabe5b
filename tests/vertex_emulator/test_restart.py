"""With --state-dir, state survives a restart and a running job keeps its clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from tests.vertex_emulator.conftest import (
    TPU_REGION,
    Upload,
    gapic_clients,
    palm_rows,
    pipeline_job,
    terminal_pipeline,
    wait_for,
)


def test_restart_keeps_a_running_job_running_on_its_original_clock(
    vertex_emulator_factory: Callable[..., Any], tmp_path: Path, project: str, upload: Upload
) -> None:
    emulator = vertex_emulator_factory(
        state_dir=tmp_path / "state", extra_args=("--seconds-per-step", "0.05")
    )
    gapic = gapic_clients(emulator.url)
    parent = f"projects/{project}/locations/{TPU_REGION}"
    creating = gapic.endpoints.create_endpoint(
        parent=parent, endpoint=aiplatform_v1.Endpoint(display_name="kept")
    )
    endpoint = creating.result()
    job = gapic.pipelines.create_pipeline_job(
        parent=parent,
        pipeline_job=pipeline_job(upload("t.jsonl", palm_rows("restart")), train_steps=120),
        pipeline_job_id="long",
    )
    running = wait_for(
        lambda: gapic.pipelines.get_pipeline_job(name=job.name),
        lambda j: j.state.name == "PIPELINE_STATE_RUNNING",
    )
    assert running.state.name == "PIPELINE_STATE_RUNNING"

    emulator.restart()

    after = gapic.pipelines.get_pipeline_job(name=job.name)
    assert after.state.name == "PIPELINE_STATE_RUNNING"
    assert after.start_time == running.start_time
    assert gapic.endpoints.get_endpoint(name=endpoint.name).display_name == "kept"
    assert gapic.endpoints.get_operation(request={"name": creating.operation.name}).done
    assert [j.name for j in gapic.pipelines.list_pipeline_jobs(parent=parent)] == [job.name]

    done = wait_for(
        lambda: gapic.pipelines.get_pipeline_job(name=job.name), lambda j: terminal_pipeline(j.state)
    )
    assert done.state.name == "PIPELINE_STATE_SUCCEEDED"
    # 120 steps x 0.05 s plus the fixed tasks: had the restart reset the clock, the run would also
    # include the seconds the emulator spent restarting.
    run_seconds = (done.end_time - done.start_time).total_seconds()
    assert run_seconds == pytest.approx(6.0 + 5 * 0.05, abs=0.2)
    model = done.job_detail.task_details[-2].execution.metadata["output:model_resource_name"]

    assert gapic.models.get_model(name=model).deployed_models
    with pytest.raises(exceptions.Conflict):
        gapic.pipelines.create_pipeline_job(
            parent=parent, pipeline_job=pipeline_job("gs://x/y.jsonl"), pipeline_job_id="long"
        )
