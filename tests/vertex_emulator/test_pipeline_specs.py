"""Compiled pipeline specs: a local tune-large-model JSON through the SDK, the spec Vertex stores, and
the checks Vertex makes on an inline `pipelineSpec`."""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, aiplatform_v1
from google.protobuf import json_format

from tests.vertex_emulator.conftest import (
    GPU_REGION,
    TEMPLATE,
    Gapic,
    Upload,
    palm_rows,
    pipeline_job,
    terminal_pipeline,
    wait_for,
)

COMPILED = Path(__file__).parent / "data" / "tune_large_model_v2.json"
TASKS = [
    "validate-pipeline",
    "export-managed-dataset",
    "dataset-encoder",
    "large-language-model-tuner",
    "upload-llm-model",
    "deploy-llm-model",
]


def compiled() -> dict[str, Any]:
    return dict(json.loads(COMPILED.read_text()))


def stored_spec(job: aiplatform_v1.PipelineJob) -> dict[str, Any]:
    return dict(json_format.MessageToDict(aiplatform_v1.PipelineJob.pb(job).pipeline_spec))


def inline_job(spec: dict[str, Any], dataset: str, **values: Any) -> aiplatform_v1.PipelineJob:
    job = pipeline_job(dataset, location=GPU_REGION, accelerator="GPU", **values)
    job.template_uri = ""
    job.pipeline_spec = spec
    return job


def test_sdk_submits_a_locally_compiled_spec_and_the_job_runs_it(sdk: None, upload: Upload) -> None:
    dataset = upload("train.jsonl", palm_rows("local-spec"))
    job = aiplatform.PipelineJob(
        display_name="tune-from-file",
        template_path=str(COMPILED),
        # A new bucket and (below) a service account: for an existing bucket, or without a service
        # account, submit() asks Resource Manager (no network here: a minute of retries) for the
        # project number (google.cloud.aiplatform.utils.gcs_utils).
        pipeline_root=f"gs://aria-pipeline-root-{uuid.uuid4().hex[:8]}",
        parameter_values={
            "project": "aria-local",
            "location": GPU_REGION,
            "dataset_uri": dataset,
            "train_steps": 5,
            "accelerator_type": "GPU",
            "model_display_name": "from-local-spec",
        },
        labels={"source": "local-file"},
    )
    job.submit(service_account="tuner@aria-local.iam.gserviceaccount.com")
    assert job.resource_name.split("/pipelineJobs/")[1].startswith("tune-large-model-")

    state = wait_for(lambda: job.state, terminal_pipeline)

    assert state == aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED, job.gca_resource.error
    assert stored_spec(job.gca_resource) == compiled()  # Vertex keeps the spec it was sent
    assert not job.gca_resource.template_uri and not job.gca_resource.template_metadata.version
    tasks = {t.task_name: t for t in job.task_details}
    assert list(tasks) == ["tune-large-model", *TASKS]
    model = aiplatform.Model(tasks["upload-llm-model"].execution.metadata["output:model_resource_name"])
    assert (model.display_name, model.labels["source"]) == ("from-local-spec", "local-file")
    endpoint = aiplatform.Endpoint(
        tasks["deploy-llm-model"].execution.metadata["output:endpoint_resource_name"]
    )
    assert endpoint.predict(instances=[{"content": "question 2 about local-spec"}]).predictions[0][
        "content"
    ] == ("local-spec answer 2")


def test_a_template_uri_job_stores_the_templates_compiled_spec(
    gapic: Gapic, tpu_parent: str, upload: Upload
) -> None:
    job = gapic.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=pipeline_job(upload("t.jsonl", palm_rows("shape")))
    )
    spec = stored_spec(gapic.pipelines.get_pipeline_job(name=job.name))

    assert spec["pipelineInfo"]["name"] == "tune-large-model"
    assert (spec["schemaVersion"], spec["sdkVersion"]) == ("2.1.0", "kfp-2.0.0")
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == set(TASKS)  # a Struct keeps no key order: the dependencies give the order
    for name, task in tasks.items():
        component = spec["components"][task["componentRef"]["name"]]
        assert component["executorLabel"] in spec["deploymentSpec"]["executors"], name
        for parameter, source in task["inputs"]["parameters"].items():
            assert source == {"componentInputParameter": parameter}
            assert parameter in spec["root"]["inputDefinitions"]["parameters"]
    assert [tasks[t].get("dependentTasks") for t in TASKS] == [None] + [[t] for t in TASKS[:-1]]
    # The spec the tests compiled locally is a build of the same template: same tasks, same inputs.
    local = compiled()
    assert set(local["root"]["dag"]["tasks"]) == set(tasks)
    assert local["root"]["inputDefinitions"] == spec["root"]["inputDefinitions"]
    assert job.template_metadata.version == "v2.0.0"


