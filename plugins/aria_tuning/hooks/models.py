"""The Vertex AI Model Registry: parent models, versions found by label, uploads, aliases."""

from __future__ import annotations

from typing import Any

from aria_tuning.errors import VertexNotFound
from aria_tuning.hooks.base import VertexHook, translated
from aria_tuning.resources import resource_region


class ModelRegistryHook(VertexHook):
    """Synchronous Model Registry calls; every method takes full resource names."""

    def _models(self, name: str) -> Any:
        return self.client("model", resource_region(name))

    def get_model(self, name: str) -> Any:
        """A model or model version (`.../models/ID`, `...@VERSION`, `...@ALIAS`)."""
        with translated(name, "reading the model"):
            return self._models(name).get_model(name=name, retry=self.retry())

    def oldest_model_named(self, location: str, display_name: str, label: str) -> str | None:
        """The oldest model called `display_name` carrying label key `label` (a parent we registered)."""
        flt = f'display_name="{display_name}"'
        with translated(location, f"listing models named {display_name}"):
            models = list(
                self._models(location).list_models(
                    request={"parent": location, "filter": flt}, retry=self.retry()
                )
            )
        ours = [m for m in models if m.display_name == display_name and label in m.labels]
        return str(min(ours, key=lambda m: m.create_time).name) if ours else None

    def version_with_label(self, model: str, key: str, value: str) -> str | None:
        """`model@VERSION` of the version whose label `key` is `value`, if any."""
        flt = f'labels.{key}="{value}"'
        with translated(model, "listing model versions"):
            versions = list(
                self._models(model).list_model_versions(
                    request={"name": model, "filter": flt}, retry=self.retry()
                )
            )
        for version in versions:
            if dict(version.labels).get(key) == value:
                return f"{model.split('@', 1)[0]}@{version.version_id}"
        return None

    def upload_version(self, location: str, model: dict[str, Any], parent: str | None, timeout: float) -> str:
        """Upload `model` (a `Model` as a dict), as a new version of `parent` if given; waits for it.

        Not retried: a repeat of an upload whose reply was lost would add a second version. The
        task's retry finds a version that landed by its label instead.
        """
        from google.cloud import aiplatform_v1

        request: dict[str, Any] = {"parent": location, "model": aiplatform_v1.Model(model)}
        if parent:
            request["parent_model"] = parent
        client = self._models(location)
        with translated(location, f"uploading a version of {model.get('display_name')}"):
            operation = client.upload_model(request=request, retry=self.retry(idempotent=False))
        with translated(location, "waiting for the model upload"):
            response = operation.result(timeout=timeout, retry=self.retry())
        self.log.info("Uploaded %s version %s", response.model, response.model_version_id)
        return f"{response.model.split('@', 1)[0]}@{response.model_version_id}"

    def version_with_alias(self, model: str, alias: str) -> Any | None:
        """The version of `model` holding `alias`, or None when no version holds it."""
        name = f"{model}@{alias}"
        try:
            with translated(model, f"reading the version with alias {alias}"):
                return self._models(model).get_model(name=name, retry=self.retry())
        except VertexNotFound:
            return None

    def move_alias(self, model: str, version_name: str, alias: str) -> None:
        """Give `alias` to `version_name` (`.../models/ID@VERSION`), taking it from the version holding it."""
        holder = self.version_with_alias(model, alias)
        version_id = version_name.rsplit("@", 1)[1]
        if holder is not None and holder.version_id == version_id:
            return
        client = self._models(model)
        if holder is not None:
            held = f"{model}@{holder.version_id}"
            with translated(held, f"removing alias {alias}"):
                client.merge_version_aliases(name=held, version_aliases=[f"-{alias}"], retry=self.retry())
        with translated(version_name, f"adding alias {alias}"):
            client.merge_version_aliases(name=version_name, version_aliases=[alias], retry=self.retry())

    def delete_model(self, model: str, timeout: float) -> bool:
        """Delete a model (every version; none may be deployed) and wait; False when already gone."""
        try:
            with translated(model, "deleting the model"):
                operation = self._models(model).delete_model(name=model, retry=self.retry())
        except VertexNotFound:
            return False
        with translated(model, "waiting for the model's deletion"):
            operation.result(timeout, retry=self.retry())
        self.log.info("Deleted model %s", model)
        return True

    def merge_version_labels(self, version_name: str, labels: dict[str, str]) -> None:
        """Add or overwrite `labels` on one version (`.../models/ID@VERSION`), keeping its others."""
        current = self.get_model(version_name)
        merged = {**dict(current.labels), **labels}
        if merged == dict(current.labels):
            return
        with translated(version_name, f"labelling the version {sorted(labels)}"):
            self._models(version_name).update_model(
                model={"name": version_name, "labels": merged},
                update_mask={"paths": ["labels"]},
                retry=self.retry(),
            )

    def versions(self, model: str) -> list[Any]:
        """Every version of `model`."""
        with translated(model, "listing model versions"):
            return list(self._models(model).list_model_versions(request={"name": model}, retry=self.retry()))

    def import_evaluation(self, version_name: str, evaluation: dict[str, Any]) -> str:
        """ImportModelEvaluation on one version (`evaluation`: a ModelEvaluation as a dict); its name.

        Not retried: a repeat would record the evaluation twice (Vertex picks the id).
        """
        from google.cloud import aiplatform_v1

        with translated(version_name, "importing the model evaluation"):
            imported = self._models(version_name).import_model_evaluation(
                parent=version_name,
                model_evaluation=aiplatform_v1.ModelEvaluation(evaluation),
                retry=self.retry(idempotent=False),
            )
        return str(imported.name)

    def evaluations(self, version_name: str) -> list[Any]:
        with translated(version_name, "listing model evaluations"):
            return list(
                self._models(version_name).list_model_evaluations(parent=version_name, retry=self.retry())
            )

    def describe_version(self, version_name: str, description: str) -> None:
        """Set one version's description (UpdateModel `version_description`)."""
        with translated(version_name, "updating the version description"):
            self._models(version_name).update_model(
                model={"name": version_name, "version_description": description[:1000]},
                update_mask={"paths": ["version_description"]},
                retry=self.retry(),
            )
