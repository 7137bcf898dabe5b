"""pipelineJobs running the `tune-large-model` template.

The job runs the template's tasks on the emulator's clock: validate-pipeline (parameters,
accelerator vs region, the dataset in GCS), export-managed-dataset, dataset-encoder,
large-language-model-tuner (train_steps x seconds-per-step), upload-llm-model (registers the
tuned model; its execution metadata carries `output:model_resource_name`, where the Vertex SDK
reads it) and deploy-llm-model (creates an endpoint; `output:endpoint_resource_name`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from vertex_emulator import datasets, lifecycle, names, templates
from vertex_emulator.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument
from vertex_emulator.jobs import JobService
from vertex_emulator.lifecycle import Phase, StepFailed, rfc3339
from vertex_emulator.operations import generic_metadata

KIND = "pipelineJobs"
TASKS = (
    "validate-pipeline",
    "export-managed-dataset",
    "dataset-encoder",
    "large-language-model-tuner",
    "upload-llm-model",
    "deploy-llm-model",
)
_TASK_STATE = {
    Phase.PENDING: "PENDING",
    Phase.RUNNING: "RUNNING",
    Phase.PAUSED: "RUNNING",
    Phase.CANCELLING: "CANCELLING",
    Phase.CANCELLED: "CANCELLED",
    Phase.FAILED: "FAILED",
    Phase.SUCCEEDED: "SUCCEEDED",
}
_EXECUTION_STATE = {
    "SUCCEEDED": "COMPLETE",
    "RUNNING": "RUNNING",
    "FAILED": "FAILED",
    "CANCELLED": "CANCELLED",
    "CANCELLING": "RUNNING",
    "PENDING": "NEW",
}
BASE_MODEL_LABEL = "google-vertex-llm-tuning-base-model-id"


def parameter_values(runtime_config: dict[str, Any]) -> dict[str, Any]:
    """`runtimeConfig.parameterValues`, plus the deprecated typed `parameters` map."""
    values = dict(runtime_config.get("parameterValues") or {})
    for key, typed in (runtime_config.get("parameters") or {}).items():
        values.setdefault(key, next(iter(typed.values()), None) if typed else None)
    return values


class Pipelines(JobService):
    KIND = KIND
    LABEL = "PipelineJob"
    STATE_PREFIX = "PIPELINE_STATE_"
    FILTER_FIELDS = frozenset({"displayName", "state", "templateUri", "name"})

    def create(self, parent: str, job: dict[str, Any], job_id: str) -> dict[str, Any]:
        names.check_parent(parent)
        template = templates.find(job.get("templateUri", ""))
        if template is None:
            raise InvalidArgument(
                f"cannot fetch pipeline template {job.get('templateUri')!r}: the emulator knows "
                f"{sorted(templates.TEMPLATES)} (inline pipelineSpec is not emulated)"
            )
        runtime = job.get("runtimeConfig") or {}
        if not runtime.get("gcsOutputDirectory"):
            raise InvalidArgument(
                "PipelineJob.runtime_config.gcs_output_directory (the pipeline root) is required"
            )
        if job_id and not names.USER_ID.match(job_id):
            raise InvalidArgument(f"invalid pipeline_job_id {job_id!r}: expected [a-z0-9][a-z0-9-]{{0,127}}")
        now = self.backend.now()
        with self.store.lock:
            job_id = job_id or self._generated_id(template.name, now)
            name = f"{parent}/pipelineJobs/{job_id}"
            if self.store.get(KIND, name) is not None:
                raise AlreadyExists(f"PipelineJob {name} already exists")
            params, problem = templates.check_parameters(template, parameter_values(runtime))
            settings = self.backend.settings
            steps = params.get("train_steps") if problem is None else 0
            schedule = [("start", settings.pending_seconds)] + [
                (
                    task,
                    max(0, int(steps or 0)) * settings.seconds_per_step
                    if task == "large-language-model-tuner"
                    else settings.phase_seconds,
                )
                for task in TASKS
            ]
            resource = {
                **{k: v for k, v in job.items() if k not in ("name", "state", "jobDetail", "error")},
                "name": name,
                "displayName": job.get("displayName") or job_id,
                "createTime": rfc3339(now),
                "updateTime": rfc3339(now),
                "pipelineSpec": template.pipeline_spec(),
                "templateMetadata": {"version": template.version},
                "state": "PIPELINE_STATE_PENDING",
            }
            internal = {
                **lifecycle.new_job(now, schedule),
                "seq": self.backend.seq(),
                "template": template.uri,
                "params": params,
                "problem": problem,
                "examples": [],
                "outputs": {},
            }
            record = {"resource": resource, "internal": internal}
            self.store.put(KIND, name, record)
            return self.view(record)

    def find_jobs(self, parent: str, filter_expr: str, order_by: str) -> list[dict[str, Any]]:
        """Creation order; `order_by="create_time desc"` for newest first."""
        newest_first = order_by.split() in (["create_time", "desc"], ["createTime", "desc"])
        return self.find(parent, filter_expr, newest_first)

    def delete(self, name: str) -> dict[str, Any]:
        with self.store.lock:
            record = self.refresh(name)
            if lifecycle.phase(record["internal"]) not in lifecycle.TERMINAL:
                raise FailedPrecondition(
                    f"PipelineJob {name} is {lifecycle.phase(record['internal'])}; cancel it before deleting"
                )
            self.store.delete(KIND, name)
        return self.backend.operations.create(
            names.parse(name, KIND).parent,
            "DeleteOperationMetadata",
            generic_metadata(self.backend.now()),
            "type.googleapis.com/google.protobuf.Empty",
            {},
        )

    # -- the template's tasks ---------------------------------------------------------------
    def hooks(self, record: dict[str, Any]) -> dict[str, lifecycle.Hook]:
        internal = record["internal"]
        params = internal["params"]
        job_name = names.parse(record["resource"]["name"], KIND)
        forced = internal.get("forced") == "succeed"

        def start(at: float) -> None:
            if internal["problem"] and not forced:
                raise StepFailed(internal["problem"], lifecycle.CODE_INVALID_ARGUMENT)

        def validate(at: float) -> None:
            template = templates.TEMPLATES[internal["template"]]
            accelerator = (params.get("accelerator_type") or "").upper()
            problems = []
            if params.get("large_model_reference") not in template.base_models:
                problems.append(
                    f"large_model_reference {params.get('large_model_reference')!r} cannot be tuned by "
                    f"{template.name}; supported: {list(template.base_models)}"
                )
            if accelerator and accelerator not in template.accelerator_regions:
                problems.append(
                    f"accelerator_type {accelerator!r} is not one of {sorted(template.accelerator_regions)}"
                )
            elif accelerator and template.accelerator_regions[accelerator] != job_name.location:
                problems.append(
                    f"accelerator_type {accelerator} tuning runs only in "
                    f"{template.accelerator_regions[accelerator]}, "
                    f"but the pipeline job runs in {job_name.location}"
                )
            elif not accelerator and job_name.location not in template.accelerator_regions.values():
                problems.append(
                    f"tune-large-model runs in europe-west4 (TPU) or us-central1 (GPU), "
                    f"not {job_name.location}"
                )
            try:
                dataset = datasets.read_palm(self.backend.gcs, params.get("dataset_uri", ""))
                internal["examples"] = dataset.examples
                if params.get("evaluation_data_uri"):
                    datasets.read_palm(self.backend.gcs, params["evaluation_data_uri"])
            except datasets.DatasetInvalid as invalid:
                problems.append(f"dataset validation failed: {invalid}")
            if problems and not forced:
                raise StepFailed("; ".join(problems))

        def upload(at: float) -> None:
            location = params.get("location") or job_name.location
            project = params.get("project") or job_name.project
            job_id = job_name.id
            labels = {
                **(record["resource"].get("labels") or {}),
                BASE_MODEL_LABEL: str(params.get("large_model_reference", "")).replace("@", "-"),
                "google-vertex-llm-tuning-job-id": job_id[:63],
            }
            model = self.backend.models.upload(
                f"projects/{project}/locations/{location}",
                {
                    "displayName": params.get("model_display_name")
                    or f"{params.get('large_model_reference')}-{job_id}",
                    "labels": labels,
                    "artifactUri": f"{record['resource']['runtimeConfig']['gcsOutputDirectory'].rstrip('/')}"
                    f"/{job_id}/large-language-model-tuner/adapter",
                    "description": f"Tuned by pipeline job {record['resource']['name']}",
                },
                examples=internal["examples"],
            )
            internal["outputs"]["model_resource_name"] = model["name"]
            internal["examples"] = []  # the model keeps them now; job reads stay small

        def deploy(at: float) -> None:
            model_name = internal["outputs"]["model_resource_name"]
            model = self.backend.models.get(model_name)
            endpoint = self.backend.endpoints.create_now(
                model_name.rsplit("/models/", 1)[0],
                {"displayName": model["displayName"], "labels": model["labels"]},
            )
            self.backend.endpoints.deploy_now(endpoint["name"], {"model": model_name}, {})
            internal["outputs"]["endpoint_resource_name"] = endpoint["name"]

        return {
            "start": start,
            "validate-pipeline": validate,
            "upload-llm-model": upload,
            "deploy-llm-model": deploy,
        }

    # -- the wire shape ---------------------------------------------------------------------
    def _generated_id(self, pipeline_name: str, now: float) -> str:
        stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d%H%M%S")
        base = f"{pipeline_name}-{stamp}"
        candidate, n = base, 1
        while any(name.endswith("/" + candidate) for name in self.store.names(KIND)):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        job = record["internal"]
        resource = {**record["resource"], **self.lifecycle_fields(job)}
        resource["jobDetail"] = self._job_detail(resource, job, lifecycle.phase(job), lifecycle.end_time(job))
        return resource

    def _job_detail(
        self, resource: dict[str, Any], job: dict[str, Any], state: Phase, end: float | None
    ) -> dict[str, Any]:
        parsed = names.parse(resource["name"], KIND)
        store = f"{parsed.parent}/metadataStores/default"
        tasks = []
        outputs = job["outputs"]
        root_metadata = {f"output:{k}": v for k, v in outputs.items()} if state is Phase.SUCCEEDED else {}
        root_state = _TASK_STATE[state]
        tasks.append(
            _task(
                store,
                parsed.id,
                1,
                None,
                "tune-large-model",
                job["createdAt"],
                job["times"].get("RUNNING"),
                end,
                root_state,
                "system.DAGExecution",
                root_metadata,
                None,
            )
        )
        for index, task_name in enumerate(TASKS, start=1):
            if index > job["stepsDone"]:
                break
            finished = index < job["stepsDone"]
            if finished:
                task_state = "SUCCEEDED"
            elif state is Phase.FAILED and job["failedStep"] == task_name:
                task_state = "FAILED"
            elif state is Phase.SUCCEEDED:
                task_state = "SUCCEEDED"
            else:
                task_state = _TASK_STATE[state]
            metadata = {}
            if task_name == "upload-llm-model" and "model_resource_name" in outputs:
                metadata["output:model_resource_name"] = outputs["model_resource_name"]
            if task_name == "deploy-llm-model" and "endpoint_resource_name" in outputs:
                metadata["output:endpoint_resource_name"] = outputs["endpoint_resource_name"]
            task_end = lifecycle.step_time(job, index) if task_state == "SUCCEEDED" else end
            error = job["failure"] if task_state == "FAILED" else None
            tasks.append(
                _task(
                    store,
                    parsed.id,
                    index + 1,
                    1,
                    task_name,
                    lifecycle.step_start_time(job, index),
                    lifecycle.step_start_time(job, index),
                    task_end,
                    task_state,
                    "system.ContainerExecution",
                    metadata,
                    error,
                )
            )
        return {
            "pipelineContext": {
                "name": f"{store}/contexts/tune-large-model",
                "displayName": "tune-large-model",
            },
            "pipelineRunContext": {"name": f"{store}/contexts/{parsed.id}", "displayName": parsed.id},
            "taskDetails": tasks,
        }


def _task(
    store: str,
    job_id: str,
    task_id: int,
    parent_id: int | None,
    task_name: str,
    created: float,
    started: float | None,
    ended: float | None,
    state: str,
    schema: str,
    metadata: dict[str, Any],
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskId": str(task_id),
        "taskName": task_name,
        "createTime": rfc3339(created),
        "state": state,
        "execution": {
            "name": f"{store}/executions/{job_id}-{task_id}",
            "displayName": task_name,
            "state": _EXECUTION_STATE[state],
            "schemaTitle": schema,
            "metadata": metadata,
        },
    }
    if parent_id is not None:
        task["parentTaskId"] = str(parent_id)
    if started is not None:
        task["startTime"] = rfc3339(started)
    if ended is not None and state in ("SUCCEEDED", "FAILED", "CANCELLED"):
        task["endTime"] = rfc3339(ended)
    if error:
        task["error"] = error
    return task