def test_gapic_inline_spec_with_a_bad_parameter_fails_like_the_template(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    job = inline_job(compiled(), upload("t.jsonl", palm_rows("inline")), trian_steps=3)
    created = gapic.pipelines.create_pipeline_job(parent=gpu_parent, pipeline_job=job)
    done = wait_for(
        lambda: gapic.pipelines.get_pipeline_job(name=created.name), lambda j: terminal_pipeline(j.state)
    )
    assert done.state == aiplatform_v1.PipelineState.PIPELINE_STATE_FAILED
    assert "trian_steps is not found in the pipeline job input definitions of tune-large-model" in (
        done.error.message
    )


def test_any_other_valid_spec_runs_its_tasks_in_dependency_order(gapic: Gapic, gpu_parent: str) -> None:
    spec = {
        "pipelineInfo": {"name": "Hello World"},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.7.0",
        "components": {"comp-say": {"executorLabel": "exec-say"}},
        "deploymentSpec": {"executors": {"exec-say": {"container": {"image": "python:3.11"}}}},
        "root": {
            "dag": {
                "tasks": {
                    "b-second": {"componentRef": {"name": "comp-say"}, "dependentTasks": ["c-first"]},
                    "a-third": {"componentRef": {"name": "comp-say"}, "dependentTasks": ["b-second"]},
                    "c-first": {"componentRef": {"name": "comp-say"}},
                }
            },
            "inputDefinitions": {
                "parameters": {"greeting": {"parameterType": "STRING", "defaultValue": "hi"}}
            },
        },
    }
    job = inline_job(spec, "gs://unused/x.jsonl")
    job.runtime_config.parameter_values = {}
    created = gapic.pipelines.create_pipeline_job(parent=gpu_parent, pipeline_job=job)
    assert created.name.split("/pipelineJobs/")[1].startswith("hello-world-")
    done = wait_for(
        lambda: gapic.pipelines.get_pipeline_job(name=created.name), lambda j: terminal_pipeline(j.state)
    )
    assert done.state == aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED, done.error.message
    assert [t.task_name for t in done.job_detail.task_details] == [
        "Hello World",
        "c-first",
        "b-second",
        "a-third",
    ]


_DELETE = object()


def _edit(path: str, value: Any = _DELETE) -> Any:
    """A change to a spec: set the dotted `path` to `value`, or delete it."""

    def change(spec: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = spec
        for part in parents:
            target = target[part]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value

    return change


def _without(path: str) -> Any:
    return _edit(path)


def _set(path: str, value: Any) -> Any:
    return _edit(path, value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_without("schemaVersion"), "pipeline_spec.schemaVersion is required"),
        (_without("root"), "pipeline_spec.root is required"),
        (_set("pipelineInfo", {"description": "x"}), "pipelineInfo.name is required"),
        (_set("root.dag.tasks", {}), "root.dag.tasks is empty"),
        (
            _set("root.dag.tasks.dataset-encoder.componentRef.name", "comp-missing"),
            "componentRef.name 'comp-missing' is not in pipeline_spec.components",
        ),
        (
            _without("deploymentSpec.executors.exec-dataset-encoder"),
            "executorLabel 'exec-dataset-encoder' is not in pipeline_spec.deploymentSpec.executors",
        ),
        (
            _set("root.dag.tasks.validate-pipeline.dependentTasks", ["deploy-llm-model"]),
            "dependency cycle",
        ),
        (
            _set("root.dag.tasks.validate-pipeline.dependentTasks", ["nowhere"]),
            "dependentTasks names unknown tasks ['nowhere']",
        ),
        (
            _set("root.inputDefinitions.parameters.train_steps", {"parameterType": "NUMBER"}),
            "parameters['train_steps'] has unknown type 'NUMBER'",
        ),
    ],
)
def test_an_invalid_inline_spec_is_400(gapic: Gapic, gpu_parent: str, change: Any, message: str) -> None:
    spec = copy.deepcopy(compiled())
    change(spec)
    with pytest.raises(exceptions.BadRequest, match=re.escape(message)):
        gapic.pipelines.create_pipeline_job(
            parent=gpu_parent, pipeline_job=inline_job(spec, "gs://b/t.jsonl")
        )


def test_a_job_with_neither_spec_nor_template_is_400(gapic: Gapic, gpu_parent: str) -> None:
    job = pipeline_job("gs://b/t.jsonl")
    job.template_uri = ""
    with pytest.raises(
        exceptions.BadRequest, match=r"pipeline_spec or PipelineJob\.template_uri is required"
    ):
        gapic.pipelines.create_pipeline_job(parent=gpu_parent, pipeline_job=job)


def test_the_template_uri_is_unchanged_by_an_inline_copy(gapic: Gapic, tpu_parent: str) -> None:
    """The SDK with an Artifact Registry URL sends both: the job is a template job."""
    job = pipeline_job("gs://b/t.jsonl")
    job.pipeline_spec = compiled()
    created = gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=job)
    assert (created.template_uri, created.template_metadata.version) == (TEMPLATE, "v2.0.0")
    assert stored_spec(created) == compiled()
