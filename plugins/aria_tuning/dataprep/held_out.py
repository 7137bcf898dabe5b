"""The prepared eval split read back for the quality gate, each line through its format's one parser.

The gate sends what the split holds: the same line reader, JSON decoding and parser that
validated the data in the first place, so a line dataprep wrote is a line the gate can read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from aria_tuning.catalog import DataFormat
from aria_tuning.dataprep.convert import gemini_contents, gemini_system_instruction
from aria_tuning.dataprep.input_formats import (
    PARSERS,
    Example,
    ExampleError,
    InputFormat,
    decode_object,
    format_of,
)
from aria_tuning.dataprep.line_reader import iter_lines
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
    expected_format = InputFormat.of(data_format)
    data = text.encode("utf-8")
    examples: list[HeldOut] = []
    problems: list[str] = []
    # Lines end at "\n" only, as everywhere in dataprep: str.splitlines() would also cut at
    # U+2028 and U+0085, which JSON strings (and our writers) may hold unescaped.
    for number, line, _, terminated in iter_lines(io.BytesIO(data), max_line_bytes=len(data)):
        if not line or line.isspace():
            continue
        try:
            example = _parse(line, terminated, expected_format)
        except ExampleError as exc:
            problems.append(f"{source}:{number}: {exc}")
        else:
            examples.append(_held_out(number, example, data_format))
        if len(examples) >= limit:
            break
    if problems:
        raise DatasetError(f"{source}: {len(problems)} unreadable eval examples", problems)
    if not examples:
        raise DatasetError(f"{source}: no eval examples")
    return examples


def _parse(line: bytes, terminated: bool, expected_format: InputFormat) -> Example:
    obj = decode_object(line, terminated)
    found = format_of(obj)
    if found is not expected_format:
        raise ExampleError(f"this line is {found.label}, the split should hold {expected_format.label}")
    return PARSERS[found](obj)


def _held_out(line: int, example: Example, data_format: DataFormat) -> HeldOut:
    *prompt_turns, (_, expected) = example.turns
    prompt = prompt_turns[-1][1]  # the parsers guarantee a user turn before the model's answer
    if data_format is DataFormat.PALM:
        return HeldOut(line=line, prompt=prompt, expected=expected)
    system = example.system
    return HeldOut(
        line=line,
        prompt=prompt,
        expected=expected,
        contents=gemini_contents(tuple(prompt_turns)),
        system_instruction=gemini_system_instruction(system) if system is not None else None,
    )
