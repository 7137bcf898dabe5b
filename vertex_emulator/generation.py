"""Generation settings of `generateContent` (`generationConfig`) and PaLM `predict` (`parameters`).

Out-of-range settings are a 400 INVALID_ARGUMENT, worded like Vertex's own range errors. Sampling
settings (temperature, topP, topK) are checked and then have no effect: the emulator's answers are
deterministic. `maxOutputTokens` cuts the answer, counted with the emulator's token estimate
(`inference.token_count`, four characters a token, the count `usageMetadata` reports), and the
finish reason says so: MAX_TOKENS when cut, STOP otherwise (also when a stop sequence ends it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vertex_emulator import inference
from vertex_emulator.exceptions import InvalidArgument

# Gemini ranges (https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/content-generation-parameters):
# temperature 0.0-2.0, topP 0.0-1.0, topK at least 1, candidateCount 1-8; maxOutputTokens at least 1
# and at most 65,536 (Gemini 2.5's output limit; 2.0 models stop at 8,192, not emulated).
GEMINI_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "topP": (0.0, 1.0),
    "topK": (1.0, float("inf")),
    "candidateCount": (1, 8),
    "maxOutputTokens": (1, 65_536),
}
# PaLM text models (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text):
# temperature 0.0-1.0, topP 0.0-1.0, topK 1-40; maxOutputTokens 1-1,024 for text-bison, 1-8,192 for
# text-bison-32k (the output limits the project's catalog records).
PALM_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 1.0),
    "topP": (0.0, 1.0),
    "topK": (1, 40),
    "maxOutputTokens": (1, 1_024),
}
PALM_32K_MAX_OUTPUT_TOKENS = 8_192


@dataclass(frozen=True)
class Settings:
    max_output_tokens: int = 0  # 0: the model's own limit
    stop_sequences: tuple[str, ...] = ()
    candidate_count: int = 1

    def apply(self, text: str) -> tuple[str, str]:
        """(the answer as generated under these settings, its finish reason)."""
        for stop in self.stop_sequences:
            if stop and stop in text:
                text = text[: text.index(stop)]
        if self.max_output_tokens and inference.token_count(text) > self.max_output_tokens:
            return text[: self.max_output_tokens * inference.CHARS_PER_TOKEN], "MAX_TOKENS"
        return text, "STOP"


def gemini(config: Mapping[str, Any] | None) -> Settings:
    """`generationConfig` of a GenerateContentRequest (already typed by its proto)."""
    config = config or {}
    _check(config, GEMINI_RANGES, "generation_config")
    return Settings(
        int(config.get("maxOutputTokens") or 0),
        tuple(config.get("stopSequences") or ()),
        int(config.get("candidateCount") or 1),
    )


def palm(parameters: Any, model: str) -> Settings:
    """`parameters` of a text-bison PredictRequest (a free-form Value); `model` names the base model."""
    if parameters in (None, {}):
        return Settings()
    if not isinstance(parameters, Mapping):
        raise InvalidArgument(f"parameters must be an object, got {type(parameters).__name__}")
    ranges = dict(PALM_RANGES)
    if "32k" in model:
        ranges["maxOutputTokens"] = (1, PALM_32K_MAX_OUTPUT_TOKENS)
    for key, value in parameters.items():
        if key in ranges and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidArgument(f"parameters.{key} must be a number, got {value!r}")
    _check(parameters, ranges, "parameters")
    stops = parameters.get("stopSequences") or ()
    return Settings(int(parameters.get("maxOutputTokens") or 0), tuple(str(s) for s in stops))


def _check(values: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]], where: str) -> None:
    for key, (low, high) in ranges.items():
        if key not in values:
            continue
        value = float(values[key])
        if not low <= value <= high:
            upper = f"{high} (inclusive)" if high != float("inf") else "unbounded"
            raise InvalidArgument(
                f"Unable to submit request because it has a {key} value of {values[key]} but the "
                f"supported range is from {low} (inclusive) to {upper} ({where}.{key})"
            )
