"""With --state-dir, state survives a restart: a running job keeps its clock; server-chosen ids keep
counting; tuning jobs, aliases, paused jobs and operations still in flight are as they were."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import (
    GPU_REGION,
    TPU_REGION,
    Upload,
    gapic_clients,
    gemini_rows,
    palm_rows,
    pipeline_job,
    terminal_pipeline,
    wait_for,
)
from tests.vertex_emulator.test_models import upload as upload_model
from tests.vertex_emulator.test_tuning import tuning_job


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
    # A restart slower than the job's six seconds (a loaded machine) finds it finished; either way its
    # clock is the one it started on, which the run time below proves.
    assert after.state.name in ("PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED")
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


def test_server_chosen_ids_keep_counting_and_tuning_jobs_and_aliases_survive_a_restart(
    vertex_emulator_factory: Callable[..., Any], tmp_path: Path, project: str, upload: Upload
) -> None:
    # A second per step: the tuning job is still running on both sides of the restart.
    emulator = vertex_emulator_factory(state_dir=tmp_path / "state", extra_args=("--seconds-per-step", "1"))
    gapic = gapic_clients(emulator.url)
    parent = f"projects/{project}/locations/{GPU_REGION}"
    train = upload("t.jsonl", gemini_rows("restart"))

    def create_all() -> tuple[str, str, str, str]:
        model, _ = upload_model(gapic, parent, "counted")
        endpoint = gapic.endpoints.create_endpoint(
            parent=parent, endpoint=aiplatform_v1.Endpoint(display_name="e")
        ).result()
        deployed = gapic.endpoints.deploy_model(
            endpoint=endpoint.name, deployed_model=aiplatform_v1.DeployedModel(model=model)
        )
        tuning = gapic.tuning.create_tuning_job(parent=parent, tuning_job=tuning_job(train, epochs=100))
        return model, endpoint.name, deployed.result().deployed_model.id, tuning.name

    first = create_all()
    gapic.models.merge_version_aliases(name=f"{first[0]}@1", version_aliases=["production"])
    tuning_before = gapic.tuning.get_tuning_job(name=first[3])

    emulator.restart()

    second = create_all()  # with counters that restarted at 0, these would take (or clash with) old ids
    for old, new in zip(first, second, strict=True):
        assert new != old
    assert gapic.models.get_model(name=f"{first[0]}@production").version_id == "1"
    tuning_after = gapic.tuning.get_tuning_job(name=first[3])
    assert tuning_after.create_time == tuning_before.create_time
    assert tuning_after.state.name in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")
    assert tuning_after.supervised_tuning_spec.training_dataset_uri == train
    listed = gapic.tuning.list_tuning_jobs(parent=parent)
    assert sorted(j.name for j in listed) == sorted([first[3], second[3]])
    for name in (first[3], second[3]):
        gapic.tuning.cancel_tuning_job(name=name)


def test_a_paused_job_and_a_held_operation_are_still_so_after_a_restart(
    vertex_emulator_factory: Callable[..., Any], tmp_path: Path, project: str, upload: Upload
) -> None:
    emulator = vertex_emulator_factory(state_dir=tmp_path / "state")
    gapic = gapic_clients(emulator.url)
    parent = f"projects/{project}/locations/{GPU_REGION}"
    job = gapic.pipelines.create_pipeline_job(
        parent=f"projects/{project}/locations/{TPU_REGION}",
        pipeline_job=pipeline_job(upload("t.jsonl", palm_rows("paused")), train_steps=20),
        pipeline_job_id="paused",
    )
    emulator_control(emulator.url, f"jobs/{job.name}:pause", {})
    model, version = upload_model(gapic, parent, "held")
    endpoint = gapic.endpoints.create_endpoint(
        parent=parent, endpoint=aiplatform_v1.Endpoint(display_name="e")
    ).result()
    emulator_control(emulator.url, "operations:holdNext", {"type": "DeployModel"})
    deploying = gapic.endpoints.deploy_model(
        endpoint=endpoint.name, deployed_model=aiplatform_v1.DeployedModel(model=model)
    )

    emulator.restart()

    assert gapic.pipelines.get_pipeline_job(name=job.name).state.name == "PIPELINE_STATE_PAUSED"
    operation = gapic.endpoints.get_operation(request={"name": deploying.operation.name})
    assert not operation.done
    assert list(gapic.endpoints.get_endpoint(name=endpoint.name).deployed_models) == []

    emulator_control(emulator.url, f"operations/{deploying.operation.name}:release", {})
    assert deploying.result(timeout=10).deployed_model.model_version_id == version
    assert len(gapic.endpoints.get_endpoint(name=endpoint.name).deployed_models) == 1
    emulator_control(emulator.url, f"jobs/{job.name}:resume", {})
    resumed = wait_for(
        lambda: gapic.pipelines.get_pipeline_job(name=job.name), lambda j: terminal_pipeline(j.state)
    )
    assert resumed.state.name == "PIPELINE_STATE_SUCCEEDED"
