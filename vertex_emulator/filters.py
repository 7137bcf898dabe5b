"""The subset of Google's list filter syntax (AIP-160) that Vertex list calls use here.

Supported: terms joined by AND; `field = "value"`, `field != "value"`, `labels.KEY = "value"`,
`labels.KEY:*` (has label); fields are snake_case or camelCase. Anything else is a 400, so a
caller never silently gets an unfiltered list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from vertex_emulator.exceptions import InvalidArgument

_TERM = re.compile(
    r"""^\s*(?P<field>[A-Za-z_][\w.\-]*)\s*(?P<op>!=|=|:)\s*(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"']+)\s*$"""
)
_AND = re.compile(r"\s+AND\s+")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def compile_filter(expression: str, fields: frozenset[str]) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over wire dicts; `fields` are the filterable top-level fields (camelCase)."""
    if not expression.strip():
        return lambda resource: True
    if re.search(r"\s(OR|NOT)\s|^\s*NOT\s|[()]", expression):
        raise InvalidArgument(f"unsupported filter {expression!r}: the emulator supports terms joined by AND")
    predicates = [_term(term, fields) for term in _AND.split(expression.strip())]
    return lambda resource: all(predicate(resource) for predicate in predicates)


def _term(term: str, fields: frozenset[str]) -> Callable[[Mapping[str, Any]], bool]:
    match = _TERM.match(term)
    if match is None:
        raise InvalidArgument(f"invalid filter term {term!r}")
    field, op, raw = match["field"], match["op"], match["value"]
    value = raw[1:-1].replace('\\"', '"') if raw[:1] in "\"'" else raw
    if field.startswith("labels."):
        key = field[len("labels.") :]
        if op == ":":
            return lambda resource: key in (resource.get("labels") or {}) if value == "*" else False
        return _compare(lambda resource: (resource.get("labels") or {}).get(key), op, value)
    camel = _camel(field)
    if camel not in fields:
        raise InvalidArgument(
            f"unsupported filter field {field!r}; filterable: {sorted(fields)} and labels.KEY"
        )
    if op == ":":
        return lambda resource: value in str(resource.get(camel, ""))
    return _compare(lambda resource: resource.get(camel), op, value)


def _compare(
    get: Callable[[Mapping[str, Any]], Any], op: str, value: str
) -> Callable[[Mapping[str, Any]], bool]:
    if op == "=":
        return lambda resource: str(get(resource)) == value if get(resource) is not None else False
    return lambda resource: str(get(resource)) != value if get(resource) is not None else True
