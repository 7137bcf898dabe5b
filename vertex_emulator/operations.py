"""Long-running operations: what upload, deploy, create and delete calls return.

Operations finish when created (the work is instant here) unless the emulator runs with
`--operation-seconds`, in which case `done` turns true that many seconds later, so pollers
(`/ui/.../operations/*` GET and `:wait`) have something to wait for. A resource's operations
are listed under it (`GET {resource}/operations`), as on Vertex.

Tests steer the operations whose effect waits for them (`STEERABLE`: a deployed model joins its
endpoint, an undeployed one leaves it, only when the operation succeeds): hold one (it stays
`done: false` until released, across restarts too), fail it (`done` with Vertex's `error`, the
effect never happens), or have the next N operations of a type created held or failed (`Next`
rules, kept in memory like fault rules), so a test can fail the deploy an operator starts
without racing it.
"""

from __future__ import annotations

import builtins
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vertex_emulator.exceptions import FailedPrecondition, InvalidArgument, NotFound
from vertex_emulator.lifecycle import CODE_INTERNAL, rfc3339

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

KIND = "operations"
TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."
#: Operation types (metadata type without `OperationMetadata`) whose effect waits for the operation.
STEERABLE = frozenset({"DeployModel", "UndeployModel"})
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


def generic_metadata(now: float) -> dict[str, Any]:
    return {"genericMetadata": {"createTime": rfc3339(now), "updateTime": rfc3339(now)}}


def type_of(metadata_type: str) -> str:
    """`DeployModelOperationMetadata` -> `DeployModel` (`DeleteOperationMetadata` -> `Delete`)."""
    return metadata_type.rsplit(".", 1)[-1].removesuffix("OperationMetadata")


@dataclass
class Next:
    """Hold or fail the next `remaining` operations of `type` whose name matches `path`."""

    id: int
    action: str  # "hold" | "fail"
    type: str
    remaining: int
    path: str | None = None
    code: int = CODE_INTERNAL
    message: str = ""

    def matches(self, op_type: str, name: str) -> bool:
        if self.remaining <= 0 or op_type != self.type:
            return False
        return self.path is None or re.search(self.path, name) is not None

    def to_json(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"id": self.id, "action": self.action, "type": self.type}
        rule.update(count=self.remaining, path=self.path)
        if self.action == "fail":
            rule.update(code=self.code, message=self.message)
        return rule


class Operations:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._next: list[Next] = []
        self._next_ids = 0
        self._lock = threading.Lock()

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

        It reports done at `done_at` (default: `--operation-seconds` from now), unless a `Next`
        rule holds or fails it.
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
        internal: dict[str, Any] = {
            "doneAt": now + self.backend.settings.operation_seconds if done_at is None else done_at,
            "seq": self.backend.seq(),
            "type": type_of(metadata_type),
        }
        rule = self._take_next(internal["type"], name)
        if rule is not None and rule.action == "hold":
            internal["held"] = True
        elif rule is not None:
            internal["failure"] = {"code": rule.code, "message": rule.message}
        record = {"resource": operation, "internal": internal}
        self.backend.store.put(KIND, name, record)
        return self._view(record)

    def get(self, name: str) -> dict[str, Any]:
        return self._view(self._record(name))

    def outcome(self, name: str) -> str:
        """RUNNING, SUCCEEDED or FAILED: whether the effect of operation `name` happens yet, or ever."""
        view = self.get(name)
        if not view["done"]:
            return RUNNING
        return FAILED if "error" in view else SUCCEEDED

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

    # -- control plane ----------------------------------------------------------------------
    def steer(self, name: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        """`hold` a running operation, `release` a held one, `fail` one not done yet (with `code`, a
        google.rpc.Code, and `message`); returns the operation as clients now see it."""
        with self.backend.store.lock:
            record = self._record(name)
            internal = record["internal"]
            op_type = internal.get("type") or type_of(record["resource"]["metadata"]["@type"])
            if op_type not in STEERABLE:
                raise FailedPrecondition(
                    f"{name} is a {op_type} operation; only {sorted(STEERABLE)} operations can be "
                    "held or failed (their effect waits for the operation)"
                )
            done = self._view(record)["done"]
            if verb == "hold":
                if done:
                    raise FailedPrecondition(f"{name} is already done: clients may have seen it")
                internal["held"] = True
            elif verb == "release":
                if not internal.get("held"):
                    raise FailedPrecondition(f"{name} is not held")
                internal["held"] = False
            elif verb == "fail":
                if done:
                    raise FailedPrecondition(f"{name} is already done and cannot fail now")
                code, message = _failure(body)
                internal.update(held=False, failure={"code": code, "message": message})
                internal["doneAt"] = min(internal["doneAt"], self.backend.now())
            else:
                raise InvalidArgument(f"unknown operation verb {verb!r}: hold, release or fail")
            self.backend.store.put(KIND, name, record)
            return self._view(record)

    def add_next(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """A `Next` rule from `{type, count=1, path, code, message}` (code and message: fail only)."""
        allowed = {"type", "count", "path"} | ({"code", "message"} if action == "fail" else set())
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise InvalidArgument(f"unknown field(s) {unknown} of operations:{action}Next; known: {allowed}")
        op_type = body.get("type")
        if op_type not in STEERABLE:
            raise InvalidArgument(
                f"operations:{action}Next needs a type of {sorted(STEERABLE)}, got {op_type!r}"
            )
        count = body.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise InvalidArgument(f"count must be a positive integer, got {count!r}")
        path = body.get("path")
        if path is not None:
            try:
                re.compile(path)
            except re.error as exc:
                raise InvalidArgument(f"path {path!r} is not a regular expression: {exc}") from exc
        code, message = _failure(body) if action == "fail" else (CODE_INTERNAL, "")
        with self._lock:
            self._next_ids += 1
            rule = Next(self._next_ids, action, op_type, count, path, code, message)
            self._next.append(rule)
            return rule.to_json()

    def next_rules(self) -> builtins.list[dict[str, Any]]:  # `list` here is the method above
        with self._lock:
            return [rule.to_json() for rule in self._next]

    def clear_next(self) -> None:
        with self._lock:
            self._next.clear()

    # -- helpers ----------------------------------------------------------------------------
    def _take_next(self, op_type: str, name: str) -> Next | None:
        with self._lock:
            rule = next((r for r in self._next if r.matches(op_type, name)), None)
            if rule is not None:
                rule.remaining -= 1
            return rule

    def _record(self, name: str) -> dict[str, Any]:
        record = self.backend.store.get(KIND, name)
        if record is None:
            raise NotFound(f"Operation {name} not found")
        return record

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        operation = dict(record["resource"])
        internal = record["internal"]
        if internal.get("held") or self.backend.now() < internal["doneAt"]:
            operation["done"] = False
            operation.pop("response", None)
        elif internal.get("failure"):
            operation.pop("response", None)
            operation["error"] = dict(internal["failure"])
        return operation


def _failure(body: dict[str, Any]) -> tuple[int, str]:
    """(google.rpc.Code, message) of a failure asked for through the control plane."""
    code = body.get("code", CODE_INTERNAL)
    if not isinstance(code, int) or not 1 <= code <= 16:
        raise InvalidArgument(f"code must be a google.rpc.Code 1..16 (an error), got {code!r}")
    return code, str(body.get("message") or "failed by the emulator control plane")
