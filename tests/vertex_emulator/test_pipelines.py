"""pipelineJobs running tune-large-model, through the GAPIC REST clients (sync and async)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.aio.credentials import AnonymousCredentials as AsyncAnonymousCredentials
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import (
    GPU_REGION,
    TPU_REGION,
    Gapic,
    Upload,
    palm_rows,
    pipeline_job,
    terminal_pipeline,
    wait_for,
)

SUCCEEDED = aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED
FAILED = aiplatform_v1.PipelineState.PIPELINE_STATE_FAILED


def run_to_end(gapic: Gapic, name: str) -> aiplatform_v1.PipelineJob:
    return wait_for(
        lambda: gapic.pipelines.get_pipeline_job(name=name), lambda job: terminal_pipeline(job.state)
    )


def test_tuning_pipeline_succeeds_and_registers_and_deploys_the_model(
    gapic: Gapic, tpu_parent: str, upload: Upload
) -> None:
    dataset = upload("train.jsonl", palm_rows("v1"))
    created = gapic.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=pipeline_job(dataset), pipeline_job_id="tune-1"
    )
    assert created.name == f"{tpu_parent}/pipelineJobs/tune-1"
    assert created.state == aiplatform_v1.PipelineState.PIPELINE_STATE_PENDING
    assert created.template_metadata.version == "v2.0.0"

    job = run_to_end(gapic, created.name)

    assert job.state == SUCCEEDED
    tasks = {task.task_name: task for task in job.job_detail.task_details}
    assert list(tasks) == [
        "tune-large-model",
        "validate-pipeline",
        "export-managed-dataset",
        "dataset-encoder",
        "large-language-model-tuner",
        "upload-llm-model",
        "deploy-llm-model",
    ]
    assert {task.state.name for task in tasks.values()} == {"SUCCEEDED"}
    model_name = tasks["upload-llm-model"].execution.metadata["output:model_resource_name"]
    endpoint_name = tasks["deploy-llm-model"].execution.metadata["output:endpoint_resource_name"]
    assert tasks["tune-large-model"].execution.metadata["output:model_resource_name"] == model_name
    assert job.start_time and job.end_time and job.end_time >= job.start_time

    model = gapic.models.get_model(name=model_name)
    assert model.display_name == "emulator-test-model"
    assert model.labels["google-vertex-llm-tuning-base-model-id"] == "text-bison-001"
    assert model.labels["suite"] == "emulator"
    assert [ref.endpoint for ref in model.deployed_models] == [endpoint_name]
    answer = gapic.prediction.predict(endpoint=endpoint_name, instances=[{"content": "question 3 about v1"}])
    assert answer.predictions[0]["content"] == "v1 answer 3"
    assert answer.deployed_model_id == model.deployed_models[0].deployed_model_id


def test_reusing_a_pipeline_job_id_is_409(gapic: Gapic, tpu_parent: str, upload: Upload) -> None:
    job = pipeline_job(upload("train.jsonl", palm_rows("dup")))
    gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job, pipeline_job_id="same-id")
    with pytest.raises(exceptions.Conflict) as raised:
        gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job, pipeline_job_id="same-id")
    assert raised.value.response.json()["error"]["status"] == "ALREADY_EXISTS"


def test_server_generates_a_job_id_from_the_template_name(
    gapic: Gapic, tpu_parent: str, upload: Upload
) -> None:
    job = pipeline_job(upload("train.jsonl", palm_rows("gen")))
    first = gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job)
    second = gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job)
    assert first.name.rsplit("/", 1)[1].startswith("tune-large-model-")
    assert first.name != second.name


def test_get_unknown_job_is_404(gapic: Gapic, tpu_parent: str) -> None:
    with pytest.raises(exceptions.NotFound):
        gapic.pipelines.get_pipeline_job(name=f"{tpu_parent}/pipelineJobs/nope")


def test_list_filters_on_display_name_and_labels(gapic: Gapic, tpu_parent: str, upload: Upload) -> None:
    dataset = upload("train.jsonl", palm_rows("list"))
    for job_id, display, run in (("a", "alpha", "r1"), ("b", "beta", "r1"), ("c", "alpha", "r2")):
        job = pipeline_job(dataset)
        job.display_name = display
        job.labels = {"run": run}
        gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job, pipeline_job_id=job_id)

    def ids(filter_expr: str) -> list[str]:
        pager = gapic.pipelines.list_pipeline_jobs(request={"parent": tpu_parent, "filter": filter_expr})
        return sorted(job.name.rsplit("/", 1)[1] for job in pager)

    assert ids("") == ["a", "b", "c"]
    assert ids('display_name="alpha"') == ["a", "c"]
    assert ids('labels.run="r1"') == ["a", "b"]
    assert ids('display_name="alpha" AND labels.run="r1"') == ["a"]
    assert ids("labels.run:*") == ["a", "b", "c"]
    assert ids('display_name="beta" OR labels.run="r2"') == ["b", "c"]
    with pytest.raises(exceptions.BadRequest, match="unsupported filter field 'artifact_uri'"):
        ids('artifact_uri="x"')


def test_list_pages(gapic: Gapic, tpu_parent: str, upload: Upload) -> None:
    dataset = upload("train.jsonl", palm_rows("pages"))
    for n in range(5):
        gapic.pipelines.create_pipeline_job(
            parent=tpu_parent, pipeline_job=pipeline_job(dataset), pipeline_job_id=f"p{n}"
        )
    pager = gapic.pipelines.list_pipeline_jobs(request={"parent": tpu_parent, "page_size": 2})
    assert sum(1 for _ in pager.pages) == 3
    assert len(list(gapic.pipelines.list_pipeline_jobs(request={"parent": tpu_parent, "page_size": 2}))) == 5


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("not json\n", ":1: not valid JSON"),
        ([{"input_text": "q"}], ":1: 'output_text' must be a non-empty string"),
        (
            [{"input_text": "q", "output_text": "a"}, {"prompt": "q", "output_text": "a"}],
            ":2: unknown field(s)",
        ),
        ("", ": the dataset has no examples"),
    ],
)
def test_invalid_dataset_fails_the_validation_task(
    gapic: Gapic, tpu_parent: str, upload: Upload, rows: object, problem: str
) -> None:
    uri = upload("bad.jsonl", rows)  # type: ignore[arg-type]
    job = gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=pipeline_job(uri))
    job = run_to_end(gapic, job.name)
    assert job.state == FAILED
    assert f"{uri}{problem}" in job.error.message  # the file, its line and what is wrong, together
    failed = [task.task_name for task in job.job_detail.task_details if task.state.name == "FAILED"]
    assert failed == ["tune-large-model", "validate-pipeline"]


def test_missing_dataset_fails_the_job(gapic: Gapic, tpu_parent: str) -> None:
    uri = "gs://emulator-tests/does/not/exist.jsonl"
    job = gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=pipeline_job(uri))
    job = run_to_end(gapic, job.name)
    assert job.state == FAILED
    assert f"{uri}: no such object" in job.error.message


@pytest.mark.parametrize(
    ("location", "accelerator"), [(GPU_REGION, "TPU"), (TPU_REGION, "GPU"), ("asia-east1", "TPU")]
)
def test_accelerator_and_region_must_agree(
    gapic: Gapic, project: str, upload: Upload, location: str, accelerator: str
) -> None:
    parent = f"projects/{project}/locations/{location}"
    job = pipeline_job(upload("train.jsonl", palm_rows("acc")), location=location, accelerator=accelerator)
    job = run_to_end(gapic, gapic.pipelines.create_pipeline_job(parent=parent, pipeline_job=job).name)
    assert job.state == FAILED
    assert accelerator in job.error.message and location in job.error.message


def test_gpu_tuning_runs_in_us_central1(gapic: Gapic, gpu_parent: str, upload: Upload) -> None:
    job = pipeline_job(upload("train.jsonl", palm_rows("gpu")), location=GPU_REGION, accelerator="GPU")
    job = run_to_end(gapic, gapic.pipelines.create_pipeline_job(parent=gpu_parent, pipeline_job=job).name)
    assert job.state == SUCCEEDED


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"trian_steps": 10}, "trian_steps is not found"),
        ({"train_steps": "ten"}, "train_steps of tune-large-model expects NUMBER_INTEGER"),
        ({"enable_early_stopping": "yes"}, "enable_early_stopping"),
    ],
)
def test_template_parameter_problems_fail_the_job(
    gapic: Gapic, tpu_parent: str, upload: Upload, extra: dict[str, object], problem: str
) -> None:
    job = pipeline_job(upload("train.jsonl", palm_rows("params")), **extra)
    job = run_to_end(gapic, gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job).name)
    assert job.state == FAILED
    assert problem in job.error.message


def test_real_parameter_names_are_accepted(gapic: Gapic, tpu_parent: str, upload: Upload) -> None:
    evaluation = upload("eval.jsonl", palm_rows("eval", 3))
    job = pipeline_job(
        upload("train.jsonl", palm_rows("names")),
        learning_rate_multiplier=1.0,
        evaluation_data_uri=evaluation,
        evaluation_interval=20,
        enable_early_stopping=True,
        enable_checkpoint_selection="default",
        tpu_training_skip_cmek=False,
        tensorboard_resource_id="",
        encryption_spec_key_name="",
        default_context="",
    )
    job = run_to_end(gapic, gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job).name)
    assert job.state == SUCCEEDED, job.error.message


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda job: setattr(job, "template_uri", "https://example.com/other/v1"),
            "cannot fetch pipeline template",
        ),
        (lambda job: setattr(job.runtime_config, "gcs_output_directory", ""), "gcs_output_directory"),
    ],
)
def test_unrunnable_job_is_rejected_at_create(
    gapic: Gapic, tpu_parent: str, upload: Upload, mutate: object, message: str
) -> None:
    job = pipeline_job(upload("train.jsonl", palm_rows("reject")))
    mutate(job)  # type: ignore[operator]
    with pytest.raises(exceptions.BadRequest, match=message):
        gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job)


def test_invalid_job_id_is_400(gapic: Gapic, tpu_parent: str, upload: Upload) -> None:
    with pytest.raises(exceptions.BadRequest, match="invalid pipeline_job_id"):
        gapic.pipelines.create_pipeline_job(
            parent=tpu_parent,
            pipeline_job=pipeline_job(upload("t.jsonl", palm_rows("x"))),
            pipeline_job_id="Bad_Id",
        )


def test_cancel_then_delete(gapic: Gapic, tpu_parent: str, upload: Upload) -> None:
    job = gapic.pipelines.create_pipeline_job(
        parent=tpu_parent,
        pipeline_job=pipeline_job(upload("t.jsonl", palm_rows("cancel")), train_steps=10_000),
    )
    with pytest.raises(exceptions.BadRequest, match="cancel it before deleting"):
        gapic.pipelines.delete_pipeline_job(name=job.name)
    gapic.pipelines.cancel_pipeline_job(name=job.name)
    assert gapic.pipelines.get_pipeline_job(name=job.name).state.name in (
        "PIPELINE_STATE_CANCELLING",
        "PIPELINE_STATE_CANCELLED",
    )
    job = run_to_end(gapic, job.name)
    assert job.state == aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED
    with pytest.raises(exceptions.BadRequest, match="cannot be cancelled"):
        gapic.pipelines.cancel_pipeline_job(name=job.name)
    gapic.pipelines.delete_pipeline_job(name=job.name).result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        gapic.pipelines.get_pipeline_job(name=job.name)


def test_control_plane_pauses_resumes_and_forces_outcomes(
    gapic: Gapic, tpu_parent: str, upload: Upload, vertex_emulator: str
) -> None:
    dataset = upload("t.jsonl", palm_rows("force"))
    long_job = pipeline_job(dataset, train_steps=100_000)
    paused = gapic.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=long_job, pipeline_job_id="paused"
    )
    emulator_control(vertex_emulator, f"jobs/{paused.name}:pause", {})
    assert gapic.pipelines.get_pipeline_job(name=paused.name).state.name == "PIPELINE_STATE_PAUSED"
    emulator_control(vertex_emulator, f"jobs/{paused.name}:resume", {})
    assert gapic.pipelines.get_pipeline_job(name=paused.name).state.name in (
        "PIPELINE_STATE_PENDING",
        "PIPELINE_STATE_RUNNING",
    )
    emulator_control(vertex_emulator, f"jobs/{paused.name}:succeed", {})
    job = gapic.pipelines.get_pipeline_job(name=paused.name)
    assert job.state == SUCCEEDED
    assert job.job_detail.task_details[-2].execution.metadata["output:model_resource_name"]

    doomed = gapic.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=long_job, pipeline_job_id="doomed"
    )
    emulator_control(
        vertex_emulator, f"jobs/{doomed.name}:fail", {"message": "quota exhausted in europe-west4"}
    )
    job = gapic.pipelines.get_pipeline_job(name=doomed.name)
    assert job.state == FAILED
    assert job.error.message == "quota exhausted in europe-west4"


def test_async_rest_client_creates_gets_lists_and_cancels(
    vertex_emulator: str, tpu_parent: str, upload: Upload
) -> None:
    import asyncio

    job = pipeline_job(upload("t.jsonl", palm_rows("async")), train_steps=10_000)

    async def scenario() -> tuple[str, str, list[str], str]:
        client = aiplatform_v1.PipelineServiceAsyncClient(
            credentials=AsyncAnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=vertex_emulator),
            transport="rest_asyncio",
        )
        created = await client.create_pipeline_job(
            parent=tpu_parent, pipeline_job=job, pipeline_job_id="async-1"
        )
        fetched = await client.get_pipeline_job(name=created.name)
        listed = [j.name async for j in await client.list_pipeline_jobs(request={"parent": tpu_parent})]
        await client.cancel_pipeline_job(name=created.name)
        try:
            await client.get_pipeline_job(name=f"{tpu_parent}/pipelineJobs/missing")
            missing = "found"
        except exceptions.NotFound:
            missing = "404"
        await client.transport.close()
        return fetched.name, fetched.state.name, listed, missing

    name, state, listed, missing = asyncio.run(scenario())
    assert listed == [name]
    assert state in ("PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING")
    assert missing == "404"


def test_partial_responses_with_x_goog_fieldmask(gapic: Gapic, tpu_parent: str, upload: Upload) -> None:
    job = gapic.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=pipeline_job(upload("t.jsonl", palm_rows("mask")))
    )
    job = run_to_end(gapic, job.name)
    mask = "name,state,error,jobDetail.taskDetails.taskName,jobDetail.taskDetails.state"
    partial = gapic.pipelines.get_pipeline_job(name=job.name, metadata=[("x-goog-fieldmask", mask)])
    assert (partial.name, partial.state) == (job.name, SUCCEEDED)
    assert partial.display_name == "" and not partial.runtime_config.parameter_values
    assert [(t.task_name, t.state) for t in partial.job_detail.task_details] == [
        (t.task_name, t.state) for t in job.job_detail.task_details
    ]
    assert not partial.job_detail.task_details[-1].execution.metadata


def test_a_model_display_name_vertex_refuses_fails_the_upload_task(
    gapic: Gapic, tpu_parent: str, upload: Upload
) -> None:
    job = pipeline_job(upload("t.jsonl", palm_rows("long-name")), model_display_name="m" * 129)
    job = run_to_end(gapic, gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job).name)
    assert job.state == FAILED
    assert (
        "model.display_name 'mmmm" in job.error.message and "longer than 128 characters" in job.error.message
    )
    failed = [task.task_name for task in job.job_detail.task_details if task.state.name == "FAILED"]
    assert failed == ["tune-large-model", "upload-llm-model"]
