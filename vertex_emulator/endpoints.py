"""Endpoints: create, deploy and undeploy models, traffic splits.

A deployed model points at one model version; the registry derives each model's
`deployedModels` from here, so the two never disagree. As on Vertex, a model being deployed
joins the endpoint (and its traffic split) only when its DeployModel operation succeeds, and one
being undeployed leaves it only when its UndeployModel operation does; a failed operation
changes nothing (`operations` lets tests hold and fail them).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from vertex_emulator import fields, filters, names, operations
from vertex_emulator.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from vertex_emulator.lifecycle import rfc3339
from vertex_emulator.operations import generic_metadata

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

KIND = "endpoints"
LIST = filters.registry_schema("Endpoint", "endpoint")  # ListEndpointsRequest.filter and .order_by
#: DeployedModel fields mutateDeployedModel may change (Vertex AI REST reference).
_UPDATABLE = frozenset({"displayName", "description", "labels", "trafficSplit"})
_MUTABLE = frozenset(
    {
        "dedicatedResources",
        "automaticResources",
        "disableContainerLogging",
        "enableContainerLogging",
        "enableAccessLogging",
    }
)


class Endpoints:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def create(self, parent: str, endpoint: dict[str, Any], endpoint_id: str = "") -> dict[str, Any]:
        resource = self.create_now(parent, endpoint, endpoint_id)
        return self.backend.operations.create(
            resource["name"],
            "CreateEndpointOperationMetadata",
            generic_metadata(self.backend.now()),
            "Endpoint",
            resource,
        )

    def create_now(self, parent: str, endpoint: dict[str, Any], endpoint_id: str = "") -> dict[str, Any]:
        names.check_parent(parent)
        fields.check_display_name(endpoint.get("displayName"), "endpoint.display_name")
        fields.check_labels(endpoint.get("labels"), "endpoint.labels")
        if endpoint_id and not names.USER_ID.match(endpoint_id):
            raise InvalidArgument(f"invalid endpoint_id {endpoint_id!r}")
        with self.store.lock:
            name = f"{parent}/endpoints/{endpoint_id or self.store.next_id(KIND)}"
            if self.store.get(KIND, name) is not None:
                raise AlreadyExists(f"Endpoint {name} already exists")
            now = rfc3339(self.backend.now())
            resource = {
                **{k: v for k, v in endpoint.items() if k not in ("deployedModels", "trafficSplit")},
                "name": name,
                "createTime": now,
                "updateTime": now,
                "deployedModels": [],
                "trafficSplit": {},
            }
            self.store.put(KIND, name, {"resource": resource, "internal": {"seq": self.backend.seq()}})
            return resource

    def get(self, name: str) -> dict[str, Any]:
        return self._record(name)["resource"]

    def find(self, parent: str, filter_expr: str, order_by: str = "") -> list[dict[str, Any]]:
        """ListEndpoints, in creation order unless `order_by`."""
        names.check_parent(parent)
        keep = filters.compile_filter(filter_expr, LIST)
        found = [r["resource"] for r in self._scan(f"{parent}/endpoints/") if keep(r["resource"])]
        return filters.order(found, order_by, LIST)

    def update(self, name: str, endpoint: dict[str, Any], update_mask: list[str]) -> dict[str, Any]:
        """EndpointService.UpdateEndpoint: display name, description, labels, traffic split."""
        paths = [names.camel(p) for p in update_mask]
        if not paths:
            raise InvalidArgument("update_mask is required")
        bad = sorted(set(paths) - _UPDATABLE)
        if bad:
            raise InvalidArgument(f"endpoint fields {bad} cannot be updated; updatable: {sorted(_UPDATABLE)}")
        if "displayName" in paths:
            fields.check_display_name(endpoint.get("displayName"), "endpoint.display_name")
        if "labels" in paths:
            fields.check_labels(endpoint.get("labels"), "endpoint.labels")
        with self.store.lock:
            record = self._record(name)
            resource = record["resource"]
            for path in paths:
                value = endpoint.get(path)
                if path == "trafficSplit":
                    split = {k: int(v) for k, v in (value or {}).items()}
                    if split:
                        self._check_split(name, split, resource["deployedModels"])
                    value = split
                if value is None:
                    resource.pop(path, None)
                else:
                    resource[path] = value
            resource["updateTime"] = rfc3339(self.backend.now())
            self.store.put(KIND, name, record)
            return resource

    def delete(self, name: str) -> dict[str, Any]:
        with self.store.lock:
            record = self._record(name)
            resource = record["resource"]
            if resource["deployedModels"] or record["internal"].get("pendingDeploys"):
                raise FailedPrecondition(f"Endpoint {name} still has deployed models; undeploy them first")
            self.store.delete(KIND, name)
        return self.backend.operations.create(
            name,
            "DeleteOperationMetadata",
            generic_metadata(self.backend.now()),
            "type.googleapis.com/google.protobuf.Empty",
            {},
        )

    def deploy(
        self, name: str, deployed_model: dict[str, Any], traffic_split: dict[str, int]
    ) -> dict[str, Any]:
        """DeployModel: the model joins the endpoint when its operation succeeds (never if it fails)."""
        with self.store.lock:
            deployed, split = self._deployment(name, deployed_model, traffic_split)
            operation = self.backend.operations.create(
                name,
                "DeployModelOperationMetadata",
                generic_metadata(self.backend.now()),
                "DeployModelResponse",
                {"deployedModel": deployed},
            )
            self._add_pending(
                name,
                "pendingDeploys",
                {"operation": operation["name"], "deployedModel": deployed, "trafficSplit": split},
            )
            return operation

    def deploy_now(
        self, name: str, deployed_model: dict[str, Any], traffic_split: dict[str, int]
    ) -> dict[str, Any]:
        """Deploy a model version at once, without an operation (a pipeline's or tuning job's deploy)."""
        with self.store.lock:
            deployed, split = self._deployment(name, deployed_model, traffic_split)
            record = self._record(name)
            _join(record["resource"], deployed, split)
            self.store.put(KIND, name, record)
            return deployed

    def _deployment(
        self, name: str, deployed_model: dict[str, Any], traffic_split: dict[str, int]
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """The DeployedModel and traffic split a deploy of `deployed_model` to `name` would make."""
        model_ref = deployed_model.get("model", "")
        if not model_ref:
            raise InvalidArgument("deployed_model.model is required")
        model = self.backend.models.get(model_ref)  # NotFound when the model or version is unknown
        with self.store.lock:
            record = self._record(name)
            resource = record["resource"]
            deployed_id = deployed_model.get("id") or str(self.store.next_id("deployedModels"))
            pending = record["internal"].get("pendingDeploys") or []
            if any(
                d["id"] == deployed_id
                for d in [*resource["deployedModels"], *(p["deployedModel"] for p in pending)]
            ):
                raise AlreadyExists(f"deployed model id {deployed_id} already exists on {name}")
            deployed = {
                **deployed_model,
                "id": deployed_id,
                "model": model["name"],
                "modelVersionId": model["versionId"],
                "displayName": deployed_model.get("displayName") or model["displayName"],
                "createTime": rfc3339(self.backend.now()),
            }
            split = {k: int(v) for k, v in traffic_split.items()}
            if split:
                split = {(deployed_id if k == "0" else k): v for k, v in split.items()}
                self._check_split(name, split, [*resource["deployedModels"], deployed])
            return deployed, split

    def undeploy(self, name: str, deployed_model_id: str, traffic_split: dict[str, int]) -> dict[str, Any]:
        """UndeployModel: the model leaves the endpoint when its operation succeeds (stays if it fails)."""
        with self.store.lock:
            record = self._record(name)
            resource = record["resource"]
            remaining = [d for d in resource["deployedModels"] if d["id"] != deployed_model_id]
            if len(remaining) == len(resource["deployedModels"]):
                raise NotFound(f"deployed model {deployed_model_id} not found on {name}")
            if any(
                u["deployedModelId"] == deployed_model_id
                for u in record["internal"].get("pendingUndeploys", [])
            ):
                raise FailedPrecondition(
                    f"deployed model {deployed_model_id} of {name} is already being undeployed"
                )
            split = {k: int(v) for k, v in traffic_split.items()}
            if split:
                self._check_split(name, split, remaining)
            operation = self.backend.operations.create(
                name,
                "UndeployModelOperationMetadata",
                generic_metadata(self.backend.now()),
                "UndeployModelResponse",
                {},
            )
            self._add_pending(
                name,
                "pendingUndeploys",
                {"operation": operation["name"], "deployedModelId": deployed_model_id, "trafficSplit": split},
            )
            return operation

    def mutate(self, name: str, deployed_model: dict[str, Any], update_mask: list[str]) -> dict[str, Any]:
        paths = [names.camel(p) for p in update_mask]
        if not paths:
            raise InvalidArgument("update_mask is required")
        bad = sorted(set(paths) - _MUTABLE)
        if bad:
            raise InvalidArgument(
                f"fields {bad} of a deployed model cannot be mutated; mutable: {sorted(_MUTABLE)}"
            )
        with self.store.lock:
            record = self._record(name)
            resource = record["resource"]
            target = next(
                (d for d in resource["deployedModels"] if d["id"] == deployed_model.get("id")), None
            )
            if target is None:
                raise NotFound(f"deployed model {deployed_model.get('id')!r} not found on {name}")
            for path in paths:
                if path in deployed_model:
                    target[path] = deployed_model[path]
                else:
                    target.pop(path, None)
            resource["updateTime"] = rfc3339(self.backend.now())
            self.store.put(KIND, name, record)
        return self.backend.operations.create(
            name,
            "MutateDeployedModelOperationMetadata",
            generic_metadata(self.backend.now()),
            "MutateDeployedModelResponse",
            {"deployedModel": target},
        )

    def deployments_of(self, model_name: str, version_id: str) -> list[dict[str, str]]:
        """DeployedModelRefs of one model version, for the registry's `deployedModels`."""
        parent = model_name.rsplit("/models/", 1)[0]
        return [
            {"endpoint": r["resource"]["name"], "deployedModelId": d["id"]}
            for r in self._scan(f"{parent}/endpoints/")
            for d in r["resource"]["deployedModels"]
            if d["model"] == model_name and d["modelVersionId"] == version_id
        ]

    def serving_model(self, name: str, request_key: str = "") -> dict[str, Any]:
        """The deployed model that answers a request, by the traffic split.

        The request's bytes pick a bucket 0..99 and the split's shares, in deployment order, own
        consecutive buckets: a 10% canary answers about one request in ten, the same request always
        lands on the same deployed model, and one taking 100% answers everything. Without a split
        (or a key) the largest share answers.
        """
        resource = self._record(name)["resource"]
        deployed = resource["deployedModels"]
        if not deployed:
            raise FailedPrecondition(f"Endpoint {name} has no deployed model")
        split = resource.get("trafficSplit") or {}
        if request_key and split:
            bucket = int(hashlib.sha256(request_key.encode()).hexdigest(), 16) % 100
            owned = 0
            for candidate in deployed:
                owned += int(split.get(candidate["id"], 0))
                if bucket < owned:
                    return candidate
        return max(deployed, key=lambda d: split.get(d["id"], 0))

    def _record(self, name: str) -> dict[str, Any]:
        names.parse(name, KIND)
        with self.store.lock:
            record = self.store.get(KIND, name)
            if record is None:
                raise NotFound(f"Endpoint {name} not found")
            return self._settled(record)

    def _scan(self, prefix: str) -> list[dict[str, Any]]:
        with self.store.lock:
            return [self._settled(record) for record in self.store.scan(KIND, prefix)]

    def _add_pending(self, name: str, key: str, change: dict[str, Any]) -> None:
        """Record a deploy or undeploy waiting for its operation (applied now if that is done)."""
        record = self.store.get(KIND, name)
        assert record is not None  # read under the same lock by the caller
        record["internal"].setdefault(key, []).append(change)
        self.store.put(KIND, name, record)
        self._settled(record)

    def _settled(self, record: dict[str, Any]) -> dict[str, Any]:
        """`record` with the deploys and undeploys whose operations ended applied (succeeded) or
        dropped (failed); those still running wait."""
        internal, resource = record["internal"], record["resource"]
        changed = False
        for key in ("pendingDeploys", "pendingUndeploys"):
            waiting = []
            for change in internal.get(key) or []:
                outcome = self._outcome(change)
                if outcome == operations.RUNNING:
                    waiting.append(change)
                    continue
                changed = True
                if outcome == operations.FAILED:
                    continue
                if key == "pendingDeploys":
                    _join(resource, change["deployedModel"], change["trafficSplit"])
                else:
                    _leave(resource, change["deployedModelId"], change["trafficSplit"], self.backend.now())
            internal[key] = waiting
        if changed:
            self.store.put(KIND, resource["name"], record)
        return record

    def _outcome(self, change: dict[str, Any]) -> str:
        if "operation" not in change:  # recorded before deploys waited for their operation
            return operations.SUCCEEDED if change.get("at", 0.0) <= self.backend.now() else operations.RUNNING
        try:
            return self.backend.operations.outcome(change["operation"])
        except NotFound:  # the operation is gone (a reset): nothing will end it
            return operations.FAILED

    @staticmethod
    def _check_split(name: str, split: dict[str, int], deployed: list[dict[str, Any]]) -> None:
        ids = {d["id"] for d in deployed}
        unknown = sorted(set(split) - ids)
        if unknown:
            raise InvalidArgument(f"traffic split of {name} names unknown deployed models {unknown}")
        if deployed and sum(split.values()) != 100:
            raise InvalidArgument(f"traffic split of {name} must add up to 100, got {sum(split.values())}")


