"""Long-running operations: what upload, deploy, create and delete calls return.

Operations finish when created (the work is instant here) unless the emulator runs with
`--operation-seconds`, in which case `done` turns true that many seconds later, so pollers
(`/ui/.../operations/*` GET and `:wait`) have something to wait for. A resource's operations
are listed under it (`GET {resource}/operations`), as on Vertex.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from vertex_emulator.exceptions import InvalidArgument, NotFound
from vertex_emulator.lifecycle import rfc3339

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

KIND = "operations"
TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."


def generic_metadata(now: float) -> dict[str, Any]:
    return {"genericMetadata": {"createTime": rfc3339(now), "updateTime": rfc3339(now)}}


class Operations:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def create(
        self,
        owner: str,
        metadata_type: str,
        metadata: dict[str, Any],
        response_type: str,
        response: dict[str, Any],
        done_at: float | None = None,
    ) -> dict[str, Any]:
        """Record an operation on `owner` (a resource name or a location parent).

        It reports done at `done_at` (default: `--operation-seconds` from now).
        """
        now = self.backend.now()
        name = f"{owner}/operations/{self.backend.store.next_id(KIND)}"
        operation = {
            "name": name,
            "metadata": {"@type": TYPE_PREFIX + metadata_type, **metadata},
            "done": True,
            "response": {
                "@type": response_type if "/" in response_type else TYPE_PREFIX + response_type,
                **response,
            },
        }
        record = {
            "resource": operation,
            "internal": {
                "doneAt": now + self.backend.settings.operation_seconds if done_at is None else done_at,
                "seq": self.backend.seq(),
            },
        }
        self.backend.store.put(KIND, name, record)
        return self._view(record)

    def get(self, name: str) -> dict[str, Any]:
        record = self.backend.store.get(KIND, name)
        if record is None:
            raise NotFound(f"Operation {name} not found")
        return self._view(record)

    def list(self, parent: str, filter_expr: str) -> list[dict[str, Any]]:
        """Operations of `parent` (a resource or a location), oldest first.

        Vertex documents no filter fields for operations, so any filter is refused rather than
        silently ignored.
        """
        if filter_expr.strip():
            raise InvalidArgument(f"unsupported operations filter {filter_expr!r}: list without a filter")
        return [self._view(r) for r in self.backend.store.scan(KIND, f"{parent}/operations/")]

    def wait(self, name: str, timeout_seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + min(timeout_seconds or 60.0, 60.0)
        while True:
            operation = self.get(name)
            if operation["done"] or time.monotonic() >= deadline:
                return operation
            time.sleep(0.05)

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        operation = dict(record["resource"])
        if self.backend.now() < record["internal"]["doneAt"]:
            operation["done"] = False
            operation.pop("response", None)
        return operation
