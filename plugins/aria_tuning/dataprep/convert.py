"""Writers of each training format (catalog `DataFormat`): one canonical `Example` -> one JSONL line.

- PaLM (tune-large-model pipeline): {"input_text": ..., "output_text": ...}. text-bison takes
  single-turn examples only; a system text is prepended to the input, separated by a blank line.
- Gemini (tuningJobs): {"systemInstruction"?: {"role": "system", "parts": [{"text"}]},
  "contents": [{"role": "user"|"model", "parts": [{"text"}]}, ...]}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from aria_tuning.catalog import DataFormat
from aria_tuning.dataprep.input_formats import Example, ExampleError

_encode = msgspec.json.Encoder().encode


def to_palm(example: Example) -> bytes:
    if len(example.turns) != 2:
        raise ExampleError(
            f"PaLM models take single-turn examples (one input, one output); this one has "
            f"{len(example.turns)} turns"
        )
    source = example.turns[0][1]
    if example.system is not None:
        source = f"{example.system}\n\n{source}"
    return _encode({"input_text": source, "output_text": example.turns[1][1]})


def gemini_contents(turns: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """Turns as Gemini `contents`: one text part each."""
    return [{"role": role, "parts": [{"text": text}]} for role, text in turns]


def gemini_system_instruction(system: str) -> dict[str, Any]:
    return {"role": "system", "parts": [{"text": system}]}


def to_gemini(example: Example) -> bytes:
    contents = gemini_contents(example.turns)
    if example.system is None:
        return _encode({"contents": contents})
    return _encode({"systemInstruction": gemini_system_instruction(example.system), "contents": contents})


WRITERS: dict[DataFormat, Callable[[Example], bytes]] = {
    DataFormat.PALM: to_palm,
    DataFormat.GEMINI: to_gemini,
}
