"""Deploy a registered model version to an endpoint (got or created by display name).

The deploy operation is waited for in the triggerer, not on a worker. Re-running with a version
that already serves on the endpoint changes nothing; a re-run while an earlier try's deploy is
still in flight waits for it instead of deploying the version a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning.errors import ConfigurationError, VertexError
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.links import VertexEndpointLink
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.resources import (
    endpoint_console_url,
    label_value,
    location_of,
    model_version_name,
)
from aria_tuning.traffic import canary_split, find_deployed, percentage
from aria_tuning.triggers import VertexOperationTrigger


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
        alias: str | None = None,
        console_link: bool = True,
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
        # Given once the version takes all the endpoint's traffic (e.g. `production`).
        self.alias = alias
        # False for an endpoint the run deletes afterwards (evaluation): no link to a page that goes away.
        self.console_link = console_link
        self.machine_type = machine_type
        self.min_replica_count = min_replica_count
        self.max_replica_count = max_replica_count
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.operation_timeout = operation_timeout

    @property
    def endpoints(self) -> EndpointHook:
        return self.hook(EndpointHook)

    def _trigger(self, operations: list[str]) -> VertexOperationTrigger:
        return VertexOperationTrigger(
            operation_names=operations,
            service="endpoint",
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            **self.hook_kwargs(),
        )

    def execute(self, context: Context) -> dict[str, Any] | None:
        try:  # bad parameters fail before any Vertex call, and a retry would fail alike
            model_version_name(self.model_version)
            percentage(self.traffic_percentage)
        except ConfigurationError as exc:
            raise fail_without_retry(exc) from exc
        endpoint = self.endpoints.get_or_create(
            location_of(self.model_version), self.endpoint_display_name, self.operation_timeout
        )
        if self.console_link:
            VertexEndpointLink.persist(context, endpoint_console_url(endpoint.name))
        return self._deploy_once(endpoint)

    def execute_after_in_flight(self, context: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        """Earlier deploys on the endpoint ended: deploy only if none of them deployed our version."""
        endpoint_name = _endpoint_of(event)
        if event.get("status") != "success":
            self.log.warning("An earlier deploy on %s failed: %s", endpoint_name, event.get("message"))
        return self._deploy_once(self.endpoints.get_endpoint(endpoint_name))

    def _deploy_once(self, endpoint: Any) -> dict[str, Any] | None:
        if find_deployed(endpoint, self.model_version):
            self.log.info("%s already serves %s: nothing to deploy", endpoint.name, self.model_version)
            return self._finish(endpoint.name, deployed=False)
        # A deployed model shows on the endpoint only once its operation is done, and it carries
        # no labels: an earlier try killed while its deploy was in flight is only visible as an
        # unfinished DeployModel operation. Wait for those, then decide again.
        in_flight = self.endpoints.deploys_in_flight(endpoint.name)
        if in_flight:
            self.log.info(
                "Deploys still in flight on %s (%s): waiting for them before deploying %s",
                endpoint.name,
                ", ".join(in_flight),
                self.model_version,
            )
            self.defer(trigger=self._trigger(in_flight), method_name="execute_after_in_flight")
        split = canary_split(dict(endpoint.traffic_split), percentage(self.traffic_percentage))
        operation = self.endpoints.deploy(endpoint.name, self._deployed_model_spec(), split)
        self.log.info("Deploying %s to %s (operation %s)", self.model_version, endpoint.name, operation)
        self.defer(trigger=self._trigger([operation]), method_name="execute_deployed")
        return None

    def _deployed_model_spec(self) -> dict[str, Any]:
        resources = {"min_replica_count": self.min_replica_count, "max_replica_count": self.max_replica_count}
        spec: dict[str, Any] = {
            "model": self.model_version,
            "display_name": label_value(self.model_version.rsplit("/", 1)[-1].replace("@", "-v")),
        }
        if self.machine_type:
            spec["dedicated_resources"] = {"machine_spec": {"machine_type": self.machine_type}, **resources}
        else:
            spec["automatic_resources"] = resources
        return spec

    def execute_deployed(self, context: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        endpoint = _endpoint_of(event)
        if event.get("status") != "success":
            raise VertexError(
                f"deploying {self.model_version} failed: {event.get('message')}", resource=endpoint
            )
        if self.undeploy_older:
            current = self.endpoints.get_endpoint(endpoint)
            ours = find_deployed(current, self.model_version)
            older = [str(d.id) for d in current.deployed_models if str(d.id) != ours]
            if older and dict(current.traffic_split).get(ours or "", 0) == 100:
                operations = [self.endpoints.undeploy(endpoint, deployed_id) for deployed_id in older]
                self.defer(trigger=self._trigger(operations), method_name="execute_undeployed")
            elif older:
                self.log.info("Not undeploying %s: the new version does not take all traffic yet", older)
        return self._finish(endpoint, deployed=True)

    def execute_undeployed(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        endpoint = _endpoint_of(event)
        if event.get("status") != "success":
            raise VertexError(f"undeploying older versions failed: {event.get('message')}", resource=endpoint)
        return self._finish(endpoint, deployed=True)

    def _finish(self, endpoint_name: str, deployed: bool) -> dict[str, Any]:
        endpoint = self.endpoints.get_endpoint(endpoint_name)
        deployed_id = find_deployed(endpoint, self.model_version)
        if deployed_id is None:
            raise VertexError(
                f"{self.model_version} is not deployed after the deploy operation", resource=endpoint_name
            )
        result: dict[str, Any] = {
            "endpoint": endpoint_name,
            "deployed_model_id": deployed_id,
            "model_version": self.model_version,
            "traffic_split": dict(endpoint.traffic_split),
            "deployed": deployed,
        }
        if self.alias and result["traffic_split"].get(deployed_id) == 100:
            model = self.model_version.split("@", 1)[0]
            self.hook(ModelRegistryHook).move_alias(model, self.model_version, self.alias)
            result["alias"] = self.alias
        self.log.info("Deployment: %s", result)
        return result
