"""Online serving: `:predict` (PaLM-style instances) and `:generateContent` (Gemini contents).

Requests go to an endpoint (its traffic split picks the deployed model, see `Endpoints.serving_model`) or to
a publisher base model (`publishers/google/models/ID`, which echoes: it was tuned on nothing).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from vertex_emulator import generation, inference
from vertex_emulator.exceptions import EmulatorError, InvalidArgument

if TYPE_CHECKING:
    from vertex_emulator.backend import Backend

_SAFE = {"blocked": False, "categories": [], "scores": []}
#: The label tune-large-model puts on the models it registers (the SDK's `_TUNING_BASE_MODEL_ID_LABEL_KEY`).
_BASE_MODEL_LABEL = "google-vertex-llm-tuning-base-model-id"


class Serving:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _target(self, resource: str, request: Any) -> tuple[dict[str, Any], list[list[str]], str]:
        """(response identity fields, training examples, label) of whatever answers `resource`.

        A deployed model's answer is recorded for Cloud Monitoring (`monitoring`); one failing
        through the control plane answers 500 INTERNAL, recorded as an error of that deployed model.
        """
        if "/publishers/" in resource or resource.startswith("publishers/"):
            model_id = resource.rsplit("/", 1)[-1]
            return {}, [], model_id
        deployed = self.backend.endpoints.serving_model(resource, json.dumps(request, sort_keys=True))
        version = f"{deployed['model']}@{deployed['modelVersionId']}"
        failing = self.backend.models.failing(version)
        self.backend.monitoring.record(resource, deployed["id"], failing, self.backend.now())
        if failing:
            raise EmulatorError(f"deployed model {deployed['id']} ({version}) failed to serve the prediction")
        model = self.backend.models.get(version)
        identity = {
            "deployedModelId": deployed["id"],
            "model": deployed["model"],
            "modelVersionId": deployed["modelVersionId"],
            "modelDisplayName": model["displayName"],
        }
        return identity, self.backend.models.examples(version), model["displayName"]

    def predict(self, resource: str, instances: list[Any], parameters: Any = None) -> dict[str, Any]:
        if not instances:
            raise InvalidArgument("instances must not be empty")
        identity, examples, label = self._target(resource, instances)
        settings = generation.palm(parameters, self._base_model(resource, identity))
        predictions = []
        for index, instance in enumerate(instances):
            prompt = _instance_prompt(instance, index)
            content, _ = settings.apply(inference.answer(prompt, examples, label))
            predictions.append(
                {"content": content, "citationMetadata": {"citations": []}, "safetyAttributes": _SAFE}
            )
        return {"predictions": predictions, **identity}

    def generate_content(
        self, resource: str, contents: list[dict[str, Any]], config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not contents:
            raise InvalidArgument("contents must not be empty")
        user_turns = [c for c in contents if c.get("role", "user") == "user"]
        if not user_turns:
            raise InvalidArgument("contents has no user turn")
        settings = generation.gemini(config)
        prompt = "".join(part.get("text", "") for part in user_turns[-1].get("parts", []))
        identity, examples, label = self._target(resource, contents)
        text, finish = settings.apply(inference.answer(prompt, examples, label))
        prompt_tokens = sum(
            inference.token_count(part.get("text", "")) for c in contents for part in c.get("parts", [])
        )
        answer_tokens = inference.token_count(text)
        candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish}
        return {
            # The emulator's answers are deterministic: every candidate is the same answer.
            "candidates": [{**candidate, "index": i} for i in range(settings.candidate_count)],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": answer_tokens * settings.candidate_count,
                "totalTokenCount": prompt_tokens + answer_tokens * settings.candidate_count,
            },
            "modelVersion": identity.get("model", label),
        }

    def _base_model(self, resource: str, identity: dict[str, Any]) -> str:
        """The PaLM base model answering `resource` (its output limit depends on it)."""
        if not identity:
            return resource.rsplit("/", 1)[-1]
        model = self.backend.models.get(f"{identity['model']}@{identity['modelVersionId']}")
        return str((model.get("labels") or {}).get(_BASE_MODEL_LABEL, ""))


def _instance_prompt(instance: Any, index: int) -> str:
    if isinstance(instance, dict):
        for key in ("content", "prompt", "input_text"):
            if isinstance(instance.get(key), str):
                return str(instance[key])
        raise InvalidArgument(f"instances[{index}] has no 'content' (the text-bison instance format)")
    if isinstance(instance, str):
        return instance
    return json.dumps(instance, sort_keys=True)
