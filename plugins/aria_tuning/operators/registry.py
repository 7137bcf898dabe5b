"""Register a tuned model as a new version of one parent model in the Vertex AI Model Registry.

Idempotent: the version carries the tuning job's id as a label, and a re-run finds it instead of
uploading another. The new version gets the alias `candidate` (moved from any older version).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning import vertex_jobs as vj
from aria_tuning.errors import ConfigurationError, VertexError
from aria_tuning.hooks import is_not_found, vertex_call
from aria_tuning.links import VertexModelLink
from aria_tuning.operators.base import VertexBaseOperator

LABEL_TUNING_JOB = "aria-tuning-job"


def version_with_alias(client: Any, model: str, alias: str) -> Any | None:
    """The version of `model` holding `alias`, or None when no version holds it."""
    try:
        return vertex_call(
            model,
            f"reading the version with alias {alias}",
            lambda: client.get_model(name=f"{model}@{alias}"),
        )
    except VertexError as exc:
        if exc.__cause__ is not None and is_not_found(exc.__cause__):
            return None
        raise


def move_alias(client: Any, model: str, version_name: str, alias: str) -> None:
    """Give `alias` to `version_name` (`.../models/ID@VERSION`), taking it from the version holding it."""
    holder = version_with_alias(client, model, alias)
    version_id = version_name.rsplit("@", 1)[1]
    if holder is not None and holder.version_id == version_id:
        return
    if holder is not None:
        vertex_call(
            f"{model}@{holder.version_id}",
            f"removing alias {alias}",
            lambda: client.merge_version_aliases(
                name=f"{model}@{holder.version_id}", version_aliases=[f"-{alias}"]
            ),
        )
    vertex_call(
        version_name,
        f"adding alias {alias}",
        lambda: client.merge_version_aliases(name=version_name, version_aliases=[alias]),
    )


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
            LABEL_TUNING_JOB: vj.resource_id(self.tuning_job),
            "aria-dag": ti.dag_id,
            "aria-dag-run": ti.run_id,
            "base-model": self.base_model,
            "dataset-version": self.dataset_version,
            "train-steps": self.train_steps,
            "epochs": self.epochs,
        }
        return {vj.label_value(k): vj.label_value(v) for k, v in raw.items() if v not in (None, "")}

    def execute(self, context: Context) -> dict[str, Any]:
        if not str(self.tuned_model or "").startswith("projects/") or "/models/" not in self.tuned_model:
            raise ConfigurationError(
                f"tuned_model must be a Vertex model resource name, got {self.tuned_model!r}"
            )
        if not self.tuning_job:
            raise ConfigurationError("tuning_job is required: it makes registration idempotent")
        region = vj.resource_region(self.tuned_model)
        location = f"projects/{vj.resource_project(self.tuned_model)}/locations/{region}"
        client = self.hook.client("model", region)
        labels = self.version_labels(context)
        parent = self._parent_model(client, location)

        version_name = self._existing_version(client, parent, labels[LABEL_TUNING_JOB]) if parent else None
        created = version_name is None
        if version_name is None:
            version_name = self._upload(client, location, parent, labels)
        else:
            self.log.info("%s already holds the version of %s: %s", parent, self.tuning_job, version_name)
        model = version_name.split("@", 1)[0]
        move_alias(client, model, version_name, self.alias)
        registered = vertex_call(
            version_name, "reading the version", lambda: client.get_model(name=version_name)
        )
        VertexModelLink.persist(context, vj.model_console_url(version_name))
        result = {
            "model": model,
            "version_id": registered.version_id,
            "model_version": version_name,
            "aliases": sorted(registered.version_aliases),
            "created": created,
        }
        self.log.info("Registered: %s", result)
        return result

    def _parent_model(self, client: Any, location: str) -> str | None:
        flt = f'display_name="{self.model_display_name}"'
        models = vertex_call(
            location,
            f"listing models named {self.model_display_name}",
            lambda: list(client.list_models(request={"parent": location, "filter": flt})),
        )
        # Only a model we registered is a parent: the tuning pipeline uploads its tuned model under the
        # same display name ("ARIA-text"), and that one must not collect versions.
        models = [
            m for m in models if m.display_name == self.model_display_name and LABEL_TUNING_JOB in m.labels
        ]
        if not models:
            return None
        return str(min(models, key=lambda m: m.create_time).name)

    def _existing_version(self, client: Any, parent: str, job_label: str) -> str | None:
        flt = f'labels.{LABEL_TUNING_JOB}="{job_label}"'
        versions = vertex_call(
            parent,
            "listing model versions",
            lambda: list(client.list_model_versions(request={"name": parent, "filter": flt})),
        )
        for version in versions:
            if dict(version.labels).get(LABEL_TUNING_JOB) == job_label:
                return f"{parent.split('@', 1)[0]}@{version.version_id}"
        return None

    def _upload(self, client: Any, location: str, parent: str | None, labels: dict[str, str]) -> str:
        from google.cloud import aiplatform_v1

        tuned = vertex_call(
            self.tuned_model, "reading the tuned model", lambda: client.get_model(name=self.tuned_model)
        )
        model = aiplatform_v1.Model(
            display_name=self.model_display_name,
            description=f"Tuned by {self.tuning_job}",
            version_description=f"{self.base_model or 'the base model'} tuned by {self.tuning_job}"[:1000],
            artifact_uri=tuned.artifact_uri,
            container_spec=tuned.container_spec,
            metadata_schema_uri=tuned.metadata_schema_uri,
            labels=labels,
        )
        request: dict[str, Any] = {"parent": location, "model": model}
        if parent:
            request["parent_model"] = parent
        operation = vertex_call(
            location,
            f"uploading a version of {self.model_display_name}",
            lambda: client.upload_model(request=request),
            retry=False,  # not idempotent: the task's retry finds a version that landed by its label
        )
        response = vertex_call(
            location, "waiting for the model upload", lambda: operation.result(timeout=self.operation_timeout)
        )
        self.log.info("Uploaded %s version %s", response.model, response.model_version_id)
        return f"{response.model.split('@', 1)[0]}@{response.model_version_id}"
