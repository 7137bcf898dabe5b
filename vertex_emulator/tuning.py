"""tuningJobs: Gemini supervised fine-tuning, named by the server as Vertex does.

The spec is checked when the job is created (400 for a bad spec); the dataset is read from GCS
when the job starts running, and a bad line fails the job naming `gs://...:LINE`. On success
the tuned model is registered and deployed, and `tunedModel` and `tuningDataStats` are filled.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from vertex_emulator import datasets, filters, lifecycle, names
from vertex_emulator.exceptions import InvalidArgument, NotFound
from vertex_emulator.lifecycle import Phase, StepFailed, rfc3339

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

KIND = "tuningJobs"
_FILTER_FIELDS = frozenset({"displayName", "state", "baseModel", "tunedModelDisplayName", "name"})
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


class Tuning:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

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
            return self._view(record)

    def get(self, name: str) -> dict[str, Any]:
        return self._view(self.refresh(name))

    def find(self, parent: str, filter_expr: str) -> list[dict[str, Any]]:
        names.check_parent(parent)
        keep = filters.compile_filter(filter_expr, _FILTER_FIELDS)
        views = [
            self._view(self.refresh(r["resource"]["name"]))
            for r in self.store.scan(KIND, f"{parent}/tuningJobs/")
        ]
        return [v for v in reversed(views) if keep(v)]  # Vertex lists newest first

    def cancel(self, name: str) -> None:
        with self.store.lock:
            record = self.refresh(name)
            lifecycle.cancel(record["internal"], self.backend.now())
            self.store.put(KIND, name, record)

    def refresh(self, name: str) -> dict[str, Any]:
        names.parse(name, KIND)
        with self.store.lock:
            record = self.store.get(KIND, name)
            if record is None:
                raise NotFound(f"TuningJob {name} not found")
            before = json.dumps(record["internal"], sort_keys=True)
            lifecycle.advance(record["internal"], self.backend.now(), self._hooks(record))
            if json.dumps(record["internal"], sort_keys=True) != before:
                record["resource"]["updateTime"] = rfc3339(self.backend.now())
                self.store.put(KIND, name, record)
            return record

    def save(self, record: dict[str, Any]) -> None:
        self.store.put(KIND, record["resource"]["name"], record)

    def _hooks(self, record: dict[str, Any]) -> dict[str, lifecycle.Hook]:
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

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        resource = dict(record["resource"])
        job = record["internal"]
        state = lifecycle.phase(job)
        resource["state"] = f"JOB_STATE_{state.value}"
        if "RUNNING" in job["times"]:
            resource["startTime"] = rfc3339(job["times"]["RUNNING"])
        end = next((job["times"][p.value] for p in lifecycle.TERMINAL if p.value in job["times"]), None)
        if end is not None:
            resource["endTime"] = rfc3339(end)
        if job["failure"]:
            resource["error"] = job["failure"]
        if job.get("stats"):
            resource["tuningDataStats"] = {"supervisedTuningDataStats": job["stats"]}
        if state is Phase.SUCCEEDED and job["outputs"]:
            resource["tunedModel"] = dict(job["outputs"])
        return resource
