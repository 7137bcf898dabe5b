"""Deploy a registered model version to an endpoint (got or created by display name).

The deploy operation is waited for in the triggerer, not on a worker. Re-running with a version
that already serves on the endpoint changes nothing; a re-run while an earlier try's deploy is
still in flight waits for it instead of deploying the version a second time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning import vertex_jobs as vj
from aria_tuning.errors import ConfigurationError, VertexError
from aria_tuning.hooks import vertex_call
from aria_tuning.links import VertexEndpointLink
from aria_tuning.operators.base import VertexBaseOperator
from aria_tuning.triggers import VertexOperationTrigger

#: The metadata type of a DeployModel operation (UndeployModel's ends in "UndeployModel...").
_DEPLOY_METADATA = ".DeployModelOperationMetadata"


def canary_split(current: dict[str, int], percent: int) -> dict[str, int]:
    """Traffic for a DeployModel request: "0" (the new model) gets `percent`, the rest keep their shares.

    With nothing else serving, the new model takes everything (Vertex wants a total of 100).
    """
    others = {k: v for k, v in current.items() if v > 0}
    if percent >= 100 or not others:
        return {"0": 100}
    return {"0": percent, **scaled_split(others, 100 - percent)}


def scaled_split(shares: dict[str, int], total: int) -> dict[str, int]:
    """`shares` (positive) scaled to whole percentages adding up to exactly `total`."""
    current = sum(shares.values())
    split = {k: total * v // current for k, v in shares.items()}
    split[next(iter(split))] += total - sum(split.values())  # rounding leftovers
    return split


def find_deployed(endpoint: Any, model_version: str) -> str | None:
    """The deployed model id serving `projects/.../models/ID@VERSION` on `endpoint`, if any."""
    model, version = model_version.split("@", 1)
    for deployed in endpoint.deployed_models:
        if deployed.model.split("@", 1)[0] == model and (deployed.model_version_id or version) == version:
            return str(deployed.id)
    return None


def deploys_in_flight(client: Any, endpoint: str) -> list[str]:
    """Names of the unfinished DeployModel operations on `endpoint` (listed under it, as on Vertex)."""
    names: list[str] = []
    token = ""
    while True:
        list_page = functools.partial(client.list_operations, request={"name": endpoint, "page_token": token})
        page = vertex_call(endpoint, "listing the endpoint's operations", list_page)
        names += [
            op.name
            for op in page.operations
            if not op.done and op.metadata.type_url.endswith(_DEPLOY_METADATA)
        ]
        token = page.next_page_token
        if not token:
            return names


def _endpoint_of(event: dict[str, Any]) -> str:
    """`projects/../endpoints/ID/operations/OP` -> `projects/../endpoints/ID`."""
    return str(event["operations"][0]).split("/operations/", 1)[0]


class DeployModelOperator(VertexBaseOperator):
    """Deploy `model_version` to the endpoint `endpoint_display_name` with `traffic_percentage`.

    Returns `{endpoint, deployed_model_id, model_version, traffic_split, deployed}`.
    """

    template_fields: Sequence[str] = (
        "model_version",
        "endpoint_display_name",
        "traffic_percentage",
        "machine_type",
        "impersonation_chain",
    )
    operator_extra_links = (VertexEndpointLink(),)

    def __init__(
        self,
        *,
        model_version: str,
        endpoint_display_name: str = "ARIA-text-endpoint",
        traffic_percentage: int | str = 100,
        undeploy_older: bool = False,
        machine_type: str | None = None,
        min_replica_count: int = 1,
        max_replica_count: int = 1,
        poll_interval: float = 15.0,
        max_poll_interval: float = 120.0,
        operation_timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_version = model_version
        self.endpoint_display_name = endpoint_display_name
        self.traffic_percentage = traffic_percentage
        self.undeploy_older = undeploy_older
        self.machine_type = machine_type
        self.min_replica_count = min_replica_count
        self.max_replica_count = max_replica_count
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.operation_timeout = operation_timeout

    def _percent(self) -> int:
        try:
            percent = int(str(self.traffic_percentage))
        except ValueError:
            raise ConfigurationError(
                f"traffic_percentage must be 1..100, got {self.traffic_percentage!r}"
            ) from None
        if not 1 <= percent <= 100:
            raise ConfigurationError(f"traffic_percentage must be 1..100, got {percent}")
        return percent

    def _trigger(self, operations: list[str]) -> VertexOperationTrigger:
        return VertexOperationTrigger(
            operation_names=operations,
            service="endpoint",
            gcp_conn_id=self.gcp_conn_id,
            impersonation_chain=self.impersonation_chain,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
        )

    def execute(self, context: Context) -> dict[str, Any] | None:
        if "@" not in str(self.model_version) or "/models/" not in str(self.model_version):
            raise ConfigurationError(
                f"model_version must be projects/.../models/ID@VERSION, got {self.model_version!r}"
            )
        self._percent()  # fail on a bad percentage before any Vertex call
        region = vj.resource_region(self.model_version)
        client = self.hook.client("endpoint", region)
        endpoint = self._get_or_create_endpoint(client, region)
        VertexEndpointLink.persist(context, vj.endpoint_console_url(endpoint.name))
        return self._deploy_once(client, endpoint)

    def execute_after_in_flight(self, context: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        """Earlier deploys on the endpoint ended: deploy only if none of them deployed our version."""
        endpoint_name = _endpoint_of(event)
        if event.get("status") != "success":
            self.log.warning("An earlier deploy on %s failed: %s", endpoint_name, event.get("message"))
        client = self.hook.client("endpoint", vj.resource_region(endpoint_name))
        endpoint = vertex_call(
            endpoint_name, "reading the endpoint", lambda: client.get_endpoint(name=endpoint_name)
        )
        return self._deploy_once(client, endpoint)

    def _deploy_once(self, client: Any, endpoint: Any) -> dict[str, Any] | None:
        if find_deployed(endpoint, self.model_version):
            self.log.info("%s already serves %s: nothing to deploy", endpoint.name, self.model_version)
            return self._finish(client, endpoint.name, deployed=False)
        # A deployed model shows on the endpoint only once its operation is done, and it carries
        # no labels: an earlier try killed while its deploy was in flight is only visible as an
        # unfinished DeployModel operation. Wait for those, then decide again.
        in_flight = deploys_in_flight(client, endpoint.name)
        if in_flight:
            self.log.info(
                "Deploys still in flight on %s (%s): waiting for them before deploying %s",
                endpoint.name,
                ", ".join(in_flight),
                self.model_version,
            )
            self.defer(trigger=self._trigger(in_flight), method_name="execute_after_in_flight")
        percent = self._percent()
        operation = vertex_call(
            endpoint.name,
            f"deploying {self.model_version}",
            lambda: client.deploy_model(
                endpoint=endpoint.name,
                deployed_model=self._deployed_model_spec(),
                traffic_split=canary_split(dict(endpoint.traffic_split), percent),
            ),
            retry=False,  # not idempotent: a blind retry could deploy the version twice
        )
        self.log.info(
            "Deploying %s to %s (operation %s)", self.model_version, endpoint.name, operation.operation.name
        )
        self.defer(trigger=self._trigger([operation.operation.name]), method_name="execute_deployed")
        return None

    def _deployed_model_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "model": self.model_version,
            "display_name": vj.label_value(self.model_version.rsplit("/", 1)[-1].replace("@", "-v")),
        }
        if self.machine_type:
            spec["dedicated_resources"] = {
                "machine_spec": {"machine_type": self.machine_type},
                "min_replica_count": self.min_replica_count,
                "max_replica_count": self.max_replica_count,
            }
        else:
            spec["automatic_resources"] = {
                "min_replica_count": self.min_replica_count,
                "max_replica_count": self.max_replica_count,
            }
        return spec

    def _get_or_create_endpoint(self, client: Any, region: str) -> Any:
        location = f"projects/{vj.resource_project(self.model_version)}/locations/{region}"
        flt = f'display_name="{self.endpoint_display_name}"'
        found = vertex_call(
            location,
            f"listing endpoints named {self.endpoint_display_name}",
            lambda: list(client.list_endpoints(request={"parent": location, "filter": flt})),
        )
        found = [e for e in found if e.display_name == self.endpoint_display_name]
        if found:
            return min(found, key=lambda e: e.create_time)
        operation = vertex_call(
            location,
            f"creating endpoint {self.endpoint_display_name}",
            lambda: client.create_endpoint(
                parent=location, endpoint={"display_name": self.endpoint_display_name}
            ),
            retry=False,  # not idempotent: the task's retry finds an endpoint that landed by its name
        )
        endpoint = vertex_call(
            location, "waiting for the endpoint", lambda: operation.result(self.operation_timeout)
        )
        self.log.info("Created endpoint %s (%s)", endpoint.name, self.endpoint_display_name)
        return endpoint

    def execute_deployed(self, context: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        endpoint = _endpoint_of(event)
        if event.get("status") != "success":
            raise VertexError(
                f"deploying {self.model_version} failed: {event.get('message')}", resource=endpoint
            )
        client = self.hook.client("endpoint", vj.resource_region(endpoint))
        if self.undeploy_older:
            current = vertex_call(
                endpoint, "reading the endpoint", lambda: client.get_endpoint(name=endpoint)
            )
            ours = find_deployed(current, self.model_version)
            older = [str(d.id) for d in current.deployed_models if str(d.id) != ours]
            if older and dict(current.traffic_split).get(ours or "", 0) == 100:
                operations = [self._undeploy(client, endpoint, deployed_id) for deployed_id in older]
                self.defer(trigger=self._trigger(operations), method_name="execute_undeployed")
            elif older:
                self.log.info("Not undeploying %s: the new version does not take all traffic yet", older)
        return self._finish(client, endpoint, deployed=True)

    def execute_undeployed(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        endpoint = _endpoint_of(event)
        if event.get("status") != "success":
            raise VertexError(f"undeploying older versions failed: {event.get('message')}", resource=endpoint)
        return self._finish(
            self.hook.client("endpoint", vj.resource_region(endpoint)), endpoint, deployed=True
        )

    def _undeploy(self, client: Any, endpoint: str, deployed_id: str) -> str:
        operation = vertex_call(
            endpoint,
            f"undeploying {deployed_id}",
            lambda: client.undeploy_model(endpoint=endpoint, deployed_model_id=deployed_id),
            retry=False,
        )
        self.log.info("Undeploying %s from %s", deployed_id, endpoint)
        return str(operation.operation.name)

    def _finish(self, client: Any, endpoint_name: str, deployed: bool) -> dict[str, Any]:
        endpoint = vertex_call(
            endpoint_name, "reading the endpoint", lambda: client.get_endpoint(name=endpoint_name)
        )
        deployed_id = find_deployed(endpoint, self.model_version)
        if deployed_id is None:
            raise VertexError(
                f"{self.model_version} is not deployed after the deploy operation", resource=endpoint_name
            )
        result = {
            "endpoint": endpoint_name,
            "deployed_model_id": deployed_id,
            "model_version": self.model_version,
            "traffic_split": dict(endpoint.traffic_split),
            "deployed": deployed,
        }
        self.log.info("Deployment: %s", result)
        return result
