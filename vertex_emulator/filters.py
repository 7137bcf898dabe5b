"""List filters and orderings: Google's filter syntax (AIP-160) by recursive descent, one evaluator.

Each list call declares a `Schema`: the fields its `filter` documentation names, with the
operators each supports, and the fields `order_by` accepts. Grammar (https://google.aip.dev/160,
which the ListPipelineJobsRequest.filter comment names as its syntax):

    expression  = sequence { "AND" sequence }
    sequence    = factor { factor }              (juxtaposition is AND)
    factor      = term { "OR" term }             (OR binds tighter than AND, as AIP-160 says)
    term        = [ "NOT" | "-" ] simple
    simple      = restriction | "(" expression ")"
    restriction = member comparator value        (comparator: = != < <= > >= :)
    member      = NAME { "." NAME | "." STRING } (labels."a key")

Values are "quoted", 'quoted' or bare words; `:` matches with `*` wildcards (`display_name:"aria*"`),
and on labels tests presence (`labels:key`, `labels.key:*`). Anything a list call does not document
is a 400 INVALID_ARGUMENT naming the token, so a caller never silently gets an unfiltered list.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vertex_emulator.exceptions import InvalidArgument
from vertex_emulator.names import camel as _camel

Predicate = Callable[[Mapping[str, Any]], bool]

STRING, ID, ENUM, TIME, LABELS = "string", "id", "enum", "time", "labels"
EQUALITY = frozenset({"=", "!="})
WILDCARD = frozenset({"=", "!=", ":"})
COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_TOKEN = re.compile(
    r"""\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<op><=|>=|!=|<|>|=|:)"""
    r"""|(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<text>[^\s()<>=!:"']+))"""
)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?P<fraction>\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class Field:
    """A field a list call filters or orders on. `ops` empty: orderable only."""

    name: str  # as documented, snake_case: "display_name", "template_metadata.version"
    kind: str
    ops: frozenset[str]
    get: Callable[[Mapping[str, Any]], Any] | None = None  # default: the camelCase path
    choices: frozenset[str] = frozenset()  # ENUM values

    def value(self, resource: Mapping[str, Any]) -> Any:
        if self.get is not None:
            return self.get(resource)
        value: Any = resource
        for part in self.name.split("."):
            value = value.get(_camel(part)) if isinstance(value, Mapping) else None
        return value


def resource_id(resource: Mapping[str, Any]) -> str:
    """The last segment of a resource's name, without a model's @version."""
    return str(resource.get("name", "")).rsplit("/", 1)[-1].split("@", 1)[0]


@dataclass(frozen=True)
class Schema:
    resource: str  # "PipelineJob", for messages
    fields: tuple[Field, ...]
    order_by: tuple[str, ...] = ()

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if name in (f.name, _camel(f.name))), None)

    def filterable(self) -> list[str]:
        return [f.name for f in self.fields if f.ops or f.kind == LABELS]


def registry_schema(resource: str, id_field: str) -> Schema:
    """What ListModels and ListEndpoints document alike (model_service.proto, endpoint_service.proto):
    `id_field` (the last segment of the name) and display_name with = and !=, labels; order by
    display_name, create_time, update_time. Their `base_model_name` is documented but not emulated."""
    return Schema(
        resource,
        (
            Field(id_field, ID, EQUALITY, get=resource_id),
            Field("display_name", STRING, EQUALITY),
            Field("labels", LABELS, frozenset()),
            Field("create_time", TIME, frozenset()),
            Field("update_time", TIME, frozenset()),
        ),
        order_by=("display_name", "create_time", "update_time"),
    )


def compile_filter(expression: str, schema: Schema) -> Predicate:
    """A predicate over wire dicts for `expression` (empty: everything)."""
    return _Parser(expression, schema).parse()


