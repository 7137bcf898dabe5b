"""Online prediction on a Vertex AI endpoint: PaLM-style `predict` and Gemini `generateContent`."""

from __future__ import annotations

from typing import Any

from aria_tuning.hooks.base import VertexHook, translated
from aria_tuning.resources import resource_region


class PredictionHook(VertexHook):
    """Asks an endpoint; transient errors (429/5xx) are retried: a prediction changes nothing."""

    def _prediction(self, endpoint: str) -> Any:
        return self.client("prediction", resource_region(endpoint))

    def predict_text(self, endpoint: str, prompt: str, max_output_tokens: int) -> tuple[str, str]:
        """(the answer's `content`, the id of the deployed model that answered)."""
        with translated(endpoint, "predict"):
            response = self._prediction(endpoint).predict(
                endpoint=endpoint,
                instances=[{"prompt": prompt}],
                parameters={"temperature": 0.0, "maxOutputTokens": max_output_tokens},
                retry=self.retry(),
            )
        prediction = dict(response.predictions[0]) if response.predictions else {}
        return str(prediction.get("content", "")), str(response.deployed_model_id or "")

    def generate_text(
        self,
        endpoint: str,
        contents: list[dict[str, Any]],
        system_instruction: dict[str, Any] | None,
        max_output_tokens: int,
    ) -> str:
        """The first candidate's text (empty when Vertex returns none)."""
        request: dict[str, Any] = {
            "model": endpoint,
            "contents": contents,
            "generation_config": {"temperature": 0.0, "max_output_tokens": max_output_tokens},
        }
        if system_instruction:
            request["system_instruction"] = system_instruction
        with translated(endpoint, "generateContent"):
            response = self._prediction(endpoint).generate_content(request=request, retry=self.retry())
        if not response.candidates:
            return ""
        return "".join(part.text for part in response.candidates[0].content.parts)
