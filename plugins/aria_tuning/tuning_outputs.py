"""What a finished tuning run left in the project besides the version we register: its model, endpoints.

The tune-large-model pipeline uploads its own model and deploys it to an endpoint of its own; a
Gemini tuning job registers a model and deploys it (and each intermediate checkpoint) to endpoints
of its own. The run keeps only the version it registers under the parent model, so these go.
Pure functions over the job as a dict (proto field names), no Airflow and no Google import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import TuningMethod


@dataclass(frozen=True)
class Leftovers:
    """The job's own model (unversioned name) and every endpoint it deployed that model to."""

    model: str | None
    endpoints: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "endpoints": list(self.endpoints)}


def leftovers(job: dict[str, Any], method: TuningMethod | str) -> Leftovers:
    """The job's outputs that the run does not keep (`tunedModel.checkpoints[].endpoint` included)."""
    model, endpoint = vj.job_outputs(job, method)
    endpoints = [endpoint] if endpoint else []
    if TuningMethod(method) is TuningMethod.TUNING_JOB:
        for checkpoint in (job.get("tuned_model") or {}).get("checkpoints") or []:
            if checkpoint.get("endpoint"):
                endpoints.append(str(checkpoint["endpoint"]))
    unversioned = model.split("@", 1)[0] if model else None
    return Leftovers(unversioned, tuple(dict.fromkeys(endpoints)))


def serves_only(endpoint: Any, model: str) -> bool:
    """True when every model deployed on `endpoint` is a version of `model` (what we may tear down)."""
    return all(str(d.model).split("@", 1)[0] == model for d in endpoint.deployed_models)
