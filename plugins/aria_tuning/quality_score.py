"""Scoring for the quality gate: held-out examples from an eval JSONL, exact match and text similarity.

Pure functions, no Airflow and no Google import. Similarity is rapidfuzz's normalised Indel
ratio (`fuzz.ratio`, 0..1); the score is the mean of the exact-match rate and mean similarity.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aria_tuning.catalog import DataFormat
from aria_tuning.errors import DatasetError


@dataclass(frozen=True)
class HeldOut:
    """One held-out example: what we send, and the answer the eval split expects."""

    line: int
    prompt: str  # PaLM: the input text; Gemini: the last user turn (for the report)
    expected: str
    contents: list[dict[str, Any]] | None = None  # Gemini: the turns before the expected answer
    system_instruction: dict[str, Any] | None = None


def held_out_examples(text: str, data_format: DataFormat, source: str, limit: int) -> list[HeldOut]:
    """Parse up to `limit` examples of an eval JSONL file; problems are `source:line: reason`."""
    examples: list[HeldOut] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            examples.append(_parse(record, data_format, number))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            problems.append(f"{source}:{number}: {exc}")
        if len(examples) >= limit:
            break
    if problems:
        raise DatasetError(f"{source}: {len(problems)} unreadable eval examples", problems)
    if not examples:
        raise DatasetError(f"{source}: no eval examples")
    return examples


def _parse(record: dict[str, Any], data_format: DataFormat, line: int) -> HeldOut:
    if data_format is DataFormat.PALM:
        return HeldOut(line=line, prompt=str(record["input_text"]), expected=str(record["output_text"]))
    contents = list(record["contents"])
    if not contents or contents[-1].get("role") != "model":
        raise ValueError("the last turn must be the model's answer")
    expected = "".join(part.get("text", "") for part in contents[-1]["parts"])
    prompt_turns = contents[:-1]
    user_text = "".join(p.get("text", "") for p in prompt_turns[-1]["parts"]) if prompt_turns else ""
    system = record.get("systemInstruction") or record.get("system_instruction")
    return HeldOut(
        line=line, prompt=user_text, expected=expected, contents=prompt_turns, system_instruction=system
    )


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def similarity(expected: str, answer: str) -> float:
    from rapidfuzz import fuzz

    return float(fuzz.ratio(normalise(expected), normalise(answer))) / 100.0


@dataclass(frozen=True)
class Score:
    exact_match: float
    similarity: float
    score: float
    count: int


def score(pairs: list[tuple[str, str]]) -> Score:
    """Score (expected, answer) pairs: mean of exact-match rate and mean similarity, each 0..1."""
    if not pairs:
        return Score(0.0, 0.0, 0.0, 0)
    exact = sum(normalise(e) == normalise(a) for e, a in pairs) / len(pairs)
    sim = sum(similarity(e, a) for e, a in pairs) / len(pairs)
    return Score(round(exact, 4), round(sim, 4), round((exact + sim) / 2, 4), len(pairs))
