"""tuningJobs: Gemini supervised fine-tuning, named by the server as Vertex does.

The spec is checked when the job is created (400 for a bad spec); the dataset is read from GCS
when the job starts running, and a bad line fails the job naming `gs://...:LINE`. On success
the tuned model is registered and deployed, and `tunedModel` and `tuningDataStats` are filled.
"""

from __future__ import annotations

import math
from typing import Any

from vertex_emulator import datasets, lifecycle, names
from vertex_emulator.exceptions import InvalidArgument
from vertex_emulator.jobs import JobService
from vertex_emulator.lifecycle import Phase, StepFailed, rfc3339

KIND = "tuningJobs"
#: Examples per tuning step (Vertex does not publish its batch size; any constant will do).
BATCH_SIZE = 8
DEFAULT_EPOCHS = 3
_ADAPTER_SIZES = {
    "ADAPTER_SIZE_ONE",
    "ADAPTER_SIZE_TWO",
    "ADAPTER_SIZE_FOUR",
    "ADAPTER_SIZE_EIGHT",
    "ADAPTER_SIZE_SIXTEEN",
    "ADAPTER_SIZE_THIRTY_TWO",
}


def check_spec(job: dict[str, Any]) -> None:
    """Reject what Vertex rejects synchronously, with a 400 naming the field."""
    base_model = job.get("baseModel", "")
    if not base_model:
        raise InvalidArgument("tuning_job.base_model is required")
    if not base_model.rsplit("/", 1)[-1].startswith("gemini-"):
        raise InvalidArgument(
            f"base model {base_model!r} does not support supervised tuning (Gemini models only)"
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


class Tuning(JobService):
    KIND = KIND
    LABEL = "TuningJob"
    STATE_PREFIX = "JOB_STATE_"
    FILTER_FIELDS = frozenset({"displayName", "state", "baseModel", "tunedModelDisplayName", "name"})

    def create(self, parent: str, job: dict[str, Any]) -> dict[str, Any]:
        names.check_parent(parent)
        check_spec(job)
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
            internal = {
                **lifecycle.new_job(now, schedule),
                "seq": self.backend.seq(),
                "examples": [],
                "outputs": {},
            }
            record = {"resource": resource, "internal": internal}
            self.store.put(KIND, name, record)
            return self.view(record)

    def hooks(self, record: dict[str, Any]) -> dict[str, lifecycle.Hook]:
        resource, internal = record["resource"], record["internal"]
        spec = resource["supervisedTuningSpec"]
        forced = internal.get("forced") == "succeed"

        def validate(at: float) -> None:
            try:
                training = datasets.read_gemini(self.backend.gcs, spec["trainingDatasetUri"])
                if spec.get("validationDatasetUri"):
                    datasets.read_gemini(self.backend.gcs, spec["validationDatasetUri"])
            except datasets.DatasetInvalid as invalid:
                if forced:
                    return
                raise StepFailed(f"dataset validation failed: {invalid}") from invalid
            epochs = int((spec.get("hyperParameters") or {}).get("epochCount") or DEFAULT_EPOCHS)
            steps = epochs * math.ceil(len(training.examples) / BATCH_SIZE)
            internal["examples"] = training.examples
            internal["stats"] = {
                "tuningDatasetExampleCount": str(len(training.examples)),
                "totalTuningCharacterCount": str(training.characters),
                "totalBillableCharacterCount": str(training.characters * epochs),
                "tuningStepCount": str(steps),
            }
            lifecycle.set_duration(internal, "tune", steps * self.backend.settings.seconds_per_step)

        def export(at: float) -> None:
            parsed = names.parse(resource["name"], KIND)
            display = (
                resource.get("tunedModelDisplayName")
                or f"{resource['baseModel'].rsplit('/', 1)[-1]}-{parsed.id}"
            )
            model = self.backend.models.upload(
                parsed.parent,
                {
                    "displayName": display,
                    "labels": dict(resource.get("labels") or {}),
                    "description": f"Tuned by {resource['name']} from {resource['baseModel']}",
                    "artifactUri": f"gs://vertex-emulator-tuning/{parsed.project}/{parsed.location}/"
                    f"tuningJobs/{parsed.id}/adapter",
                },
                examples=internal["examples"],
            )
            endpoint = self.backend.endpoints.create_now(parsed.parent, {"displayName": display})
            self.backend.endpoints.deploy_now(endpoint["name"], {"model": model["name"]}, {})
            internal["outputs"] = {
                "model": f"{model['name']}@{model['versionId']}",
                "endpoint": endpoint["name"],
            }

        return {"validate-dataset": validate, "export-model": export}

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        job = record["internal"]
        state = lifecycle.phase(job)
        resource = {**record["resource"], **self.lifecycle_fields(job)}
        if job.get("stats"):
            resource["tuningDataStats"] = {"supervisedTuningDataStats": job["stats"]}
        if state is Phase.SUCCEEDED and job["outputs"]:
            resource["tunedModel"] = dict(job["outputs"])
        return resource