def order(items: Iterable[Mapping[str, Any]], order_by: str, schema: Schema, default: str = "") -> list[Any]:
    """`items` sorted by `order_by` ("create_time desc, display_name"); missing values sort last."""
    spec = order_by.strip() or default
    if not spec:
        return list(items)
    keys: list[tuple[Field, bool]] = []
    for part in spec.split(","):
        words = part.split()
        field = schema.field(words[0]) if words else None
        if field is None or field.name not in schema.order_by:
            raise InvalidArgument(
                f"unsupported order_by field {part.strip()!r}; {schema.resource} lists order by "
                f"{list(schema.order_by)}"
            )
        if words[1:] not in ([], ["asc"], ["desc"]):
            raise InvalidArgument(f"invalid order_by {part.strip()!r}: expected FIELD [asc|desc]")
        keys.append((field, words[1:] == ["desc"]))

    def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
        for field, desc in keys:
            va, vb = _sortable(field, field.value(a)), _sortable(field, field.value(b))
            if va == vb:
                continue
            if va is None or vb is None:
                return 1 if va is None else -1
            return (1 if va < vb else -1) if desc else (-1 if va < vb else 1)
        return 0

    return sorted(items, key=functools.cmp_to_key(compare))


def _sortable(field: Field, value: Any) -> Any:
    if value is None or value == "":
        return None
    return _timestamp(str(value), "") if field.kind == TIME else str(value)


def _timestamp(text: str, token: str) -> dt.datetime:
    match = _RFC3339.match(text)
    if match is None:
        raise InvalidArgument(
            f"invalid timestamp {text!r} in filter {token!r}: values must be RFC 3339, "
            'e.g. "2021-05-18T00:00:00Z"'
        )
    fraction = (match["fraction"] or "")[:7]  # datetime keeps microseconds; RFC 3339 allows nanoseconds
    base = text[: match.start("fraction")] if match["fraction"] else text[: match.start("offset")]
    offset = "+00:00" if match["offset"] in "Zz" else match["offset"]
    return dt.datetime.fromisoformat(base.replace("t", "T").replace(" ", "T") + fraction + offset)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


@dataclass(frozen=True)
class _Token:
    kind: str  # lparen rparen op string text keyword end
    text: str
    start: int
    end: int


def _tokens(expression: str) -> list[_Token]:
    tokens, at = [], 0
    while expression[at:].strip():
        match = _TOKEN.match(expression, at)
        if match is None or match.lastgroup is None:
            bad = expression[at:].lstrip()
            raise InvalidArgument(f"invalid filter {expression!r}: cannot read {bad[:20]!r}")
        group = match.lastgroup
        text = match[group]
        kind = "keyword" if group == "text" and text in _KEYWORDS else group
        tokens.append(_Token(kind, text, match.start(group), match.end()))
        at = match.end()
    tokens.append(_Token("end", "", len(expression), len(expression)))
    return tokens


class _Parser:
    def __init__(self, expression: str, schema: Schema) -> None:
        self.expression = expression
        self.schema = schema
        self.tokens = _tokens(expression)
        self.at = 0

    @property
    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, token: _Token, why: str) -> InvalidArgument:
        shown = token.text or "end of filter"
        return InvalidArgument(f"invalid filter {self.expression!r} at {shown!r}: {why}")

    def parse(self) -> Predicate:
        if self.peek.kind == "end":
            return lambda resource: True
        predicate = self.expression_()
        if self.peek.kind != "end":
            raise self.fail(self.peek, "expected AND, OR or the end of the filter")
        return predicate

    def expression_(self) -> Predicate:
        parts = [self.sequence()]
        while self.peek.text == "AND" and self.peek.kind == "keyword":
            self.take()
            parts.append(self.sequence())
        return _all(parts)

    def sequence(self) -> Predicate:
        parts = [self.factor()]
        while self.peek.kind in ("text", "string", "lparen") or self.peek.text == "NOT":
            parts.append(self.factor())
        return _all(parts)

    def factor(self) -> Predicate:
        parts = [self.term()]
        while self.peek.text == "OR" and self.peek.kind == "keyword":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda resource: any(p(resource) for p in parts))

    def term(self) -> Predicate:
        token = self.peek
        negate = token.kind == "keyword" and token.text == "NOT"
        if negate:
            self.take()
        elif token.kind == "text" and token.text.startswith("-") and len(token.text) > 1:
            negate = True
            self.tokens[self.at] = _Token("text", token.text[1:], token.start + 1, token.end)
        inner = self.simple()
        return (lambda resource: not inner(resource)) if negate else inner

    def simple(self) -> Predicate:
        if self.peek.kind == "lparen":
            self.take()
            inner = self.expression_()
            if self.peek.kind != "rparen":
                raise self.fail(self.peek, "expected ')'")
            self.take()
            return inner
        return self.restriction()

    def restriction(self) -> Predicate:
        first = self.peek
        if first.kind != "text":
            raise self.fail(first, "expected a field name")
        path = self.member()
        if self.peek.kind != "op":
            raise self.fail(
                self.peek if self.peek.kind != "end" else first,
                f'{".".join(path)!r} needs an operator and a value (FIELD = "VALUE"); '
                "free-text search is not supported",
            )
        op = self.take().text
        value_token = self.take()
        if value_token.kind == "string":
            value = re.sub(r"\\(.)", r"\1", value_token.text[1:-1])
        elif value_token.kind == "text":
            value = value_token.text
        else:
            raise self.fail(value_token, f"expected a value after {'.'.join(path)}{op}")
        token = self.expression[first.start : value_token.end]
        return _restriction(self.schema, path, op, value, token)

    def member(self) -> list[str]:
        token = self.take()
        path = token.text.split(".")
        while path[-1] == "" and self.peek.kind == "string" and self.peek.start == token.end:
            quoted = self.take()
            path[-1] = re.sub(r"\\(.)", r"\1", quoted.text[1:-1])  # labels."a key"
            token = quoted
        if "" in path:
            raise self.fail(token, "malformed field name")
        return path


