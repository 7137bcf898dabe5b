"""What we ask Vertex AI to tune and what its answers mean: job identity, the request, states, decisions.

Pure functions and data, no Airflow and no Google import, so the tuning operator's decisions
(validate, re-attach or resubmit, what to send) are unit-tested without any server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aria_tuning.catalog import TUNE_LARGE_MODEL_TEMPLATE, ModelSpec, TuningMethod, get_model
from aria_tuning.errors import ConfigurationError, PlanError, VertexError
from aria_tuning.resources import label_key, label_value

#: Label carrying the idempotency key (dag_id, run_id, task_id, map_index) on every job we start.
LABEL_RUN_KEY = "aria-run-key"
#: Label carrying the attempt number (1, 2, ...) of a job for one run key.
LABEL_ATTEMPT = "aria-attempt"
#: Labels naming the task instance a job belongs to (label-safe, so lossy: the run key confirms a match).
#: The registry labels model versions with the same `aria-dag` and `aria-dag-run`.
LABEL_DAG = "aria-dag"
LABEL_DAG_RUN = "aria-dag-run"
LABEL_TASK = "aria-task"
#: Label of a model version the registry operator made from a tuning job: its job's id.
LABEL_TUNING_JOB = "aria-tuning-job"

# Vertex's states without their enum prefix (PIPELINE_STATE_*, JOB_STATE_*).
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
PAUSED = "PAUSED"
#: A job in one of these states is over and may be replaced by a new attempt.
RESUBMITTABLE = frozenset({FAILED, CANCELLED, EXPIRED})
TERMINAL = RESUBMITTABLE | {SUCCEEDED}

_ADAPTER_SIZES = {
    1: "ADAPTER_SIZE_ONE",
    2: "ADAPTER_SIZE_TWO",
    4: "ADAPTER_SIZE_FOUR",
    8: "ADAPTER_SIZE_EIGHT",
    16: "ADAPTER_SIZE_SIXTEEN",
}


def short_state(state: object) -> str:
    """`PIPELINE_STATE_RUNNING` / `JOB_STATE_RUNNING` / enum member -> `RUNNING`."""
    name = getattr(state, "name", None) or str(state)
    return re.sub(r"^(PIPELINE_STATE_|JOB_STATE_)", "", name.rsplit(".", 1)[-1])


def run_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The idempotency key of one task of one DAG run; the try number is deliberately left out."""
    digest = hashlib.sha256(f"{dag_id}\x00{run_id}\x00{task_id}\x00{map_index}".encode()).hexdigest()
    return digest[:20]


