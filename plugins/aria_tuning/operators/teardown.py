"""Tear down what a run does not keep: endpoints (undeployed first, then deleted) and models.

A deployed model bills node-hours whether or not it gets traffic, so a run undeploys and deletes
what it made only for a while: the tuning run's own deployment and model (`CleanUpTuningOutputsOperator`)
and the evaluation endpoint (`TearDownEndpointOperator`). Both run with `trigger_rule="all_done"`, so
they also clean up after a failed run. Undeploys are waited for in the triggerer; deletes are quick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning.catalog import TuningMethod
from aria_tuning.errors import VertexError, VertexNotFound
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.jobs import TuningJobHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.operators.base import VertexBaseOperator
from aria_tuning.triggers import VertexOperationTrigger
from aria_tuning.tuning_outputs import leftovers, serves_only


class _TearDown(VertexBaseOperator):
    """Undeploy every model of some endpoints, wait, delete the endpoints, then delete some models."""

    def __init__(
        self,
        *,
        poll_interval: float = 15.0,
        max_poll_interval: float = 120.0,
        operation_timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.operation_timeout = operation_timeout

    @property
    def endpoints(self) -> EndpointHook:
        return self.hook(EndpointHook)

    def tear_down(self, endpoints: list[Any], models: list[str]) -> dict[str, Any]:
        """Undeploy everything from `endpoints` (protos), wait (deferred), then delete them and `models`.

        After the wait `execute` runs again and finds the same endpoints, now empty: the resume needs
        no state of its own (`dag.test()` would not hand it any).
        """
        operations: list[str] = []
        for endpoint in endpoints:
            if not endpoint.deployed_models:
                continue
            # Vertex refuses to undeploy a model that still has traffic while others remain: no traffic
            # first (an empty split is an endpoint that serves nothing), then every model goes.
            self.endpoints.set_traffic(endpoint.name, {})
            operations += [
                self.endpoints.undeploy(endpoint.name, str(d.id)) for d in endpoint.deployed_models
            ]
        if operations:
            self.defer(
                trigger=VertexOperationTrigger(
                    operation_names=operations,
                    service="endpoint",
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                    **self.hook_kwargs(),
                ),
                method_name="execute_undeployed",
            )
        return self._delete([str(endpoint.name) for endpoint in endpoints], models)

    def execute_undeployed(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            raise VertexError(
                f"undeploying before deletion failed: {event.get('message')}", resource=event.get("operation")
            )
        return self.execute(context)

    def _delete(self, endpoint_names: list[str], models: list[str]) -> dict[str, Any]:
        deleted_endpoints = [
            name for name in endpoint_names if self.endpoints.delete_endpoint(name, self.operation_timeout)
        ]
        registry = self.hook(ModelRegistryHook)
        deleted_models = [name for name in models if registry.delete_model(name, self.operation_timeout)]
        result = {"deleted_endpoints": deleted_endpoints, "deleted_models": deleted_models}
        self.log.info("Torn down: %s", result)
        return result


class CleanUpTuningOutputsOperator(_TearDown):
    """Delete the tuning run's own deployment(s) and model once the run has registered its version.

    `tuning_job` and `method` come from the tune task (empty when tuning did not finish: nothing to
    do). Without `registered_version` (registration failed) only the endpoints go: they bill, the
    model does not, and a re-run of the registration still needs it to copy from.
    """

    template_fields: Sequence[str] = ("tuning_job", "method", "registered_version", "impersonation_chain")

    def __init__(
        self,
        *,
        tuning_job: str | None,
        method: str | None,
        registered_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tuning_job = tuning_job
        self.method = method
        self.registered_version = registered_version

    def execute(self, context: Context) -> dict[str, Any]:
        if not self.tuning_job or not self.method or str(self.tuning_job) == "None":
            self.log.info("No finished tuning run: nothing to clean up")
            return {"deleted_endpoints": [], "deleted_models": []}
        found = leftovers(
            self.hook(TuningJobHook).get_job(self.tuning_job, TuningMethod(self.method)), self.method
        )
        if found.model is None:
            return {"deleted_endpoints": [], "deleted_models": []}
        kept = str(self.registered_version or "").split("@", 1)[0]
        endpoints = []
        for name in found.endpoints:
            try:
                endpoint = self.endpoints.get_endpoint(name)
            except VertexNotFound:
                continue  # an earlier try deleted it
            # Never tear down an endpoint that serves anything else (someone deployed to it since).
            if serves_only(endpoint, found.model):
                endpoints.append(endpoint)
            else:
                self.log.warning("Keeping %s: it serves models other than %s", name, found.model)
        registered = bool(self.registered_version) and str(self.registered_version) != "None"
        models = [found.model] if registered and found.model != kept else []
        return self.tear_down(endpoints, models)


class TearDownEndpointOperator(_TearDown):
    """Undeploy everything from the endpoints named `endpoint_display_name` under `location`, delete them.

    For the evaluation endpoint: found by display name, so it goes even when the task that deployed to
    it failed before returning its name.
    """

    template_fields: Sequence[str] = ("location", "endpoint_display_name", "impersonation_chain")

    def __init__(self, *, location: str, endpoint_display_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.location = location
        self.endpoint_display_name = endpoint_display_name

    def execute(self, context: Context) -> dict[str, Any]:
        return self.tear_down(self.endpoints.find_named(self.location, self.endpoint_display_name), [])
