"""tuningJobs: Gemini supervised fine-tuning, named by the server as Vertex does.

The spec is checked when the job is created (400 for a bad spec; 404 for a `preTunedModel` that
does not exist); the dataset is read from GCS when the job starts running, and a bad line fails
the job naming `gs://...:LINE`. On success the tuned model is registered and deployed with its
intermediate checkpoints (each on its own endpoint, unless `exportLastCheckpointOnly`), and
`tunedModel` and `tuningDataStats` are filled. Continuing from a `preTunedModel` adds a version to
that model (a new model when the display name changes) that answers from both datasets.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from google.cloud.aiplatform_v1.types import job_state

from vertex_emulator import datasets, fields, filters, lifecycle, names, tuning_stats
from vertex_emulator.exceptions import InvalidArgument
from vertex_emulator.jobs import JobService
from vertex_emulator.lifecycle import Phase, StepFailed, rfc3339

KIND = "tuningJobs"
#: Examples per tuning step (Vertex does not publish its batch size; any constant will do).
BATCH_SIZE = 8
DEFAULT_EPOCHS = 3
#: "For tuning jobs with less than 10 epochs, one checkpoint is saved approximately after each
#: epoch. For tuning jobs with more than 10 epochs, around 10 checkpoints are saved at even
#: distribution, with the exception of the final checkpoint, which is saved immediately after all
#: epochs are trained." (https://cloud.google.com/vertex-ai/generative-ai/docs/models/tuning-checkpoints)
MAX_CHECKPOINTS = 10
_ADAPTER_SIZES = {
    "ADAPTER_SIZE_ONE",
    "ADAPTER_SIZE_TWO",
    "ADAPTER_SIZE_FOUR",
    "ADAPTER_SIZE_EIGHT",
    "ADAPTER_SIZE_SIXTEEN",
    "ADAPTER_SIZE_THIRTY_TWO",
}
# ListTuningJobsRequest.filter is "the standard list filter" (AIP-160) with no documented fields:
# the TuningJob fields a caller would filter on.
LIST = filters.Schema(
    "TuningJob",
    (
        filters.Field(
            "state", filters.ENUM, filters.EQUALITY, choices=frozenset(job_state.JobState.__members__)
        ),
        filters.Field("base_model", filters.STRING, filters.WILDCARD),
        filters.Field("tuned_model_display_name", filters.STRING, filters.WILDCARD),
        filters.Field("create_time", filters.TIME, filters.COMPARISONS),
        filters.Field("update_time", filters.TIME, filters.COMPARISONS),
        filters.Field("end_time", filters.TIME, filters.COMPARISONS),
        filters.Field("labels", filters.LABELS, frozenset()),
    ),
)


def check_spec(job: dict[str, Any]) -> None:
    """Reject what Vertex rejects synchronously, with a 400 naming the field."""
    base_model = job.get("baseModel", "")
    if not base_model and not job.get("preTunedModel"):
        raise InvalidArgument("tuning_job.base_model or tuning_job.pre_tuned_model is required")
    if base_model and not base_model.rsplit("/", 1)[-1].startswith("gemini-"):
        raise InvalidArgument(
            f"base model {base_model!r} does not support supervised tuning (Gemini models only)"
        )
    fields.check_labels(job.get("labels"), "tuning_job.labels")
    fields.check_display_name(
        job.get("tunedModelDisplayName"), "tuning_job.tuned_model_display_name", required=False
    )
    spec = job.get("supervisedTuningSpec")
    if not spec:
        raise InvalidArgument("tuning_job.supervised_tuning_spec is required")
    for field in ("trainingDatasetUri", "validationDatasetUri"):
        uri = spec.get(field, "")
        if field == "trainingDatasetUri" and not uri:
            raise InvalidArgument("supervised_tuning_spec.training_dataset_uri is required")
        if uri and not (uri.startswith("gs://") and uri.endswith(".jsonl")):
            raise InvalidArgument(
                f"supervised_tuning_spec.{field} must be a gs:// URI of a .jsonl file, got {uri!r}"
            )
    hyper = spec.get("hyperParameters") or {}
    if "epochCount" in hyper and not 1 <= int(hyper["epochCount"]) <= 100:
        raise InvalidArgument(f"hyper_parameters.epoch_count must be in [1, 100], got {hyper['epochCount']}")
    if "learningRateMultiplier" in hyper and not 0 < float(hyper["learningRateMultiplier"]) <= 10:
        raise InvalidArgument(
            "hyper_parameters.learning_rate_multiplier must be in (0, 10], "
            f"got {hyper['learningRateMultiplier']}"
        )
    if "adapterSize" in hyper and hyper["adapterSize"] not in _ADAPTER_SIZES:
        raise InvalidArgument(f"hyper_parameters.adapter_size {hyper['adapterSize']} is not supported")


def checkpoint_epochs(epochs: int) -> list[int]:
    """The epochs after which a checkpoint is saved (the last is always the final epoch)."""
    if epochs <= MAX_CHECKPOINTS:
        return list(range(1, epochs + 1))
    return sorted({round(k * epochs / MAX_CHECKPOINTS) for k in range(1, MAX_CHECKPOINTS + 1)})


def experiment_name(job_name: str, at: float) -> str:
    """The Vertex AI Experiment (an ML Metadata context) a tuning job reports its tuning metrics to.

    Vertex names it by a timestamp of the run: `projects/P/locations/L/metadataStores/default/contexts/
    tuning-experiment-20241103131117085279` in a job response quoted in the Mscc.GenerativeAI client's
    source, `.../contexts/tuning-experiment-2025010112345678` in the "Example response" of Google's Gen AI
    SDK samples (region tag googlegenaisdk_tuning_job_get). The emulator reports the name only and serves
    no metadataStores: the DAG does not read the curve Vertex keeps there (README, Promotion).
    """
    parent = names.parse(job_name, KIND).parent
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y%m%d%H%M%S%f")
    return f"{parent}/metadataStores/default/contexts/tuning-experiment-{stamp}"


class _Fetched(datasets.GcsReader):
    """Serves a dataset already read, so the checks and the stats see the same bytes, read once."""

    def __init__(self, uri: str, text: str) -> None:
        super().__init__(None)
        self._uri, self._text = uri, text

    def read_text(self, uri: str) -> str:
        return self._text if uri == self._uri else super().read_text(uri)


class Tuning(JobService):
    KIND = KIND
    LABEL = "TuningJob"
    STATE_PREFIX = "JOB_STATE_"
    LIST = LIST

    def create(self, parent: str, job: dict[str, Any]) -> dict[str, Any]:
        names.check_parent(parent)
        check_spec(job)
        pre_tuned = self._pre_tuned(parent, job.get("preTunedModel"))
        now = self.backend.now()
        settings = self.backend.settings
        schedule = [
            ("start", settings.pending_seconds),
            ("validate-dataset", settings.phase_seconds),
            ("tune", settings.phase_seconds),
            ("export-model", settings.phase_seconds),
        ]
        with self.store.lock:
            name = f"{parent}/tuningJobs/{self.store.next_id(KIND)}"
            resource = {
                **{
                    k: v
                    for k, v in job.items()
                    if k not in ("name", "state", "tunedModel", "tuningDataStats", "error")
                },
                "name": name,
                "createTime": rfc3339(now),
                "updateTime": rfc3339(now),
                "state": "JOB_STATE_PENDING",
            }
            if pre_tuned:
                resource["preTunedModel"] = pre_tuned
            internal = {
                **lifecycle.new_job(now, schedule),
                "seq": self.backend.seq(),
                "examples": [],
                "outputs": {},
            }
            record = {"resource": resource, "internal": internal}
            self.store.put(KIND, name, record)
            return self.view(record)

    def _pre_tuned(self, parent: str, pre_tuned: dict[str, Any] | None) -> dict[str, Any]:
        """`preTunedModel` with its output-only `baseModel`, once the model is known to be tunable."""
        if not pre_tuned:
            return {}
        model_name = pre_tuned.get("tunedModelName", "")
        if not model_name:
            raise InvalidArgument("tuning_job.pre_tuned_model.tuned_model_name is required")
        record = self.backend.models.record(model_name)  # NotFound names the model
        base = record["internal"].get("tunedFrom")
        if not base:
            raise InvalidArgument(
                f"pre_tuned_model {model_name} was not produced by a Gemini tuning job; only tuned "
                "Gemini models can be tuned further"
            )
        if names.parse(model_name, "models").parent != parent:
            raise InvalidArgument(f"pre_tuned_model {model_name} is not in {parent}")
        known = [c["checkpointId"] for c in record["resource"].get("checkpoints") or []]
        checkpoint = pre_tuned.get("checkpointId", "")
        if checkpoint and checkpoint not in known:
            raise InvalidArgument(
                f"pre_tuned_model.checkpoint_id {checkpoint!r} is not a checkpoint of {model_name}; "
                f"it has {known}"
            )
        return {**pre_tuned, "baseModel": base}

    def hooks(self, record: dict[str, Any]) -> dict[str, lifecycle.Hook]:
        resource, internal = record["resource"], record["internal"]
        spec = resource["supervisedTuningSpec"]
        forced = internal.get("forced") == "succeed"
        epochs = int((spec.get("hyperParameters") or {}).get("epochCount") or DEFAULT_EPOCHS)

        def validate(at: float) -> None:
            uri = spec["trainingDatasetUri"]
            try:
                text = self.backend.gcs.read_text(uri)
                training = datasets.read_gemini(_Fetched(uri, text), uri)
                if spec.get("validationDatasetUri"):
                    datasets.read_gemini(self.backend.gcs, spec["validationDatasetUri"])
            except datasets.DatasetInvalid as invalid:
                if forced:
                    return
                raise StepFailed(f"dataset validation failed: {invalid}") from invalid
            per_epoch = math.ceil(len(training.examples) / BATCH_SIZE)
            internal["experiment"] = experiment_name(resource["name"], at)
            internal["examples"] = training.examples
            internal["stepsPerEpoch"] = per_epoch
            internal["stats"] = tuning_stats.supervised(text, epochs, epochs * per_epoch)
            lifecycle.set_duration(
                internal, "tune", epochs * per_epoch * self.backend.settings.seconds_per_step
            )

        def export(at: float) -> None:
            self._export(resource, internal, epochs)

        return {"validate-dataset": validate, "export-model": export}

    def _export(self, resource: dict[str, Any], internal: dict[str, Any], epochs: int) -> None:
        """Register the tuned model (a new version of a pre-tuned one) and deploy its checkpoints."""
        parsed = names.parse(resource["name"], KIND)
        pre_tuned = resource.get("preTunedModel") or {}
        base = resource.get("baseModel") or pre_tuned.get("baseModel", "")
        examples: list[list[str]] = [list(e) for e in internal["examples"]]
        parent_model, display = "", resource.get("tunedModelDisplayName", "")
        if pre_tuned:
            previous = self.backend.models.get(pre_tuned["tunedModelName"])
            examples = [list(e) for e in self.backend.models.examples(pre_tuned["tunedModelName"])] + examples
            # "If a new display name is provided, the tuning job will create a new model instead of a
            # new version" (TuningJob.tuned_model_display_name, tuning_job.proto).
            if display in ("", previous["displayName"]):
                parent_model, display = previous["name"], previous["displayName"]
        display = display or f"{base.rsplit('/', 1)[-1]}-{parsed.id}"
        per_epoch = int(internal.get("stepsPerEpoch") or 1)
        checkpoints = (
            []
            if resource["supervisedTuningSpec"].get("exportLastCheckpointOnly")
            else [
                {"checkpointId": str(i), "epoch": str(epoch), "step": str(epoch * per_epoch)}
                for i, epoch in enumerate(checkpoint_epochs(epochs), start=1)
            ]
        )
        model = self.backend.models.upload(
            parsed.parent,
            {
                "displayName": display,
                "labels": dict(resource.get("labels") or {}),
                "description": f"Tuned by {resource['name']} from {base}",
                "artifactUri": f"gs://vertex-emulator-tuning/{parsed.project}/{parsed.location}/"
                f"tuningJobs/{parsed.id}/adapter",
                **(
                    {"checkpoints": checkpoints, "defaultCheckpointId": checkpoints[-1]["checkpointId"]}
                    if checkpoints
                    else {}
                ),
            },
            parent_model=parent_model,
            examples=examples,
            tuned_from=base,
        )
        version = f"{model['name']}@{model['versionId']}"
        if internal.get("degradeOutput"):  # steered through the control plane (`jobs/...:degrade`)
            self.backend.models.set_degraded(version, True)
        outputs: dict[str, Any] = {"model": version}
        # "Intermediate checkpoints are deployed to new endpoints ... The tuned model endpoint
        # represents the endpoint of the default checkpoint" (the tuning-checkpoints page above).
        for checkpoint in checkpoints or [{}]:
            suffix = f" checkpoint {checkpoint['checkpointId']}" if checkpoint else ""
            endpoint = self.backend.endpoints.create_now(
                parsed.parent,
                {"displayName": display[: fields.MAX_DISPLAY_NAME_CHARS - len(suffix)] + suffix},
            )
            deployed = {
                "model": version,
                **({"checkpointId": checkpoint["checkpointId"]} if checkpoint else {}),
            }
            self.backend.endpoints.deploy_now(endpoint["name"], deployed, {})
            if checkpoint:
                outputs.setdefault("checkpoints", []).append({**checkpoint, "endpoint": endpoint["name"]})
            outputs["endpoint"] = endpoint["name"]  # the last (default) checkpoint's
        internal["outputs"] = outputs
        internal["examples"] = []  # the model keeps them now; job reads stay small

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        job = record["internal"]
        state = lifecycle.phase(job)
        resource = {**record["resource"], **self.lifecycle_fields(job)}
        if job.get("experiment"):
            resource["experiment"] = job["experiment"]
        if job.get("stats"):
            resource["tuningDataStats"] = {"supervisedTuningDataStats": job["stats"]}
        if state is Phase.SUCCEEDED and job["outputs"]:
            resource["tunedModel"] = dict(job["outputs"])
        return resource
