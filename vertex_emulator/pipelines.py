"""pipelineJobs: the `tune-large-model` template, by `templateUri` or as a locally compiled spec.

A job runs its compiled spec's root-DAG tasks on the emulator's clock. For tune-large-model
(submitted by `templateUri` or as an inline `pipelineSpec` of that pipeline) the tasks do what the
template does: validate-pipeline (parameters, accelerator vs region, the dataset in GCS),
export-managed-dataset, dataset-encoder, large-language-model-tuner (train_steps x
seconds-per-step), upload-llm-model (registers the tuned model; its execution metadata carries
`output:model_resource_name`, where the Vertex SDK reads it) and deploy-llm-model (creates an
endpoint; `output:endpoint_resource_name`). Any other valid compiled spec runs its tasks as no-ops.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from google.cloud.aiplatform_v1.types import pipeline_state

from vertex_emulator import (
    datasets,
    fields,
    filters,
    lifecycle,
    names,
    pipeline_detail,
    pipeline_specs,
    templates,
    training_curve,
)
from vertex_emulator.exceptions import AlreadyExists, EmulatorError, FailedPrecondition, InvalidArgument
from vertex_emulator.jobs import JobService
from vertex_emulator.lifecycle import StepFailed, rfc3339
from vertex_emulator.operations import generic_metadata

log = logging.getLogger("vertex_emulator.pipelines")

KIND = "pipelineJobs"
#: tune-large-model's tasks (also what jobs recorded before specs were kept ran).
TASKS = tuple(task.name for task in templates.TUNE_LARGE_MODEL.tasks)
TUNER = "large-language-model-tuner"
BASE_MODEL_LABEL = "google-vertex-llm-tuning-base-model-id"

# ListPipelineJobsRequest.filter and .order_by as documented in
# google/cloud/aiplatform/v1/pipeline_service.proto (googleapis/googleapis; the Vertex REST
# reference for pipelineJobs.list says the same): default order create_time desc.
LIST = filters.Schema(
    "PipelineJob",
    (
        filters.Field(
            "pipeline_name",
            filters.STRING,
            filters.EQUALITY,
            get=lambda job: (job.get("pipelineSpec") or {}).get("pipelineInfo", {}).get("name"),
        ),
        filters.Field("display_name", filters.STRING, filters.WILDCARD),
        filters.Field("pipeline_job_user_id", filters.ID, filters.WILDCARD, get=filters.resource_id),
        filters.Field(
            "state",
            filters.ENUM,
            filters.EQUALITY,
            choices=frozenset(pipeline_state.PipelineState.__members__),
        ),
        filters.Field("create_time", filters.TIME, filters.COMPARISONS),
        filters.Field("update_time", filters.TIME, filters.COMPARISONS),
        filters.Field("end_time", filters.TIME, filters.COMPARISONS),
        filters.Field("start_time", filters.TIME, frozenset()),
        filters.Field("labels", filters.LABELS, frozenset()),
        filters.Field("template_uri", filters.STRING, filters.WILDCARD),
        filters.Field("template_metadata.version", filters.STRING, filters.WILDCARD),
    ),
    order_by=("create_time", "update_time", "end_time", "start_time"),
)
DEFAULT_ORDER = "create_time desc"


def parameter_values(runtime_config: dict[str, Any]) -> dict[str, Any]:
    """`runtimeConfig.parameterValues`, plus the deprecated typed `parameters` map."""
    values = dict(runtime_config.get("parameterValues") or {})
    for key, typed in (runtime_config.get("parameters") or {}).items():
        values.setdefault(key, next(iter(typed.values()), None) if typed else None)
    return values


def _spec_of(job: dict[str, Any]) -> tuple[dict[str, Any], templates.Template | None]:
    """The compiled spec the job runs and, when it is tune-large-model, the template."""
    uri = job.get("templateUri", "")
    if uri:
        template = templates.find(uri)
        if template is None:
            raise InvalidArgument(
                f"cannot fetch pipeline template {uri!r}: the emulator knows {sorted(templates.TEMPLATES)}"
            )
        # The SDK sends the spec it fetched along with the URI; Vertex keeps what it fetched.
        return job.get("pipelineSpec") or template.pipeline_spec(), template
    spec = job.get("pipelineSpec")
    if not spec:
        raise InvalidArgument("PipelineJob.pipeline_spec or PipelineJob.template_uri is required")
    return spec, templates.named(str((spec.get("pipelineInfo") or {}).get("name", "")))


class Pipelines(JobService):
    KIND = KIND
    LABEL = "PipelineJob"
    STATE_PREFIX = "PIPELINE_STATE_"
    LIST = LIST

    def create(self, parent: str, job: dict[str, Any], job_id: str) -> dict[str, Any]:
        names.check_parent(parent)
        fields.check_display_name(job.get("displayName"), "pipeline_job.display_name", required=False)
        fields.check_labels(job.get("labels"), "pipeline_job.labels")
        spec, template = _spec_of(job)
        plan = pipeline_specs.read(spec)
        runtime = job.get("runtimeConfig") or {}
        if not runtime.get("gcsOutputDirectory"):
            raise InvalidArgument(
                "PipelineJob.runtime_config.gcs_output_directory (the pipeline root) is required"
            )
        if job_id and not names.USER_ID.match(job_id):
            raise InvalidArgument(f"invalid pipeline_job_id {job_id!r}: expected [a-z0-9][a-z0-9-]{{0,127}}")
        now = self.backend.now()
        with self.store.lock:
            job_id = job_id or self._generated_id(plan.name, now)
            name = f"{parent}/pipelineJobs/{job_id}"
            if self.store.get(KIND, name) is not None:
                raise AlreadyExists(f"PipelineJob {name} already exists")
            params, problem = pipeline_specs.check_parameters(
                plan.name, plan.parameters, parameter_values(runtime)
            )
            settings = self.backend.settings
            steps = params.get("train_steps") if problem is None and template is not None else 0
            schedule = [("start", settings.pending_seconds)] + [
                (
                    task,
                    max(0, int(steps or 0)) * settings.seconds_per_step
                    if task == TUNER
                    else settings.phase_seconds,
                )
                for task in plan.tasks
            ]
            resource = {
                **{k: v for k, v in job.items() if k not in ("name", "state", "jobDetail", "error")},
                "name": name,
                "displayName": job.get("displayName") or job_id,
                "createTime": rfc3339(now),
                "updateTime": rfc3339(now),
                "pipelineSpec": spec,
                "state": "PIPELINE_STATE_PENDING",
            }
            if job.get("templateUri") and template is not None:
                resource["templateMetadata"] = {"version": template.version}
            internal = {
                **lifecycle.new_job(now, schedule),
                "seq": self.backend.seq(),
                "template": template.uri if template is not None else "",
                "pipeline": plan.name,
                "tasks": list(plan.tasks),
                "params": params,
                "problem": problem,
                "examples": [],
                "outputs": {},
            }
            record = {"resource": resource, "internal": internal}
            self.store.put(KIND, name, record)
            return self.view(record)

    def find_jobs(self, parent: str, filter_expr: str, order_by: str) -> list[dict[str, Any]]:
        """ListPipelineJobs: newest first unless `order_by` says otherwise, as documented."""
        return filters.order(self.find(parent, filter_expr, False), order_by, LIST, DEFAULT_ORDER)

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
        template = templates.TEMPLATES.get(internal["template"]) or templates.named(
            internal.get("pipeline", "")
        )

        def start(at: float) -> None:
            if internal["problem"] and not forced:
                raise StepFailed(internal["problem"], lifecycle.CODE_INVALID_ARGUMENT)

        if template is None:
            return {"start": start}  # a pipeline the emulator does not know: its tasks are no-ops

        def validate(at: float) -> None:
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

        def tune(at: float) -> None:
            """The tuner's TensorBoard scalars in the pipeline root, named as its output artifact."""
            root = record["resource"]["runtimeConfig"]["gcsOutputDirectory"].rstrip("/")
            metrics = f"{root}/{job_name.id}/{TUNER}/tensorboard_metrics"
            points = training_curve.curve(
                job_name.id,
                int(params.get("train_steps") or 1),
                len(internal["examples"]),
                int(params.get("evaluation_interval") or 20),
                bool(params.get("evaluation_data_uri")),
            )
            try:
                self.backend.gcs.write_text(
                    f"{metrics}/{training_curve.SCALARS}", training_curve.jsonl(points)
                )
            except datasets.DatasetInvalid as refused:
                # Lenient where Vertex is not (the real tuner fails without its pipeline root): the run goes
                # on and reports no metrics artifact, so emulator tests need not create the bucket.
                log.warning("no tensorboard metrics for %s: %s", job_name.id, refused)
                return
            internal["outputs"]["tensorboard_metrics"] = metrics

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
            if internal.get("degradeOutput"):  # steered through the control plane (`jobs/...:degrade`)
                self.backend.models.set_degraded(f"{model['name']}@{model['versionId']}", True)
            internal["examples"] = []  # the model keeps them now; job reads stay small

        def deploy(at: float) -> None:
            model_name = internal["outputs"].get("model_resource_name")
            if model_name is None:
                return  # a compiled spec without upload-llm-model: nothing to deploy
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
            TUNER: tune,
            "upload-llm-model": _task_fails_on_refusal(upload),
            "deploy-llm-model": _task_fails_on_refusal(deploy),
        }

    # -- the wire shape ---------------------------------------------------------------------
    def _generated_id(self, pipeline_name: str, now: float) -> str:
        """`{pipeline name}-{UTC timestamp}`, the pattern the SDK also uses for its own job ids."""
        stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d%H%M%S")
        slug = re.sub("[^-0-9a-z]+", "-", pipeline_name.lower()).strip("-")[:100] or "pipeline"
        base = f"{slug}-{stamp}"
        candidate, n = base, 1
        while any(name.endswith("/" + candidate) for name in self.store.names(KIND)):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        job = record["internal"]
        resource = {**record["resource"], **self.lifecycle_fields(job)}
        pipeline, tasks = job.get("pipeline", "tune-large-model"), tuple(job.get("tasks", TASKS))
        resource["jobDetail"] = pipeline_detail.job_detail(resource["name"], pipeline, tasks, job)
        return resource


def _task_fails_on_refusal(hook: lifecycle.Hook) -> lifecycle.Hook:
    """A task whose Vertex call is refused (e.g. a model display name over 128 characters) fails
    the pipeline, as the real task would, instead of failing the read that advanced the job."""

    def run(at: float) -> None:
        try:
            hook(at)
        except EmulatorError as refused:
            raise StepFailed(refused.message, lifecycle.CODE_FAILED_PRECONDITION) from refused

    return run
