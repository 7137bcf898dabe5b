"""Field rules Vertex enforces on create and update: labels and display names.

Every violation is a 400 INVALID_ARGUMENT naming the field and the (truncated) offending value.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from vertex_emulator.exceptions import InvalidArgument

# Google's label rules (https://cloud.google.com/resource-manager/docs/labels-overview#requirements,
# linked as https://goo.gl/xmQnxf from the `labels` field of every Vertex resource proto): at most 64
# labels; keys 1-63 characters starting with a lowercase letter or international character; values
# 0-63 characters; both only lowercase letters, digits, `_` and `-`, international characters allowed.
MAX_LABELS = 64
MAX_LABEL_CHARS = 63
#: PipelineJob, Model, Endpoint display names and TuningJob.tuned_model_display_name: "can be up to
#: 128 characters long and can consist of any UTF-8 characters" (the protos' field comments).
MAX_DISPLAY_NAME_CHARS = 128
_SHOWN = 40


def shown(value: object) -> str:
    """`value` quoted for an error message, cut to a readable length."""
    text = str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...") + (
        f" ({len(text)} characters)" if len(text) > _SHOWN else ""
    )


def _label_char(char: str) -> bool:
    # "Lowercase letters ... international characters are allowed": Unicode lowercase (Ll) and
    # letters without case (Lo), digits of any script (N*), `_` and `-`; upper case is refused.
    return char in "_-" or unicodedata.category(char) in ("Ll", "Lo") or unicodedata.category(char)[0] == "N"


def check_labels(labels: Mapping[str, Any] | None, field: str) -> None:
    """Refuse `labels` that break Google's label rules; `field` names them, e.g. "model.labels"."""
    labels = labels or {}
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"{field} has {len(labels)} labels; at most {MAX_LABELS} are allowed")
    for key, value in labels.items():
        if not 1 <= len(key) <= MAX_LABEL_CHARS:
            raise InvalidArgument(f"{field} key {shown(key)} must be 1 to {MAX_LABEL_CHARS} characters long")
        if unicodedata.category(key[0]) not in ("Ll", "Lo"):
            raise InvalidArgument(
                f"{field} key {shown(key)} must start with a lowercase letter or an international character"
            )
        if not all(_label_char(c) for c in key):
            raise InvalidArgument(
                f"{field} key {shown(key)} may contain only lowercase letters, digits, '_' and '-'"
            )
        text = str(value)
        if len(text) > MAX_LABEL_CHARS:
            raise InvalidArgument(
                f"{field}[{key!r}] value {shown(text)} is longer than {MAX_LABEL_CHARS} characters"
            )
        if not all(_label_char(c) for c in text):
            raise InvalidArgument(
                f"{field}[{key!r}] value {shown(text)} may contain only lowercase letters, digits, "
                "'_' and '-'"
            )


def check_display_name(name: Any, field: str, required: bool = True) -> None:
    """A display name: required (unless `required=False`) and at most 128 characters."""
    text = "" if name is None else str(name)
    if required and not text:
        raise InvalidArgument(f"{field} is required")
    if len(text) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidArgument(f"{field} {shown(text)} is longer than {MAX_DISPLAY_NAME_CHARS} characters")