def _all(parts: list[Predicate]) -> Predicate:
    return parts[0] if len(parts) == 1 else (lambda resource: all(p(resource) for p in parts))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _restriction(schema: Schema, path: list[str], op: str, value: str, token: str) -> Predicate:
    dotted = ".".join(path)
    field = schema.field(dotted) or schema.field(path[0])
    if field is None or not (field.ops or field.kind == LABELS):
        raise InvalidArgument(
            f"unsupported filter field {dotted!r} in {token!r}; {schema.resource} lists filter on "
            f"{schema.filterable()}"
        )
    if field.kind == LABELS:
        return _labels(field, path[1:], op, value, token)
    if dotted not in (field.name, _camel(field.name)):
        raise InvalidArgument(f"unsupported filter field {dotted!r} in {token!r}")
    if op not in field.ops:
        raise InvalidArgument(
            f"unsupported operator {op!r} in {token!r}: {field.name} supports {sorted(field.ops)}"
        )
    if field.kind == TIME:
        wanted = _timestamp(value, token)
        compare = _COMPARE[op]
        return lambda resource: _time_matches(field.value(resource), wanted, compare, op)
    if field.choices and value not in field.choices:
        raise InvalidArgument(
            f"invalid value {value!r} in {token!r}: {field.name} is one of {sorted(field.choices)}"
        )
    if op == ":":
        pattern = _glob(value)
        return lambda resource: pattern.fullmatch(_text(field.value(resource))) is not None
    if op == "=":
        return lambda resource: _text(field.value(resource)) == value
    return lambda resource: _text(field.value(resource)) != value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _time_matches(stored: Any, wanted: dt.datetime, compare: Callable[[Any, Any], bool], op: str) -> bool:
    if not stored:
        return op == "!="  # a job that has not ended has no end_time: only != matches
    return compare(_timestamp(str(stored), ""), wanted)


def _labels(field: Field, rest: list[str], op: str, value: str, token: str) -> Predicate:
    def labels(resource: Mapping[str, Any]) -> Mapping[str, Any]:
        found = field.value(resource)
        return found if isinstance(found, Mapping) else {}

    if not rest:
        if op != ":":
            raise InvalidArgument(f"unsupported filter {token!r}: use labels.KEY=VALUE or labels:KEY")
        return (lambda r: bool(labels(r))) if value == "*" else (lambda r: value in labels(r))
    if len(rest) > 1:
        raise InvalidArgument(f"unsupported filter field {token!r}: a label key with a '.' must be quoted")
    key = rest[0]
    if op == ":":
        if value == "*":
            return lambda r: key in labels(r)
        pattern = _glob(value)
        return lambda r: key in labels(r) and pattern.fullmatch(str(labels(r)[key])) is not None
    if op == "=":
        return lambda r: key in labels(r) and str(labels(r)[key]) == value
    if op == "!=":
        return lambda r: str(labels(r).get(key)) != value if key in labels(r) else True
    raise InvalidArgument(f"unsupported operator {op!r} in {token!r}: labels support =, != and :")
