"""Register a tuned model as a new version of one parent model in the Vertex AI Model Registry.

Idempotent: the version carries the tuning job's id as a label, and a re-run finds it instead of
uploading another. The new version gets the alias `candidate` (moved from any older version).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning.errors import ConfigurationError
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.links import VertexModelLink
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.resources import label_key, label_value, location_of, model_console_url, resource_id
from aria_tuning.vertex_jobs import LABEL_TUNING_JOB


class RegisterModelOperator(VertexBaseOperator):
    """Make `tuned_model` a new version of the parent model `model_display_name` (default ARIA-text).

    Returns `{model, version_id, model_version, aliases, created}`; `model_version` is
    `projects/.../models/ID@VERSION`, what the deploy operator takes.
    """

    template_fields: Sequence[str] = (
        "tuned_model",
        "tuning_job",
        "model_display_name",
        "labels",
        "base_model",
        "dataset_version",
        "train_steps",
        "epochs",
        "impersonation_chain",
    )
    operator_extra_links = (VertexModelLink(),)

    def __init__(
        self,
        *,
        tuned_model: str,
        tuning_job: str,
        model_display_name: str = "ARIA-text",
        base_model: str | None = None,
        dataset_version: str | None = None,
        train_steps: int | str | None = None,
        epochs: int | str | None = None,
        labels: dict[str, str] | None = None,
        alias: str = "candidate",
        operation_timeout: float = 1800.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tuned_model = tuned_model
        self.tuning_job = tuning_job
        self.model_display_name = model_display_name
        self.base_model = base_model
        self.dataset_version = dataset_version
        self.train_steps = train_steps
        self.epochs = epochs
        self.labels = labels
        self.alias = alias
        self.operation_timeout = operation_timeout

    def version_labels(self, context: Context) -> dict[str, str]:
        ti = context["ti"]
        raw = {
            **(self.labels or {}),
            LABEL_TUNING_JOB: resource_id(self.tuning_job),
            "aria-dag": ti.dag_id,
            "aria-dag-run": ti.run_id,
            "base-model": self.base_model,
            "dataset-version": self.dataset_version,
            "train-steps": self.train_steps,
            "epochs": self.epochs,
        }
        return {label_key(k): label_value(v) for k, v in raw.items() if v not in (None, "")}

    @property
    def models(self) -> ModelRegistryHook:
        return self.hook(ModelRegistryHook)

    def _check(self) -> None:
        if not str(self.tuned_model or "").startswith("projects/") or "/models/" not in self.tuned_model:
            raise ConfigurationError(
                f"tuned_model must be a Vertex model resource name, got {self.tuned_model!r}"
            )
        if not self.tuning_job:
            raise ConfigurationError("tuning_job is required: it makes registration idempotent")

    def execute(self, context: Context) -> dict[str, Any]:
        try:  # bad parameters fail before any Vertex call, and a retry would fail alike
            self._check()
        except ConfigurationError as exc:
            raise fail_without_retry(exc) from exc
        location = location_of(self.tuned_model)
        labels = self.version_labels(context)
        # Only a model we registered is a parent: the tuning pipeline uploads its tuned model under the
        # same display name ("ARIA-text"), and that one must not collect versions.
        parent = self.models.oldest_model_named(location, self.model_display_name, LABEL_TUNING_JOB)

        version_name = (
            self.models.version_with_label(parent, LABEL_TUNING_JOB, labels[LABEL_TUNING_JOB])
            if parent
            else None
        )
        created = version_name is None
        if version_name is None:
            version_name = self._upload(location, parent, labels)
        else:
            self.log.info("%s already holds the version of %s: %s", parent, self.tuning_job, version_name)
        model = version_name.split("@", 1)[0]
        self.models.move_alias(model, version_name, self.alias)
        registered = self.models.get_model(version_name)
        VertexModelLink.persist(context, model_console_url(version_name))
        result = {
            "model": model,
            "version_id": registered.version_id,
            "model_version": version_name,
            "aliases": sorted(registered.version_aliases),
            "created": created,
        }
        self.log.info("Registered: %s", result)
        return result

    def _upload(self, location: str, parent: str | None, labels: dict[str, str]) -> str:
        tuned = self.models.get_model(self.tuned_model)
        model = {
            "display_name": self.model_display_name,
            "description": f"Tuned by {self.tuning_job}",
            "version_description": f"{self.base_model or 'the base model'} tuned by {self.tuning_job}"[:1000],
            "artifact_uri": tuned.artifact_uri,
            "container_spec": tuned.container_spec,
            "metadata_schema_uri": tuned.metadata_schema_uri,
            "labels": labels,
        }
        return self.models.upload_version(location, model, parent, self.operation_timeout)
