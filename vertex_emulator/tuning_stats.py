"""`tuningDataStats.supervisedTuningDataStats` of a Gemini tuning dataset, from the JSONL the job read.

Field names and meanings are those of SupervisedTuningDataStats and SupervisedTuningDatasetDistribution
in google/cloud/aiplatform/v1/tuning_job.proto. Tokens are the emulator's estimate
(`inference.token_count`, about four characters a token), the same count `generateContent` reports.
"""

from __future__ import annotations

import json
import math
from typing import Any

from vertex_emulator import inference

#: Histogram buckets per distribution (Vertex does not document its bucket count).
BUCKETS = 10
#: Sample user messages returned in `userDatasetExamples`.
SAMPLE_EXAMPLES = 3


def supervised(text: str, epochs: int, steps: int) -> dict[str, Any]:
    """The stats of a dataset already checked by `datasets.read_gemini` (so every line parses)."""
    inputs: list[int] = []
    outputs: list[int] = []
    messages: list[int] = []
    samples: list[dict[str, Any]] = []
    characters = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        system = row.get("systemInstruction") or row.get("system_instruction") or {}
        turns = [("system", system)] if system else []
        turns += [(content["role"], content) for content in row["contents"]]
        texts = [(role, "".join(p.get("text", "") for p in c.get("parts", []))) for role, c in turns]
        inputs.append(sum(inference.token_count(t) for role, t in texts if role != "model"))
        outputs.append(sum(inference.token_count(t) for role, t in texts if role == "model"))
        messages.append(len(row["contents"]))
        characters += sum(len(t) for _, t in texts)
        if len(samples) < SAMPLE_EXAMPLES:
            user = next(c for c in row["contents"] if c["role"] == "user")
            samples.append({"role": "user", "parts": [{"text": p["text"]} for p in user["parts"]]})
    tokens = sum(inputs) + sum(outputs)
    return {
        "tuningDatasetExampleCount": str(len(messages)),
        "totalTuningCharacterCount": str(characters),
        # Tuning bills every token of the dataset once per epoch (Vertex generative AI pricing:
        # "training tokens" = dataset tokens x epochs); the deprecated character count likewise.
        "totalBillableCharacterCount": str(characters * epochs),
        "totalBillableTokenCount": str(tokens * epochs),
        "tuningStepCount": str(steps),
        "userInputTokenDistribution": distribution(inputs, billable=True),
        "userOutputTokenDistribution": distribution(outputs, billable=True),
        "userMessagePerExampleDistribution": distribution(messages, billable=False),
        "userDatasetExamples": samples,
    }


def distribution(values: list[int], billable: bool) -> dict[str, Any]:
    """A SupervisedTuningDatasetDistribution of `values` (nearest-rank percentiles)."""
    ordered = sorted(values)
    low, high = float(ordered[0]), float(ordered[-1])
    width = (high - low) / BUCKETS or 1.0
    counts = [0] * BUCKETS
    for value in ordered:
        counts[min(BUCKETS - 1, int((value - low) / width))] += 1
    result: dict[str, Any] = {
        "sum": str(sum(ordered)),
        "min": low,
        "max": high,
        "mean": sum(ordered) / len(ordered),
        "median": _percentile(ordered, 50),
        "p5": _percentile(ordered, 5),
        "p95": _percentile(ordered, 95),
        "buckets": [
            {"count": float(count), "left": low + i * width, "right": low + (i + 1) * width}
            for i, count in enumerate(counts)
            if count
        ],
    }
    if billable:
        result["billableSum"] = str(sum(ordered))
    return result


def _percentile(ordered: list[int], percent: float) -> float:
    return float(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)])
