"""The emulator's state and services, keyed by project and location through resource names.

Services take and return plain wire dicts and raise `exceptions` errors; they never see HTTP.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vertex_emulator import lifecycle
from vertex_emulator.datasets import GcsReader
from vertex_emulator.endpoints import Endpoints
from vertex_emulator.exceptions import FailedPrecondition, InvalidArgument, NotFound
from vertex_emulator.jobs import JobService
from vertex_emulator.model_evaluations import ModelEvaluations
from vertex_emulator.monitoring import PredictionLog
from vertex_emulator.operations import Operations
from vertex_emulator.pipelines import Pipelines
from vertex_emulator.registry import ModelRegistry
from vertex_emulator.serving import Serving
from vertex_emulator.store import Store, open_store
from vertex_emulator.tuning import Tuning


@dataclass
class Settings:
    #: Seconds one tuning step takes on the emulator's clock (real TPU runs take ~9 s).
    seconds_per_step: float = 0.01
    #: Seconds each fixed pipeline task (validation, export, upload, ...) takes.
    phase_seconds: float = 0.05
    #: Seconds a new job stays PENDING.
    pending_seconds: float = 0.1
    #: Seconds before a long-running operation reports done (0: done when returned).
    operation_seconds: float = 0.0
    gcs_endpoint: str | None = None
    state_dir: Path | None = None

    def public(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


class Backend:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store if store is not None else open_store(settings.state_dir)
        self.gcs = GcsReader(settings.gcs_endpoint)
        self.operations = Operations(self)
        self.models = ModelRegistry(self)
        self.model_evaluations = ModelEvaluations(self)
        self.endpoints = Endpoints(self)
        self.serving = Serving(self)
        self.monitoring = PredictionLog()
        self.pipelines = Pipelines(self)
        self.tuning = Tuning(self)

    def now(self) -> float:
        return time.time()

    def seq(self) -> int:
        """A store-wide creation sequence: lists keep creation order across restarts."""
        return self.store.next_id("_seq")

    # -- control plane ----------------------------------------------------------------------
    def reset(self) -> None:
        self.store.clear()
        self.monitoring.clear()

    def counts(self) -> dict[str, int]:
        return {
            "pipelineJobs": self.store.count("pipelineJobs"),
            "tuningJobs": self.store.count("tuningJobs"),
            **self.models.count(),
            "modelEvaluations": self.store.count("modelEvaluations"),
            "endpoints": self.store.count("endpoints"),
            "operations": self.store.count("operations"),
        }

    def inspect(self, name: str) -> dict[str, Any]:
        """The raw record of any resource (wire dict and emulator-internal fields)."""
        if "/operations/" in name or "/endpoints/" in name:
            kind = "operations" if "/operations/" in name else "endpoints"
            record = self.store.get(kind, name)
            if record is None:
                raise NotFound(f"{name} not found")
            return record
        if "/pipelineJobs/" in name:
            return self.pipelines.refresh(name)
        if "/tuningJobs/" in name:
            return self.tuning.refresh(name)
        if "/models/" in name:
            return self.models.record(name)
        raise NotFound(f"{name} is not a resource the emulator keeps")

    def force(self, name: str, outcome: str, message: str = "") -> dict[str, Any]:
        """Steer a pipeline or tuning job: succeed, fail (with message), pause, resume, or degrade (the
        model it uploads answers as if untuned, and so does a re-upload of its weights)."""
        service: JobService
        if "/pipelineJobs/" in name:
            service = self.pipelines
        elif "/tuningJobs/" in name:
            service = self.tuning
        else:
            raise NotFound(f"{name} is not a pipelineJob or tuningJob")
        now = self.now()
        with self.store.lock:
            record = service.refresh(name)
            job = record["internal"]
            if outcome == "succeed":
                lifecycle.force_succeed(job, now)
            elif outcome == "fail":
                if lifecycle.phase(job) in lifecycle.TERMINAL:
                    raise FailedPrecondition(f"{name} is already {lifecycle.phase(job)}")
                lifecycle.fail(
                    job, now, message or "failed by the emulator control plane", lifecycle.CODE_INTERNAL
                )
            elif outcome == "pause":
                lifecycle.pause(job, now)
            elif outcome == "resume":
                lifecycle.resume(job, now)
            elif outcome == "degrade":  # the model it will upload answers as if untuned
                if lifecycle.phase(job) in lifecycle.TERMINAL:
                    raise FailedPrecondition(f"{name} is already {lifecycle.phase(job)}: its model exists")
                job["degradeOutput"] = True
            else:
                raise InvalidArgument(f"unknown outcome {outcome!r}: succeed, fail, pause, resume or degrade")
            service.save(record)
            return service.get(name)
