"""Vertex AI endpoints: get or create by display name, deploy, undeploy, traffic, operations in flight."""

from __future__ import annotations

from typing import Any

from aria_tuning.errors import VertexNotFound
from aria_tuning.hooks.base import VertexHook, translated
from aria_tuning.resources import resource_region

#: The metadata type of a DeployModel operation (UndeployModel's ends in "UndeployModel...").
_DEPLOY_METADATA = ".DeployModelOperationMetadata"


def oldest_first(endpoints: list[Any], display_name: str) -> list[Any]:
    """The endpoints called `display_name` (the filter's match is exact only here), oldest first:
    Vertex promises no order for ListEndpoints, and the oldest is the one a rerun keeps deploying to."""
    return sorted((e for e in endpoints if e.display_name == display_name), key=lambda e: e.create_time)


class EndpointHook(VertexHook):
    """Synchronous endpoint calls; deploys and undeploys return their operation's name to wait on."""

    def _endpoints(self, name: str) -> Any:
        return self.client("endpoint", resource_region(name))

    def get_endpoint(self, name: str) -> Any:
        with translated(name, "reading the endpoint"):
            return self._endpoints(name).get_endpoint(name=name, retry=self.retry())

    def list_endpoints(self, location: str) -> list[Any]:
        """Every endpoint under `location` (`projects/P/locations/L`)."""
        with translated(location, "listing endpoints"):
            return list(
                self._endpoints(location).list_endpoints(request={"parent": location}, retry=self.retry())
            )

    def find_named(self, location: str, display_name: str) -> list[Any]:
        """Every endpoint called `display_name` under `location`, oldest first."""
        flt = f'display_name="{display_name}"'
        with translated(location, f"listing endpoints named {display_name}"):
            found = list(
                self._endpoints(location).list_endpoints(
                    request={"parent": location, "filter": flt}, retry=self.retry()
                )
            )
        return oldest_first(found, display_name)

    def get_or_create(self, location: str, display_name: str, timeout: float) -> Any:
        """The oldest endpoint called `display_name` under `location`, created (and waited for) if none."""
        found = self.find_named(location, display_name)
        if found:
            return found[0]
        client = self._endpoints(location)
        # Not retried: Vertex picks the id. The task's retry finds an endpoint that landed by its name.
        with translated(location, f"creating endpoint {display_name}"):
            operation = client.create_endpoint(
                parent=location, endpoint={"display_name": display_name}, retry=self.retry(idempotent=False)
            )
        with translated(location, "waiting for the endpoint"):
            endpoint = operation.result(timeout, retry=self.retry())
        self.log.info("Created endpoint %s (%s)", endpoint.name, display_name)
        return endpoint

    def deploys_in_flight(self, endpoint: str) -> list[str]:
        """Names of the unfinished DeployModel operations on `endpoint` (listed under it, as on Vertex)."""
        client = self._endpoints(endpoint)
        names: list[str] = []
        token = ""
        while True:
            with translated(endpoint, "listing the endpoint's operations"):
                # GAPIC wraps it with no default retry (endpoint_service/transports/base.py), as it
                # wraps every call here: without ours, one 503 on this read failed the deploy.
                page = client.list_operations(
                    request={"name": endpoint, "page_token": token}, retry=self.retry()
                )
            names += [
                op.name
                for op in page.operations
                if not op.done and op.metadata.type_url.endswith(_DEPLOY_METADATA)
            ]
            token = page.next_page_token
            if not token:
                return names

    def deploy(self, endpoint: str, deployed_model: dict[str, Any], traffic_split: dict[str, int]) -> str:
        """Start deploying; returns the operation name. Not retried: a repeat could deploy twice."""
        with translated(endpoint, f"deploying {deployed_model.get('model')}"):
            operation = self._endpoints(endpoint).deploy_model(
                endpoint=endpoint,
                deployed_model=deployed_model,
                traffic_split=traffic_split,
                retry=self.retry(idempotent=False),
            )
        return str(operation.operation.name)

    def undeploy(self, endpoint: str, deployed_model_id: str) -> str:
        """Start undeploying; returns the operation name. Not retried blindly (the model may be gone)."""
        with translated(endpoint, f"undeploying {deployed_model_id}"):
            operation = self._endpoints(endpoint).undeploy_model(
                endpoint=endpoint, deployed_model_id=deployed_model_id, retry=self.retry(idempotent=False)
            )
        self.log.info("Undeploying %s from %s", deployed_model_id, endpoint)
        return str(operation.operation.name)

    def delete_endpoint(self, endpoint: str, timeout: float) -> bool:
        """Delete an endpoint with nothing deployed and wait for it; False when it was already gone."""
        try:
            with translated(endpoint, "deleting the endpoint"):
                operation = self._endpoints(endpoint).delete_endpoint(name=endpoint, retry=self.retry())
        except VertexNotFound:
            return False
        with translated(endpoint, "waiting for the endpoint's deletion"):
            operation.result(timeout, retry=self.retry())
        self.log.info("Deleted endpoint %s", endpoint)
        return True

    def set_traffic(self, endpoint: str, split: dict[str, int]) -> None:
        """Replace the endpoint's traffic split (idempotent: the same split twice is one state)."""
        with translated(endpoint, f"setting traffic split {split}"):
            self._endpoints(endpoint).update_endpoint(
                endpoint={"name": endpoint, "traffic_split": split},
                update_mask={"paths": ["traffic_split"]},
                retry=self.retry(),
            )
        self.log.info("%s traffic split is now %s", endpoint, split or "{} (serves nothing)")
