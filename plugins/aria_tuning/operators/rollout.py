"""Roll a version that passed the gate out to the production endpoint by canary, then make it production.

The version is deployed with `traffic_percentage` of the traffic (all of it when nothing else serves),
soaks `soak_seconds` in the triggerer, and moves on (through `canary_steps`, then 100%) only while
Cloud Monitoring shows its error rate no more than `max_error_rate_increase` above the versions it
shares traffic with. At 100% it gets the alias `production` (and a label recording when), and the
versions it replaced, which served until then, are undeployed. A rise in errors sends the traffic
back, undeploys the canary, gives it the alias `rejected` and fails the task.

Each step decides from the endpoint as it is now (a retry continues where the rollout stands); the
only state carried across waits is the log of soaked steps, in the trigger's event.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from airflow.sdk import Context

from aria_tuning import canary
from aria_tuning.errors import CanaryFailed, ConfigurationError, VertexError
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.hooks.monitoring import MonitoringHook
from aria_tuning.links import VertexEndpointLink
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.production_history import LABEL_PROMOTED_AT
from aria_tuning.resources import endpoint_console_url, label_value, location_of, model_version_name
from aria_tuning.rollout_triggers import CarryingOperationTrigger, SoakTrigger
from aria_tuning.traffic import find_deployed, split_without


def checked(event: dict[str, Any], what: str) -> dict[str, Any]:
    """The event's carried state; VertexError when the operations it waited for failed."""
    if event.get("status") != "success":
        raise VertexError(f"{what} failed: {event.get('message')}", resource=event.get("operation"))
    return dict(event.get("carry") or {})


