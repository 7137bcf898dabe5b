"""The shapes a raw dataset may arrive in (`InputFormat`), each parsed into one canonical `Example`.

JSONL formats, detected per line by their keys (one format per file):
- PaLM: {"input_text": str, "output_text": str}
- Gemini: {"systemInstruction"?: {"parts": [{"text"}]}, "contents": [{"role", "parts": [{"text"}]}]}
- chat: {"messages": [{"role": "system"?|"user"|"assistant"|"model", "content": str}, ...]}
CSV is read by `csvfile`. Only text parts are supported: this project tunes text models.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple

import msgspec

from aria_tuning.catalog import DataFormat


class Example(NamedTuple):
    """One training example: an optional system text and turns alternating user, model."""

    system: str | None
    #: ((role, text), ...) with role "user" or "model", starting with user and ending with model.
    turns: tuple[tuple[str, str], ...]


class ExampleError(ValueError):
    """The example is invalid; the message is the reason shown after `file:line:`."""


class InputFormat(StrEnum):
    """The shape a source file is in, as found by reading it (report.json's `source_formats`).

    Not the catalog's `DataFormat`, which is what a model trains on and what dataprep writes:
    any input format converts to either training format. Each training format is also an input
    format (a prepared split reads back through these parsers), so those two members take their
    values from `DataFormat`: "palm" and "gemini" are spelled once in the project and mean the
    same JSONL shape on both sides; chat and CSV exist only as inputs.
    """

    PALM = DataFormat.PALM.value
    GEMINI = DataFormat.GEMINI.value
    CHAT = "chat"
    CSV = "csv"

    @classmethod
    def of(cls, data_format: DataFormat) -> InputFormat:
        """The input format that reads files written in `data_format` (a prepared split)."""
        return cls(data_format.value)

    @property
    def label(self) -> str:
        """How problems name the format."""
        return _LABELS[self]


_LABELS = {
    InputFormat.PALM: "PaLM input_text/output_text",
    InputFormat.GEMINI: "Gemini contents",
    InputFormat.CHAT: "chat messages",
    InputFormat.CSV: "CSV",
}

_decode = msgspec.json.Decoder().decode


def decode_object(line: bytes, terminated: bool = True) -> dict[str, Any]:
    """One JSONL line as a JSON object; `terminated` False: the file's last line had no newline."""
    try:
        obj = _decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ExampleError(_json_reason(line, exc, terminated)) from exc
    if type(obj) is not dict:
        raise ExampleError(f"expected a JSON object, got {_json_kind(obj)}")
    return obj


def format_of(obj: dict[str, Any]) -> InputFormat:
    """Which JSONL format a decoded line is in, by its keys."""
    if "contents" in obj:
        return InputFormat.GEMINI
    if "messages" in obj:
        return InputFormat.CHAT
    if "input_text" in obj or "output_text" in obj:
        return InputFormat.PALM
    keys = ", ".join(sorted(obj)[:6]) or "none"
    raise ExampleError(
        "missing fields: expected input_text/output_text (PaLM), contents (Gemini) or messages "
        f"(chat); the keys are: {keys}"
    )


def _json_reason(line: bytes, exc: Exception, terminated: bool) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8: byte 0x{line[bad.start]:02x} at column {bad.start + 1}"
    reason = f"invalid JSON: {exc}"
    if not terminated:
        reason += " (the last line has no newline: is the file truncated?)"
    return reason


def _json_kind(obj: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(obj), "null"
    )


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _type_name(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _text_field(obj: dict[str, Any], key: str, where: str = "") -> str:
    value = obj.get(key)
    if type(value) is not str:
        if value is None and key not in obj:
            raise ExampleError(f"missing field {where}{key}")
        raise ExampleError(f"field {where}{key} must be a string, got {_type_name(value)}")
    if not value or value.isspace():
        raise ExampleError(f"empty field {where}{key}")
    return value


def palm_example(source: str, target: str) -> Example:
    """The canonical form of a single-turn (PaLM or CSV) example."""
    return Example(None, (("user", source), ("model", target)))


def parse_palm(obj: dict[str, Any]) -> Example:
    return palm_example(_text_field(obj, "input_text"), _text_field(obj, "output_text"))


def _parts_text(parts: object, where: str) -> str:
    if type(parts) is not list:
        if parts is None:
            raise ExampleError(f"missing field {where}")
        raise ExampleError(f"field {where} must be a list of parts, got {_type_name(parts)}")
    if not parts:
        raise ExampleError(f"empty field {where}")
    texts = []
    for j, part in enumerate(parts):
        if type(part) is not dict:
            raise ExampleError(f"field {where}[{j}] must be an object, got {_type_name(part)}")
        if "text" not in part:
            raise ExampleError(f"{where}[{j}] has no text (only text parts are supported)")
        texts.append(_text_field(part, "text", f"{where}[{j}]."))
    return texts[0] if len(texts) == 1 else "".join(texts)


def parse_gemini(obj: dict[str, Any]) -> Example:
    contents = obj["contents"]
    if type(contents) is not list:
        raise ExampleError(f"field contents must be a list of turns, got {_type_name(contents)}")
    if not contents:
        raise ExampleError("empty field contents")
    turns = []
    for k, turn in enumerate(contents):
        if type(turn) is not dict:
            raise ExampleError(f"field contents[{k}] must be an object, got {_type_name(turn)}")
        role = turn.get("role")
        expected = "user" if k % 2 == 0 else "model"
        if role != expected:
            if role not in ("user", "model"):
                raise ExampleError(f"contents[{k}].role must be 'user' or 'model', got {role!r}")
            raise ExampleError(
                f"wrong role order: contents[{k}] is {role!r}, expected {expected!r} "
                "(turns alternate user, model, starting with user)"
            )
        turns.append((role, _parts_text(turn.get("parts"), f"contents[{k}].parts")))
    if turns[-1][0] != "model":
        raise ExampleError(
            f"wrong role order: the last turn, contents[{len(turns) - 1}], is 'user'; "
            "it must be 'model' (the response to learn)"
        )
    system = None
    instruction = obj.get("systemInstruction", obj.get("system_instruction"))
    if instruction is not None:
        if type(instruction) is not dict:
            raise ExampleError(f"field systemInstruction must be an object, got {_type_name(instruction)}")
        system = _parts_text(instruction.get("parts"), "systemInstruction.parts")
    return Example(system, tuple(turns))


_CHAT_ROLES = {"user": "user", "assistant": "model", "model": "model"}


def parse_chat(obj: dict[str, Any]) -> Example:
    messages = obj["messages"]
    if type(messages) is not list:
        raise ExampleError(f"field messages must be a list, got {_type_name(messages)}")
    if not messages:
        raise ExampleError("empty field messages")
    system = None
    turns: list[tuple[str, str]] = []
    for k, message in enumerate(messages):
        if type(message) is not dict:
            raise ExampleError(f"field messages[{k}] must be an object, got {_type_name(message)}")
        role = message.get("role")
        content = _text_field(message, "content", f"messages[{k}].")
        if role == "system":
            if k != 0:
                raise ExampleError(f"wrong role order: messages[{k}] is 'system'; only the first may be")
            system = content
            continue
        canonical = _CHAT_ROLES.get(role) if type(role) is str else None
        if canonical is None:
            raise ExampleError(f"messages[{k}].role must be 'system', 'user' or 'assistant', got {role!r}")
        expected = "user" if len(turns) % 2 == 0 else "model"
        if canonical != expected:
            raise ExampleError(
                f"wrong role order: messages[{k}] is {role!r}, expected "
                f"{'user' if expected == 'user' else 'assistant'!r} (user and assistant alternate)"
            )
        turns.append((canonical, content))
    if not turns:
        raise ExampleError("messages has no user or assistant turn")
    if turns[-1][0] != "model":
        raise ExampleError("wrong role order: the last message must be 'assistant' (the response to learn)")
    return Example(system, tuple(turns))


#: The one parser of each JSONL format (CSV has its own reader, `csvfile`).
PARSERS: dict[InputFormat, Callable[[dict[str, Any]], Example]] = {
    InputFormat.PALM: parse_palm,
    InputFormat.GEMINI: parse_gemini,
    InputFormat.CHAT: parse_chat,
}