def identity_labels(dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
    """Labels that let the reconciler find a job's task instance (the run key alone is a one-way hash)."""
    return {
        LABEL_DAG: label_value(dag_id),
        LABEL_DAG_RUN: label_value(run_id),
        LABEL_TASK: label_value(task_id),
    }


def job_id(task_id: str, key: str, attempt: int) -> str:
    """A client-chosen pipeline job id (`[a-z][-a-z0-9]{0,127}`) recording the attempt."""
    slug = re.sub(r"[^a-z0-9]+", "-", task_id.lower()).strip("-")[:40] or "task"
    return f"aria-{slug}-{key}-a{attempt}"


def _as_int(name: str, value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a plan's epochs travel as 3.0
    try:
        number = int(str(value))
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}") from exc
    if number <= 0:
        raise ConfigurationError(f"{name} must be positive, got {number}")
    return number


def _gcs_uri(name: str, value: object, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise ConfigurationError(f"{name} is required (a gs:// URI)")
        return None
    text = str(value)
    if not re.match(r"^gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/.*)?$", text):
        raise ConfigurationError(f"{name} must be a gs://bucket/path URI, got {text!r}")
    return text


@dataclass(frozen=True)
class TuningRequest:
    """A validated tuning run: everything needed to build the Vertex request."""

    model: ModelSpec
    project: str
    region: str
    training_data_uri: str
    evaluation_data_uri: str | None
    train_steps: int | None
    epochs: int | None
    learning_rate_multiplier: float
    accelerator: str | None
    tuned_model_display_name: str
    pipeline_root: str | None
    labels: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
    kms_key_name: str | None = None
    adapter_size: int | None = None

    @property
    def method(self) -> TuningMethod:
        return self.model.method


#: The fields of a data-prep plan (`aria_tuning.dataprep.plan.TuningPlan.to_dict()`) the request uses.
PLAN_FIELDS = ("model", "accelerator", "region", "train_steps", "epochs", "max_train_steps", "adapter_size")


def validate_tuning_request(
    *,
    plan: Mapping[str, Any],
    project: str | None,
    training_data_uri: object,
    evaluation_data_uri: object = None,
    learning_rate_multiplier: object = 1.0,
    tuned_model_display_name: str = "ARIA-text",
    pipeline_root: object = None,
    labels: dict[str, str] | None = None,
    service_account: str | None = None,
    kms_key_name: str | None = None,
) -> TuningRequest:
    """Check the plan (one value, as data prep made it) and every other parameter before Vertex sees them.

    Raises naming the bad one; nothing here calls Vertex.
    """
    if not isinstance(plan, Mapping):
        raise ConfigurationError(f"plan must be the mapping data prep returns, got {type(plan).__name__}")
    unknown = set(plan) - set(PLAN_FIELDS) - _INFORMATIVE_PLAN_FIELDS
    if unknown:
        raise ConfigurationError(f"plan has unknown fields {sorted(unknown)}; expected {list(PLAN_FIELDS)}")
    if not plan.get("model"):
        raise ConfigurationError("plan names no base model (plan.model)")
    model = get_model(str(plan["model"]))
    accelerator = plan.get("accelerator") or None
    region = plan.get("region") or None
    if not project:
        raise ConfigurationError("no GCP project: pass project_id or set `project` on the connection")
    steps, max_steps, epoch_count = (
        _as_int("train_steps", plan.get("train_steps")),
        _as_int("max_train_steps", plan.get("max_train_steps")),
        _as_int("epochs", plan.get("epochs")),
    )
    if steps is not None and max_steps is not None and steps > max_steps:
        raise PlanError(f"train_steps {steps} is above the plan's maximum of {max_steps} steps")
    try:
        lr = float(str(learning_rate_multiplier))
    except ValueError as exc:
        raise ConfigurationError(
            f"learning_rate_multiplier must be a number, got {learning_rate_multiplier!r}"
        ) from exc
    if not 0 < lr <= 100:
        raise ConfigurationError(f"learning_rate_multiplier must be in (0, 100], got {lr}")
    chosen_region = model.region_for(accelerator if model.method is TuningMethod.PIPELINE else None, region)
    chosen_accelerator: str | None = None
    adapter = _as_int("adapter_size", plan.get("adapter_size"))
    if model.method is TuningMethod.PIPELINE:
        chosen_accelerator = model.accelerator(accelerator).name
        if steps is None:
            raise ConfigurationError(f"{model.name} is tuned by steps: train_steps is required")
        root = _gcs_uri("pipeline_root", pipeline_root, required=True)
    else:
        root = None
        epoch_count = epoch_count or model.default_epochs
        if adapter is not None and adapter not in model.adapter_sizes:
            raise ConfigurationError(f"adapter_size {adapter} is not one of {list(model.adapter_sizes)}")
    if not tuned_model_display_name or len(tuned_model_display_name) > 128:
        raise ConfigurationError("tuned_model_display_name must have 1 to 128 characters")
    return TuningRequest(
        model=model,
        project=project,
        region=chosen_region,
        training_data_uri=_gcs_uri("training_data_uri", training_data_uri, required=True) or "",
        evaluation_data_uri=_gcs_uri("evaluation_data_uri", evaluation_data_uri, required=False),
        train_steps=steps,
        epochs=epoch_count,
        learning_rate_multiplier=lr,
        accelerator=chosen_accelerator,
        tuned_model_display_name=tuned_model_display_name,
        pipeline_root=root,
        labels={label_key(k): label_value(v) for k, v in (labels or {}).items()},
        service_account=service_account or None,
        kms_key_name=kms_key_name or None,
        adapter_size=adapter,
    )


#: Plan fields that describe the plan (for logs and reports) and that the request does not use.
_INFORMATIVE_PLAN_FIELDS = frozenset(
    {
        "method",
        "batch_size",
        "batch_size_source",
        "train_examples",
        "epochs_covered",
        "eta_seconds",
        "eta_low_seconds",
        "eta_high_seconds",
        "eta_source",
        "training_tokens",
        "cost_low_usd",
        "cost_high_usd",
        "cost_source",
    }
)


def job_labels(request: TuningRequest, key: str, attempt: int) -> dict[str, str]:
    return {**request.labels, LABEL_RUN_KEY: key, LABEL_ATTEMPT: str(attempt)}


def _with_identity_and_encryption(body: dict[str, Any], request: TuningRequest) -> dict[str, Any]:
    """The job fields both methods share: the service account it runs as and its CMEK key."""
    if request.service_account:
        body["service_account"] = request.service_account
    if request.kms_key_name:
        body["encryption_spec"] = {"kms_key_name": request.kms_key_name}
    return body


def pipeline_job_body(request: TuningRequest, key: str, attempt: int) -> dict[str, Any]:
    """A `PipelineJob` (snake_case proto fields) running the tune-large-model template."""
    parameters: dict[str, Any] = {
        "project": request.project,
        "location": request.region,
        "large_model_reference": request.model.name,
        "model_display_name": request.tuned_model_display_name,
        "dataset_uri": request.training_data_uri,
        "train_steps": request.train_steps,
        "learning_rate_multiplier": request.learning_rate_multiplier,
        "accelerator_type": request.accelerator,
    }
    if request.evaluation_data_uri:
        parameters["evaluation_data_uri"] = request.evaluation_data_uri
    if request.kms_key_name:
        parameters["encryption_spec_key_name"] = request.kms_key_name
    body: dict[str, Any] = {
        "display_name": f"{request.tuned_model_display_name}-tuning-a{attempt}"[:128],
        "template_uri": TUNE_LARGE_MODEL_TEMPLATE,
        "runtime_config": {"gcs_output_directory": request.pipeline_root, "parameter_values": parameters},
        "labels": job_labels(request, key, attempt),
    }
    return _with_identity_and_encryption(body, request)


def tuning_job_body(request: TuningRequest, key: str, attempt: int) -> dict[str, Any]:
    """A `TuningJob` (snake_case proto fields) with a supervised tuning spec."""
    hyper: dict[str, Any] = {
        "epoch_count": request.epochs,
        "learning_rate_multiplier": request.learning_rate_multiplier,
    }
    if request.adapter_size:
        hyper["adapter_size"] = _ADAPTER_SIZES[request.adapter_size]
    spec: dict[str, Any] = {"training_dataset_uri": request.training_data_uri, "hyper_parameters": hyper}
    if request.evaluation_data_uri:
        spec["validation_dataset_uri"] = request.evaluation_data_uri
    body: dict[str, Any] = {
        "base_model": request.model.name,
        "tuned_model_display_name": request.tuned_model_display_name,
        "supervised_tuning_spec": spec,
        "labels": job_labels(request, key, attempt),
    }
    return _with_identity_and_encryption(body, request)


@dataclass(frozen=True)
class Decision:
    """What execute() does about the jobs already started for one run key."""

    action: str  # "submit" | "attach"
    attempt: int
    job_name: str | None = None
    state: str | None = None


#: (job name, attempt number, short state) of a job already started for one run key.
ExistingJob = tuple[str, int, str]


def existing_jobs(
    jobs: Iterable[tuple[str, Mapping[str, str], str]], key: str | None = None
) -> list[ExistingJob]:
    """(name, attempt, state) of the listed `(name, labels, state)` jobs that carry run key `key`.

    A job whose attempt label is not a whole number was not labelled by us: it fails loudly, naming
    the job, rather than being re-attached or counted.
    """
    found: list[ExistingJob] = []
    for name, labels, state in jobs:
        if key is not None and labels.get(LABEL_RUN_KEY) != key:
            continue
        raw = labels.get(LABEL_ATTEMPT, "1") or "1"
        try:
            attempt = int(raw)
        except ValueError as exc:
            raise VertexError(
                f"label {LABEL_ATTEMPT}={raw!r} is not an attempt number", resource=name
            ) from exc
        found.append((name, attempt, state))
    return found


def decide(existing: list[ExistingJob]) -> Decision:
    """Re-attach to the latest job unless it ended badly; `existing` holds (name, attempt, state)."""
    if not existing:
        return Decision("submit", 1)
    name, attempt, state = max(existing, key=lambda job: job[1])
    if state in RESUBMITTABLE:
        return Decision("submit", attempt + 1, name, state)
    return Decision("attach", attempt, name, state)


# Task names of the tune-large-model pipeline whose outputs name the tuned model and its endpoint
# (the same ones the Vertex SDK reads in `_TuningJob.get_tuned_model`).
_UPLOAD_TASKS = ("upload-llm-model", "upload-model")
_DEPLOY_TASKS = ("deploy-llm-model", "deploy-model")


def _task_output(job: dict[str, Any], task_names: tuple[str, ...], key: str) -> str | None:
    for detail in (job.get("job_detail") or {}).get("task_details") or []:
        if detail.get("task_name") in task_names:
            value = ((detail.get("execution") or {}).get("metadata") or {}).get(key)
            if value:
                return str(value).strip()
    return None


def job_outputs(job: dict[str, Any], method: TuningMethod | str) -> tuple[str | None, str | None]:
    """(tuned model resource, endpoint resource) of a finished job given as a dict."""
    if TuningMethod(method) is TuningMethod.PIPELINE:
        return (
            _task_output(job, _UPLOAD_TASKS, "output:model_resource_name"),
            _task_output(job, _DEPLOY_TASKS, "output:endpoint_resource_name"),
        )
    tuned = job.get("tuned_model") or {}
    return tuned.get("model") or None, tuned.get("endpoint") or None


def job_summary(job: dict[str, Any], method: TuningMethod | str) -> dict[str, Any]:
    """The small, JSON-safe facts about a job that travel in trigger events and XComs."""
    model, endpoint = job_outputs(job, method)
    return {
        "job": job.get("name"),
        "state": short_state(job.get("state", "")),
        "method": str(TuningMethod(method)),
        "message": (job.get("error") or {}).get("message") or "",
        "tuned_model": model,
        "endpoint": endpoint,
        "create_time": job.get("create_time"),
        "start_time": job.get("start_time"),
        "end_time": job.get("end_time"),
    }
