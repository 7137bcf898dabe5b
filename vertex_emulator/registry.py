"""The Model Registry: models, their versions and version aliases.

Each version is one record keyed `projects/P/locations/L/models/ID@VERSION`; the version that
holds the `default` alias is what `models/ID` (and ListModels) returns. Tuned models keep the
(prompt, answer) pairs they were tuned on, which is what they answer from once deployed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from vertex_emulator import filters, names
from vertex_emulator.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from vertex_emulator.lifecycle import rfc3339
from vertex_emulator.operations import generic_metadata

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

KIND = "models"
DEFAULT_ALIAS = "default"
_ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
_FILTER_FIELDS = frozenset({"displayName", "name", "versionId"})


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
    ) -> dict[str, Any]:
        """Register a model (or a new version of `parent_model`); returns the version's wire dict."""
        names.check_parent(parent)
        if not model.get("displayName"):
            raise InvalidArgument("model.display_name is required")
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
            if parent_model:
                first = self.get(model_name)
                resource["createTime"] = first["createTime"]
            if examples is None:
                examples = self._examples_of_artifact(model.get("artifactUri", ""))
            internal = {"examples": examples, "seq": self.backend.seq()}
            self.store.put(KIND, f"{model_name}@{version}", {"resource": resource, "internal": internal})
            return self._view(resource)

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
            return self._view(resource)

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

    # -- reads ------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any]:
        return self._view(self.record(name)["resource"])

    def examples(self, name: str) -> list[list[str]]:
        """What the version answers from; none when degraded through the control plane."""
        internal = self.record(name)["internal"]
        return [] if internal.get("degraded") else list(internal.get("examples") or [])

    def find(self, parent: str, filter_expr: str) -> list[dict[str, Any]]:
        names.check_parent(parent)
        keep = filters.compile_filter(filter_expr, _FILTER_FIELDS)
        defaults = [
            r["resource"]
            for r in self.store.scan(KIND, f"{parent}/models/")
            if DEFAULT_ALIAS in (r["resource"].get("versionAliases") or [])
        ]
        return [self._view(r) for r in defaults if keep(r)]

    def list_versions(self, name: str, filter_expr: str) -> list[dict[str, Any]]:
        parsed = names.parse(name, KIND)
        versions = self._versions(parsed.unversioned)
        if not versions:
            raise NotFound(f"Model {name} not found")
        keep = filters.compile_filter(filter_expr, _FILTER_FIELDS)
        return [self._view(v["resource"]) for v in versions if keep(v["resource"])]

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

    def _examples_of_artifact(self, artifact_uri: str) -> list[list[str]]:
        """Same weights, same answers: a re-upload of a tuned model's artifacts answers like it."""
        if not artifact_uri:
            return []
        for record in self.store.scan(KIND):
            if record["resource"].get("artifactUri") == artifact_uri and record["internal"].get("examples"):
                return list(record["internal"]["examples"])
        return []

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

    def _view(self, resource: dict[str, Any]) -> dict[str, Any]:
        view = dict(resource)
        view["deployedModels"] = self.backend.endpoints.deployments_of(
            resource["name"], resource["versionId"]
        )
        return view
