"""Model evaluations (`models/*/evaluations`): ImportModelEvaluation, Get- and ListModelEvaluations.

An evaluation belongs to one model version: imported under `models/ID`, `models/ID@VERSION` or
`models/ID@ALIAS`, it is kept under `models/ID@VERSION/evaluations/EID` (the version the name
resolves to now), which is what the console's Evaluate tab of that version lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vertex_emulator import fields, names
from vertex_emulator.exceptions import InvalidArgument, NotFound
from vertex_emulator.lifecycle import rfc3339

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

KIND = "modelEvaluations"
#: Output-only fields of ModelEvaluation (model_evaluation.proto): the server sets them.
_OUTPUT_ONLY = ("name", "createTime")


class ModelEvaluations:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def _version(self, parent: str) -> str:
        """`models/ID@VERSION` of the version `parent` names (NotFound when there is none)."""
        resource = self.backend.models.record(parent)["resource"]
        return f"{resource['name']}@{resource['versionId']}"

    def import_evaluation(self, parent: str, evaluation: dict[str, Any]) -> dict[str, Any]:
        if not evaluation:
            raise InvalidArgument("model_evaluation is required")
        fields.check_display_name(
            evaluation.get("displayName"), "model_evaluation.display_name", required=False
        )
        with self.store.lock:
            version = self._version(parent)
            name = f"{version}/evaluations/{self.store.next_id(KIND)}"
            resource = {
                **{k: v for k, v in evaluation.items() if k not in _OUTPUT_ONLY},
                "name": name,
                "createTime": rfc3339(self.backend.now()),
            }
            self.store.put(KIND, name, {"resource": resource, "internal": {"seq": self.backend.seq()}})
            return resource

    def get(self, name: str) -> dict[str, Any]:
        parent, _, evaluation_id = name.rpartition("/evaluations/")
        if not evaluation_id or "/" in evaluation_id:
            raise NotFound(f"{name!r} is not a model evaluation name")
        names.parse(parent, "models")
        record = self.store.get(KIND, f"{self._version(parent)}/evaluations/{evaluation_id}")
        if record is None:
            raise NotFound(f"ModelEvaluation {name} not found")
        return dict(record["resource"])

    def list(self, parent: str) -> list[dict[str, Any]]:
        """The evaluations of the version `parent` names, oldest first."""
        records = self.store.scan(KIND, f"{self._version(parent)}/evaluations/")
        return [dict(r["resource"]) for r in sorted(records, key=lambda r: r["internal"]["seq"])]
