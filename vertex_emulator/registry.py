"""The Model Registry: models, their versions and version aliases.

Each version is one record keyed `projects/P/locations/L/models/ID@VERSION`; the version that
holds the `default` alias is what `models/ID` (and ListModels) returns. Tuned models keep the
(prompt, answer) pairs they were tuned on, which is what they answer from once deployed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from vertex_emulator import fields, filters, names
from vertex_emulator.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from vertex_emulator.lifecycle import rfc3339
from vertex_emulator.operations import generic_metadata

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

KIND = "models"
DEFAULT_ALIAS = "default"
_ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
LIST = filters.registry_schema("Model", "model")  # ListModelsRequest.filter and .order_by
# ListModelVersionsRequest.filter documents labels only; order_by create_time, update_time (of the
# version: every version carries the model's create_time).
VERSIONS = filters.Schema(
    "Model version",
    (
        filters.Field("labels", filters.LABELS, frozenset()),
        filters.Field("create_time", filters.TIME, frozenset(), get=lambda m: m.get("versionCreateTime")),
        filters.Field("update_time", filters.TIME, frozenset(), get=lambda m: m.get("versionUpdateTime")),
    ),
    order_by=("create_time", "update_time"),
)
# UpdateModelRequest.model: "Supported model fields: display_name, description; supported
# version-specific fields: version_description. Labels are supported in both scenarios."
_MODEL_FIELDS = frozenset({"displayName", "description"})
_VERSION_FIELDS = frozenset({"versionDescription"})


class ModelRegistry:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    # -- writes -----------------------------------------------------------------------------
    def upload_operation(
        self, parent: str, model: dict[str, Any], parent_model: str = "", model_id: str = ""
    ) -> dict[str, Any]:
        """ModelService.UploadModel: the long-running operation whose response names the version."""
        version = self.upload(parent, model, parent_model, model_id)
        return self.backend.operations.create(
            version["name"],
            "UploadModelOperationMetadata",
            generic_metadata(self.backend.now()),
            "UploadModelResponse",
            {"model": version["name"], "modelVersionId": version["versionId"]},
        )

    def upload(
        self,
        parent: str,
        model: dict[str, Any],
        parent_model: str = "",
        model_id: str = "",
        examples: list[list[str]] | None = None,
        tuned_from: str = "",
    ) -> dict[str, Any]:
        """Register a model (or a new version of `parent_model`); returns the version's wire dict.

        `examples` are what the model answers from; `tuned_from` the Gemini base model of a tuned one.
        """
        names.check_parent(parent)
        fields.check_display_name(model.get("displayName"), "model.display_name")
        fields.check_labels(model.get("labels"), "model.labels")
        aliases = list(model.get("versionAliases") or [])
        for alias in aliases:
            if not _ALIAS.match(alias):
                raise InvalidArgument(
                    f"invalid version alias {alias!r}: expected [a-z][a-zA-Z0-9-]{{0,126}}[a-z0-9]"
                )
        with self.store.lock:
            if parent_model:
                base = names.parse(parent_model, KIND)
                if base.parent != parent:
                    raise InvalidArgument(f"parent_model {parent_model} is not under {parent}")
                existing = self._versions(base.unversioned)
                if not existing:
                    raise NotFound(f"Model {parent_model} not found")
                model_name = base.unversioned
                version = str(max(int(v["resource"]["versionId"]) for v in existing) + 1)
            else:
                if model_id and not names.USER_ID.match(model_id):
                    raise InvalidArgument(f"invalid model_id {model_id!r}")
                model_name = f"{parent}/models/{model_id or self.store.next_id(KIND)}"
                if self._versions(model_name):
                    raise AlreadyExists(f"Model {model_name} already exists")
                version = "1"
                if DEFAULT_ALIAS not in aliases:
                    aliases.insert(0, DEFAULT_ALIAS)
            for alias in aliases:
                self._take_alias(model_name, alias)
            now = rfc3339(self.backend.now())
            resource = {
                **{k: v for k, v in model.items() if k not in ("name", "versionId", "deployedModels")},
                "name": model_name,
                "versionId": version,
                "versionAliases": aliases,
                "createTime": now,
                "updateTime": now,
                "versionCreateTime": now,
                "versionUpdateTime": now,
                "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"],
            }
            model_labels: dict[str, str] = {}
            if parent_model:
                first = self.record(model_name)
                resource["createTime"] = first["resource"]["createTime"]
                model_labels = dict(first["internal"].get("modelLabels") or {})
            degraded = False
            if examples is None:
                examples, degraded = self._examples_of_artifact(model.get("artifactUri", ""))
            internal = {
                "examples": examples,
                "seq": self.backend.seq(),
                "modelLabels": model_labels,
                "tunedFrom": tuned_from,
                "degraded": degraded,
            }
            record = {"resource": resource, "internal": internal}
            self.store.put(KIND, f"{model_name}@{version}", record)
            return self._view(record)

    def merge_version_aliases(self, name: str, aliases: list[str]) -> dict[str, Any]:
        with self.store.lock:
            record = self.record(name)
            resource = record["resource"]
            model_name = resource["name"]
            current = list(resource.get("versionAliases") or [])
            for alias in aliases:
                removing = alias.startswith("-")
                bare = alias[1:] if removing else alias
                if not _ALIAS.match(bare):
                    raise InvalidArgument(f"invalid version alias {alias!r}")
                if bare == DEFAULT_ALIAS and removing:
                    raise InvalidArgument("the 'default' alias cannot be removed; move it to another version")
                if removing:
                    current = [a for a in current if a != bare]
                elif bare not in current:
                    self._take_alias(model_name, bare)
                    current.append(bare)
            resource["versionAliases"] = current
            resource["versionUpdateTime"] = resource["updateTime"] = rfc3339(self.backend.now())
            self.store.put(KIND, f"{model_name}@{resource['versionId']}", record)
            return self._view(record)

    def update(self, name: str, model: dict[str, Any], update_mask: list[str]) -> dict[str, Any]:
        """ModelService.UpdateModel, by the rules of UpdateModelRequest.model (model_service.proto):
        `models/ID` or `models/ID@-` updates the model (display_name, description, labels),
        `models/ID@VERSION` (or @alias) the version (version_description, labels); a model field on a
        version name, or the other way round, is a precondition error; both kinds at once a 400."""
        paths = {names.camel(path) for path in update_mask}
        if not paths:
            raise InvalidArgument("update_mask is required")
        unknown = sorted(paths - _MODEL_FIELDS - _VERSION_FIELDS - {"labels"})
        if unknown:
            raise InvalidArgument(
                f"Model fields {unknown} cannot be updated; UpdateModel updates display_name, description "
                "and labels of a model, version_description and labels of a version (version aliases "
                "change through :mergeVersionAliases)"
            )
        if paths & _MODEL_FIELDS and paths & _VERSION_FIELDS:
            raise InvalidArgument(
                f"one request cannot update both model fields {sorted(paths & _MODEL_FIELDS)} and version "
                f"fields {sorted(paths & _VERSION_FIELDS)}; update them separately"
            )
        parsed = names.parse(name, KIND)
        of_version = parsed.version not in (None, "-")
        if of_version and paths & _MODEL_FIELDS:
            raise FailedPrecondition(
                f"{name} names a model version, but {sorted(paths & _MODEL_FIELDS)} are fields of the "
                f"model: update them on {parsed.unversioned}"
            )
        if not of_version and paths & _VERSION_FIELDS:
            raise FailedPrecondition(
                f"{name} names the model, but {sorted(paths & _VERSION_FIELDS)} are fields of a version: "
                f"update them on {parsed.unversioned}@VERSION"
            )
        if "displayName" in paths:
            fields.check_display_name(model.get("displayName"), "model.display_name")
        if "labels" in paths:
            fields.check_labels(model.get("labels"), "model.labels")
        now = rfc3339(self.backend.now())
        with self.store.lock:
            targets = [self.record(name)] if of_version else self._versions(parsed.unversioned)
            if not targets:
                raise NotFound(f"Model {name} not found")
            for record in targets:
                resource = record["resource"]
                for path in paths - {"labels"}:
                    if model.get(path):
                        resource[path] = model[path]
                    else:
                        resource.pop(path, None)
                if "labels" in paths and of_version:
                    resource["labels"] = dict(model.get("labels") or {})
                elif "labels" in paths:
                    record["internal"]["modelLabels"] = dict(model.get("labels") or {})
                resource["updateTime"] = now
                if of_version:
                    resource["versionUpdateTime"] = now
                self.store.put(KIND, f"{resource['name']}@{resource['versionId']}", record)
            return self.get(name if of_version else parsed.unversioned)

    def delete(self, name: str) -> dict[str, Any]:
        with self.store.lock:
            parsed = names.parse(name, KIND)
            if parsed.version:
                raise InvalidArgument(f"{name}: delete a version with :deleteVersion")
            versions = self._versions(parsed.unversioned)
            if not versions:
                raise NotFound(f"Model {name} not found")
            for version in versions:
                self._refuse_if_deployed(version["resource"])
            for version in versions:
                self.store.delete(KIND, f"{parsed.unversioned}@{version['resource']['versionId']}")
        return self.backend.operations.create(
            parsed.unversioned,
            "DeleteOperationMetadata",
            generic_metadata(self.backend.now()),
            "type.googleapis.com/google.protobuf.Empty",
            {},
        )

    def delete_version(self, name: str) -> dict[str, Any]:
        with self.store.lock:
            record = self.record(name)
            resource = record["resource"]
            if DEFAULT_ALIAS in (resource.get("versionAliases") or []):
                raise FailedPrecondition(f"{name} is the default version; move the 'default' alias first")
            self._refuse_if_deployed(resource)
            self.store.delete(KIND, f"{resource['name']}@{resource['versionId']}")
        return self.backend.operations.create(
            resource["name"],
            "DeleteOperationMetadata",
            generic_metadata(self.backend.now()),
            "type.googleapis.com/google.protobuf.Empty",
            {},
        )

    def set_degraded(self, name: str, degraded: bool) -> dict[str, Any]:
        """Make a model version answer badly (echo, as if untuned) or well again: quality gates' demo."""
        with self.store.lock:
            record = self.record(name)
            record["internal"]["degraded"] = degraded
            resource = record["resource"]
            self.store.put(KIND, f"{resource['name']}@{resource['versionId']}", record)
            return {"model": f"{resource['name']}@{resource['versionId']}", "degraded": degraded}

    def set_failing(self, name: str, failing: bool) -> dict[str, Any]:
        """Make a model version's predictions fail with 500 INTERNAL (a crashing model server), or not."""
        with self.store.lock:
            record = self.record(name)
            record["internal"]["failing"] = failing
            resource = record["resource"]
            self.store.put(KIND, f"{resource['name']}@{resource['versionId']}", record)
            return {"model": f"{resource['name']}@{resource['versionId']}", "failing": failing}

    def failing(self, name: str) -> bool:
        return bool(self.record(name)["internal"].get("failing"))

    # -- reads ------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any]:
        return self._view(self.record(name))

    def examples(self, name: str) -> list[list[str]]:
        """What the version answers from; none when degraded through the control plane."""
        internal = self.record(name)["internal"]
        return [] if internal.get("degraded") else list(internal.get("examples") or [])

    def find(self, parent: str, filter_expr: str, order_by: str = "") -> list[dict[str, Any]]:
        """ListModels: the default version of each model, in creation order unless `order_by`."""
        names.check_parent(parent)
        keep = filters.compile_filter(filter_expr, LIST)
        defaults = [
            self._view(r)
            for r in self.store.scan(KIND, f"{parent}/models/")
            if DEFAULT_ALIAS in (r["resource"].get("versionAliases") or [])
        ]
        return filters.order([m for m in defaults if keep(m)], order_by, LIST)

    def list_versions(self, name: str, filter_expr: str, order_by: str = "") -> list[dict[str, Any]]:
        parsed = names.parse(name, KIND)
        keep = filters.compile_filter(filter_expr, VERSIONS)
        versions = self._versions(parsed.unversioned)
        if not versions:
            raise NotFound(f"Model {name} not found")
        return filters.order([v for v in map(self._view, versions) if keep(v)], order_by, VERSIONS)

    def count(self) -> dict[str, int]:
        versions = self.store.scan(KIND)
        return {"models": len({v["resource"]["name"] for v in versions}), "modelVersions": len(versions)}

    # -- helpers ----------------------------------------------------------------------------
    def _versions(self, model_name: str) -> list[dict[str, Any]]:
        return self.store.scan(KIND, f"{model_name}@")

    def record(self, name: str) -> dict[str, Any]:
        """The record of `models/ID`, `models/ID@VERSION` or `models/ID@ALIAS`."""
        parsed = names.parse(name, KIND)
        wanted = parsed.version or DEFAULT_ALIAS
        for record in self._versions(parsed.unversioned):
            resource = record["resource"]
            if wanted == resource["versionId"] or wanted in (resource.get("versionAliases") or []):
                return record
        raise NotFound(f"Model {name} not found")

    def _examples_of_artifact(self, artifact_uri: str) -> tuple[list[list[str]], bool]:
        """Same weights, same answers: a re-upload of a tuned model's artifacts answers like it
        (degraded too, when that model is). Returns (examples, degraded)."""
        if not artifact_uri:
            return [], False
        for record in self.store.scan(KIND):
            if record["resource"].get("artifactUri") == artifact_uri and record["internal"].get("examples"):
                return list(record["internal"]["examples"]), bool(record["internal"].get("degraded"))
        return [], False

    def _take_alias(self, model_name: str, alias: str) -> None:
        """Remove `alias` from whichever version of `model_name` holds it (aliases are unique)."""
        for record in self._versions(model_name):
            resource = record["resource"]
            if alias in (resource.get("versionAliases") or []):
                resource["versionAliases"] = [a for a in resource["versionAliases"] if a != alias]
                self.store.put(KIND, f"{model_name}@{resource['versionId']}", record)

    def _refuse_if_deployed(self, resource: dict[str, Any]) -> None:
        refs = self.backend.endpoints.deployments_of(resource["name"], resource["versionId"])
        if refs:
            raise FailedPrecondition(
                f"Model {resource['name']}@{resource['versionId']} is deployed to {refs[0]['endpoint']}; "
                "undeploy it first"
            )

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        resource = record["resource"]
        view = dict(resource)
        # "Both the model labels and the version labels are merged when a model is returned"
        # (UpdateModelRequest.model); a model-level update wins over a version's label of that key.
        labels = {**(resource.get("labels") or {}), **(record["internal"].get("modelLabels") or {})}
        if labels:
            view["labels"] = labels
        view["deployedModels"] = self.backend.endpoints.deployments_of(
            resource["name"], resource["versionId"]
        )
        return view
