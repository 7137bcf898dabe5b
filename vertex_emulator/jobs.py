"""What pipelineJobs and tuningJobs share: lazy refresh through the lifecycle, cancel, save, and
the lifecycle's fields on the wire (state, startTime, endTime, error)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from vertex_emulator import filters, lifecycle, names
from vertex_emulator.exceptions import NotFound
from vertex_emulator.lifecycle import rfc3339

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend


class JobService:
    #: Store kind and URL collection, e.g. "pipelineJobs".
    KIND = ""
    #: Resource type in messages, e.g. "PipelineJob".
    LABEL = ""
    #: Wire state prefix, e.g. "PIPELINE_STATE_".
    STATE_PREFIX = ""
    #: What the list call's `filter` and `order_by` may name.
    LIST = filters.Schema("", ())

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def hooks(self, record: dict[str, Any]) -> dict[str, lifecycle.Hook]:
        """The step hooks of this kind of job (what happens when a step's time comes)."""
        raise NotImplementedError

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        """The job's wire dict."""
        raise NotImplementedError

    def get(self, name: str) -> dict[str, Any]:
        return self.view(self.refresh(name))

    def find(self, parent: str, filter_expr: str, newest_first: bool) -> list[dict[str, Any]]:
        names.check_parent(parent)
        keep = filters.compile_filter(filter_expr, self.LIST)
        records = self.store.scan(self.KIND, f"{parent}/{self.KIND}/")
        views = [self.view(self.refresh(r["resource"]["name"])) for r in records]
        return [v for v in (reversed(views) if newest_first else views) if keep(v)]

    def refresh(self, name: str) -> dict[str, Any]:
        """The job's record brought up to now (runs the hooks of steps whose time has come)."""
        names.parse(name, self.KIND)
        with self.store.lock:
            record = self.store.get(self.KIND, name)
            if record is None:
                raise NotFound(f"{self.LABEL} {name} not found")
            before = json.dumps(record["internal"], sort_keys=True)
            lifecycle.advance(record["internal"], self.backend.now(), self.hooks(record))
            if json.dumps(record["internal"], sort_keys=True) != before:
                record["resource"]["updateTime"] = rfc3339(self.backend.now())
                self.save(record)
            return record

    def save(self, record: dict[str, Any]) -> None:
        self.store.put(self.KIND, record["resource"]["name"], record)

    def cancel(self, name: str) -> None:
        with self.store.lock:
            record = self.refresh(name)
            lifecycle.cancel(record["internal"], self.backend.now())
            self.save(record)

    def lifecycle_fields(self, job: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {"state": f"{self.STATE_PREFIX}{lifecycle.phase(job).value}"}
        if "RUNNING" in job["times"]:
            fields["startTime"] = rfc3339(job["times"]["RUNNING"])
        end = lifecycle.end_time(job)
        if end is not None:
            fields["endTime"] = rfc3339(end)
        if job["failure"]:
            fields["error"] = job["failure"]
        return fields
