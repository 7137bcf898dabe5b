"""Roll production back to an earlier version of the parent model, in one run, idempotently.

The version (its id, or "previous production": see `aria_tuning.production_history`) must be in
the Model Registry, else the task fails before changing anything. It is deployed to the production
endpoint if it is not there any more (the rollout undeploys the versions it replaces), takes all the
traffic at once (a rollback does not canary), gets the alias `production`, and every other version
on the endpoint is undeployed. Run again, it finds that state and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning.errors import ConfigurationError
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.operators.rollout import ProductionChangeOperator
from aria_tuning.production_history import LABEL_ROLLED_BACK_AT, PREVIOUS, previous_production
from aria_tuning.vertex_jobs import LABEL_TUNING_JOB


class RollbackOperator(ProductionChangeOperator):
    """Give `version` of the model `model_display_name` (under `location`) production back."""

    template_fields: Sequence[str] = (
        "model_display_name",
        "version",
        "location",
        "endpoint_display_name",
        "impersonation_chain",
    )

    def __init__(
        self, *, model_display_name: str, location: str, version: str = PREVIOUS, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.model_display_name = model_display_name
        self.location = location
        self.version = version

    @property
    def registry(self) -> ModelRegistryHook:
        return self.hook(ModelRegistryHook)

    def target(self) -> tuple[str, str]:
        """The version to restore; ConfigurationError when it is not in the registry."""
        parent = self.registry.oldest_model_named(self.location, self.model_display_name, LABEL_TUNING_JOB)
        if parent is None:
            raise ConfigurationError(f"no model named {self.model_display_name!r} in {self.location}")
        versions = self.registry.versions(parent)
        known = sorted((str(v.version_id) for v in versions), key=int)
        wanted = str(self.version or PREVIOUS).strip()
        if wanted.lower() in (PREVIOUS, "previous"):
            found = previous_production((str(v.version_id), dict(v.labels)) for v in versions)
            if found is None:
                raise ConfigurationError(
                    f"{parent} has no version that was in production before the latest promotion; "
                    f"name the version to restore (one of {known})"
                )
            return f"{parent}@{found}", self.location
        if wanted not in known:
            raise ConfigurationError(
                f"version {wanted!r} of {self.model_display_name} ({parent}) is not in the Model Registry; "
                f"its versions are {known}"
            )
        return f"{parent}@{wanted}", self.location

    def advance(self, context: Context, endpoint: Any, version: str, ours: str, carry: dict[str, Any]) -> Any:
        """Deployed without all the traffic: all of it at once (a rollback does not canary)."""
        self.endpoints.set_traffic(endpoint.name, {ours: 100})
        return self._step(context, self.endpoints.get_endpoint(endpoint.name), version, carry)

    def before_promote(self, version: str, carry: dict[str, Any]) -> dict[str, Any]:
        """Mark the version production is taken from as rolled back (once), and say which it was."""
        model = version.split("@", 1)[0]
        holder = self.registry.version_with_alias(model, self.alias)
        replaced = f"{model}@{holder.version_id}" if holder is not None else None
        if replaced is None or replaced == version:
            return {"rolled_back_from": carry.get("rolled_back_from"), **carry}
        self.registry.merge_version_labels(replaced, {LABEL_ROLLED_BACK_AT: str(int(time.time() * 1000))})
        self.log.info("Rolling %s back to %s", replaced, version)
        return {**carry, "rolled_back_from": replaced}