def _join(resource: dict[str, Any], deployed: dict[str, Any], split: dict[str, int]) -> None:
    """Make `deployed` serve on the endpoint `resource` with `split`.

    No split: the first model takes all traffic, a later one none. A split decided when the
    deploy was requested may name models undeployed since: those are dropped, the rest rescaled.
    """
    if not split:
        split = (
            dict(resource.get("trafficSplit") or {}) if resource["deployedModels"] else {deployed["id"]: 100}
        )
    resource["deployedModels"].append(deployed)
    ids = {d["id"] for d in resource["deployedModels"]}
    kept = {k: v for k, v in split.items() if k in ids}
    resource["trafficSplit"] = (
        kept if len(kept) == len(split) else _renormalise(kept, resource["deployedModels"])
    )
    resource["updateTime"] = deployed["createTime"]


def _leave(resource: dict[str, Any], deployed_id: str, split: dict[str, int], now: float) -> None:
    """Make `deployed_id` stop serving on the endpoint `resource`; the rest get `split` (models
    since undeployed dropped, the rest rescaled) or, without one, the old shares rescaled."""
    remaining = [d for d in resource["deployedModels"] if d["id"] != deployed_id]
    if len(remaining) == len(resource["deployedModels"]):
        return
    ids = {d["id"] for d in remaining}
    old = {k: v for k, v in (resource.get("trafficSplit") or {}).items() if k != deployed_id}
    kept = {k: v for k, v in (split or old).items() if k in ids}
    resource["deployedModels"] = remaining
    resource["trafficSplit"] = kept if split and len(kept) == len(split) else _renormalise(kept, remaining)
    resource["updateTime"] = rfc3339(now)


def _renormalise(split: dict[str, int], remaining: list[dict[str, Any]]) -> dict[str, int]:
    if not remaining:
        return {}
    total = sum(split.values())
    if total == 0:
        return {remaining[0]["id"]: 100}
    scaled = {k: v * 100 // total for k, v in split.items()}
    first = next(iter(scaled))
    scaled[first] += 100 - sum(scaled.values())
    return scaled