class ProductionChangeOperator(VertexBaseOperator):
    """What a rollout and a rollback share: deploy a version, give it the traffic and the alias, retire
    the others. Subclasses say which version (`target`) and how fast (`advance`)."""

    operator_extra_links = (VertexEndpointLink(),)

    def __init__(
        self,
        *,
        endpoint_display_name: str = "ARIA-text-endpoint",
        alias: str = "production",
        machine_type: str | None = None,
        min_replica_count: int = 1,
        max_replica_count: int = 1,
        poll_interval: float = 15.0,
        max_poll_interval: float = 120.0,
        operation_timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_display_name = endpoint_display_name
        self.alias = alias
        self.machine_type = machine_type
        self.min_replica_count = min_replica_count
        self.max_replica_count = max_replica_count
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.operation_timeout = operation_timeout

    # -- what subclasses say ----------------------------------------------------------------
    def target(self) -> tuple[str, str]:
        """(`models/ID@VERSION` to put in production, location); ConfigurationError when impossible."""
        raise NotImplementedError

    def advance(self, context: Context, endpoint: Any, version: str, ours: str, carry: dict[str, Any]) -> Any:
        """`version` is deployed (as `ours`) but does not have all the traffic yet: move on."""
        raise NotImplementedError

    def first_share(self, endpoint: Any) -> int:
        return 100

    def before_promote(self, version: str, carry: dict[str, Any]) -> dict[str, Any]:
        """Called once `version` has all the traffic, before it gets the alias; returns the carry."""
        return carry

    # -- the shared steps -------------------------------------------------------------------
    @property
    def endpoints(self) -> EndpointHook:
        return self.hook(EndpointHook)

    def _wait(self, operations: list[str], carry: dict[str, Any], method_name: str) -> NoReturn:
        self.defer(
            trigger=CarryingOperationTrigger(
                operation_names=operations,
                service="endpoint",
                carry=carry,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                **self.hook_kwargs(),
            ),
            method_name=method_name,
        )

    def execute(self, context: Context) -> Any:
        try:  # bad parameters or a version that is not there: refuse before changing anything
            version, location = self.target()
        except ConfigurationError as exc:  # a retry would refuse alike (a VertexError is retried)
            raise fail_without_retry(exc) from exc
        endpoint = self.endpoints.get_or_create(location, self.endpoint_display_name, self.operation_timeout)
        VertexEndpointLink.persist(context, endpoint_console_url(endpoint.name))
        return self._step(context, endpoint, version, {"steps": []})

    def execute_resumed(self, context: Context, event: dict[str, Any]) -> Any:
        """A wait on the endpoint's operations ended: decide again from the endpoint."""
        carry = checked(event, "changing the production endpoint")
        version, _ = self.target()
        endpoint = self.endpoints.get_endpoint(str(event["operations"][0]).split("/operations/", 1)[0])
        return self._step(context, endpoint, version, carry)

    def _step(self, context: Context, endpoint: Any, version: str, carry: dict[str, Any]) -> Any:
        ours = find_deployed(endpoint, version)
        if ours is None:
            in_flight = self.endpoints.deploys_in_flight(endpoint.name)
            if in_flight:  # an earlier try's deploy: wait for it, then look again
                self.log.info("Deploys in flight on %s (%s): waiting", endpoint.name, ", ".join(in_flight))
                self._wait(in_flight, carry, "execute_resumed")
            share = self.first_share(endpoint)
            operation = self.endpoints.deploy(
                endpoint.name,
                self._spec(version),
                canary.split_with(dict(endpoint.traffic_split), "0", share),
            )
            self.log.info(
                "Deploying %s to %s with %d%% of the traffic (%s)", version, endpoint.name, share, operation
            )
            self._wait([operation], carry, "execute_resumed")
        if dict(endpoint.traffic_split).get(ours, 0) >= 100:
            return self._promote(endpoint, version, ours, carry)
        return self.advance(context, endpoint, version, ours, carry)

    def _spec(self, version: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "model": version,
            "display_name": label_value(version.rsplit("/", 1)[-1].replace("@", "-v")),
        }
        resources = {"min_replica_count": self.min_replica_count, "max_replica_count": self.max_replica_count}
        if self.machine_type:
            spec["dedicated_resources"] = {"machine_spec": {"machine_type": self.machine_type}, **resources}
        else:
            spec["automatic_resources"] = resources
        return spec

    def _promote(self, endpoint: Any, version: str, ours: str, carry: dict[str, Any]) -> dict[str, Any]:
        """`version` has all the traffic: alias it, label when (once), then undeploy every other version."""
        carry = self.before_promote(version, carry)
        registry = self.hook(ModelRegistryHook)
        registry.move_alias(version.split("@", 1)[0], version, self.alias)
        if self.alias == "production" and not dict(registry.get_model(version).labels).get(LABEL_PROMOTED_AT):
            registry.merge_version_labels(version, {LABEL_PROMOTED_AT: str(int(time.time() * 1000))})
        others = [d for d in endpoint.deployed_models if str(d.id) != ours]
        if others:
            carry = {
                **carry,
                "retired": sorted(
                    {*carry.get("retired", []), *(f"{d.model}@{d.model_version_id}" for d in others)}
                ),
            }
            operations = [self.endpoints.undeploy(endpoint.name, str(d.id)) for d in others]
            self._wait(operations, carry, "execute_resumed")
        final = self.endpoints.get_endpoint(endpoint.name)
        result = {
            "model_version": version,
            "endpoint": str(endpoint.name),
            "deployed_model_id": ours,
            "alias": self.alias,
            "traffic_split": dict(final.traffic_split),
            "deployed_models": sorted(f"{d.model}@{d.model_version_id}" for d in final.deployed_models),
            "retired": list(carry.get("retired", [])),
            "steps": list(carry.get("steps", [])),
            **{k: v for k, v in carry.items() if k not in ("retired", "steps")},
        }
        self.log.info("Production: %s", result)
        return result


class CanaryRolloutOperator(ProductionChangeOperator):
    """Roll `model_version` out to `endpoint_display_name` by canary; returns the soaked steps."""

    template_fields: Sequence[str] = (
        "model_version",
        "endpoint_display_name",
        "traffic_percentage",
        "canary_steps",
        "soak_seconds",
        "max_error_rate_increase",
        "impersonation_chain",
    )

    def __init__(
        self,
        *,
        model_version: str,
        traffic_percentage: int | str = 10,
        canary_steps: Sequence[int] | str = (),
        soak_seconds: float | str = 1800,
        max_error_rate_increase: float | str = 0.01,
        rejected_alias: str = "rejected",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_version = model_version
        self.traffic_percentage = traffic_percentage
        self.canary_steps = canary_steps
        self.soak_seconds = soak_seconds
        self.max_error_rate_increase = max_error_rate_increase
        self.rejected_alias = rejected_alias

    def _settings(self) -> tuple[list[int], float, float]:
        plan = canary.shares(self.traffic_percentage, self.canary_steps)
        try:
            soak, increase = float(str(self.soak_seconds)), float(str(self.max_error_rate_increase))
        except ValueError as exc:
            raise ConfigurationError(
                f"soak_seconds and max_error_rate_increase must be numbers, got {self.soak_seconds!r} and "
                f"{self.max_error_rate_increase!r}"
            ) from exc
        if soak < 0 or not 0 <= increase <= 1:
            raise ConfigurationError(
                f"soak_seconds must be >= 0 and max_error_rate_increase 0..1, got {soak} and {increase}"
            )
        return plan, soak, increase

    def target(self) -> tuple[str, str]:
        self._settings()
        return model_version_name(self.model_version), location_of(self.model_version)

    def first_share(self, endpoint: Any) -> int:
        serving = [share for share in dict(endpoint.traffic_split).values() if share > 0]
        return self._settings()[0][0] if serving else 100  # a canary needs someone to compare with

    def advance(self, context: Context, endpoint: Any, version: str, ours: str, carry: dict[str, Any]) -> Any:
        plan, soak, _ = self._settings()
        share = dict(endpoint.traffic_split).get(ours, 0)
        if share == 0:  # deployed, but without traffic (someone took it): start the canary again
            share = plan[0]
            self.endpoints.set_traffic(
                endpoint.name, canary.split_with(dict(endpoint.traffic_split), ours, share)
            )
        # The share serves from the endpoint's last change (a retry mid-soak keeps what it served).
        since = endpoint.update_time.timestamp() if endpoint.update_time else time.time()
        carry = {**carry, "soaking": {"endpoint": str(endpoint.name), "share": share, "since": since}}
        self.log.info("Canary at %d%% of %s: soaking %.0f s", share, endpoint.name, soak)
        self.defer(trigger=SoakTrigger(until=time.time() + soak, carry=carry), method_name="execute_soaked")

    def execute_soaked(self, context: Context, event: dict[str, Any]) -> Any:
        carry = checked(event, "the soak")
        plan, _, increase = self._settings()
        version, _ = self.target()
        soaking = carry.pop("soaking")
        endpoint = self.endpoints.get_endpoint(str(soaking.pop("endpoint")))
        ours = find_deployed(endpoint, version)
        if ours is None:
            raise VertexError(
                f"{version} is no longer deployed here: the rollout stopped", resource=endpoint.name
            )
        start, end = dt.datetime.fromtimestamp(float(soaking["since"]), dt.UTC), dt.datetime.now(dt.UTC)
        served = self.hook(MonitoringHook).served(endpoint.name, start, end)
        others = [s for deployed, s in served.items() if deployed != ours]
        mine = served.get(ours)
        verdict = canary.error_verdict(
            (mine.predictions, mine.errors) if mine else (0, 0),
            (sum(s.predictions for s in others), sum(s.errors for s in others)),
            increase,
        )
        step = {
            **soaking,
            "until": end.timestamp(),
            "served": {k: v.to_dict() for k, v in served.items()},
            "verdict": verdict.reason,
        }
        carry = {**carry, "steps": [*carry.get("steps", []), step]}
        self.log.info("Soak at %d%%: %s", soaking["share"], verdict.reason)
        if not verdict.healthy:
            self._abort(endpoint, ours, verdict.reason)
        following = canary.next_share(plan, int(soaking["share"]))
        self.endpoints.set_traffic(
            endpoint.name, canary.split_with(dict(endpoint.traffic_split), ours, following)
        )
        return self._step(context, self.endpoints.get_endpoint(endpoint.name), version, carry)

    def _abort(self, endpoint: Any, ours: str, reason: str) -> NoReturn:
        """Give the traffic back to the versions that had it, undeploy the canary, mark it, fail."""
        self.endpoints.set_traffic(endpoint.name, split_without(endpoint, ours, None))
        operation = self.endpoints.undeploy(endpoint.name, ours)
        model = self.model_version.split("@", 1)[0]
        self.hook(ModelRegistryHook).move_alias(model, self.model_version, self.rejected_alias)
        failed = CanaryFailed(
            f"{self.model_version} rolled back on {endpoint.name}: {reason}. The traffic is back with the "
            f"versions that served before; the canary is being undeployed ({operation}) and has the alias "
            f"{self.rejected_alias!r}"
        )
        raise fail_without_retry(failed) from failed
