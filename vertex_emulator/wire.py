"""JSON in and out through the official proto types (google.cloud.aiplatform_v1 / v1beta1).

Requests are parsed strictly (`ignore_unknown_fields=False`): an unknown field or a wrong type
is a 400 INVALID_ARGUMENT, as on Vertex. Responses are written by the same types, so their shape
(camelCase, int64 as strings, enums) is exactly what the client libraries expect.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor, json_format
from google.protobuf.message import Message

from vertex_emulator.exceptions import InvalidArgument

_MODULES = {"v1": "google.cloud.aiplatform_v1.types", "v1beta1": "google.cloud.aiplatform_v1beta1.types"}
_WELL_KNOWN = {
    "google.longrunning.Operation": ("google.longrunning.operations_pb2", "Operation"),
    "google.longrunning.GetOperationRequest": ("google.longrunning.operations_pb2", "GetOperationRequest"),
    "google.longrunning.WaitOperationRequest": ("google.longrunning.operations_pb2", "WaitOperationRequest"),
    "google.longrunning.ListOperationsRequest": (
        "google.longrunning.operations_pb2",
        "ListOperationsRequest",
    ),
    "google.longrunning.ListOperationsResponse": (
        "google.longrunning.operations_pb2",
        "ListOperationsResponse",
    ),
    "google.protobuf.Empty": ("google.protobuf.empty_pb2", "Empty"),
    # Cloud Monitoring's timeSeries.list, for the prediction metrics Vertex AI exports (`monitoring`).
    "google.monitoring.v3.ListTimeSeriesRequest": (
        "google.cloud.monitoring_v3.types.metric_service",
        "ListTimeSeriesRequest",
    ),
    "google.monitoring.v3.ListTimeSeriesResponse": (
        "google.cloud.monitoring_v3.types.metric_service",
        "ListTimeSeriesResponse",
    ),
}


@functools.cache
def message_class(version: str, type_name: str) -> type[Message]:
    if type_name in _WELL_KNOWN:
        module, attr = _WELL_KNOWN[type_name]
        found = getattr(importlib.import_module(module), attr)
        return found.pb() if hasattr(found, "pb") else found  # type: ignore[no-any-return]  # proto-plus
    proto_plus = getattr(importlib.import_module(_MODULES[version]), type_name)
    return proto_plus.pb()  # type: ignore[no-any-return]


def load(version: str) -> None:
    """Import an API version's types (Any-typed fields need them in the descriptor pool)."""
    importlib.import_module(_MODULES[version])


def _query_value(field: Any, raw: list[str]) -> Any:
    def one(text: str) -> Any:
        if field.type == descriptor.FieldDescriptor.TYPE_BOOL:
            if text not in ("true", "false"):
                raise InvalidArgument(
                    f"Invalid value {text!r} for query parameter {field.json_name}: expected a bool"
                )
            return text == "true"
        return text

    if field.is_repeated:
        return [one(text) for text in raw]
    return one(raw[-1])


def parse_request(
    version: str,
    type_name: str,
    path_vars: Mapping[str, str],
    query: Mapping[str, list[str]],
    body_field: str | None,
    body: Any,
) -> dict[str, Any]:
    """The request message as a camelCase dict, validated by its proto type."""
    cls = message_class(version, type_name)
    fields = {f.name: f for f in cls.DESCRIPTOR.fields} | {f.json_name: f for f in cls.DESCRIPTOR.fields}
    payload: dict[str, Any] = {}
    if body_field == "*":
        body = {} if body is None else body  # e.g. WaitOperation posts no body at all
        if not isinstance(body, dict):
            raise InvalidArgument("Invalid JSON payload received. Expected an object.")
        payload.update(body)
    elif body_field is not None:
        if body is not None:
            payload[fields[body_field].json_name] = body
    elif body not in (None, {}):
        raise InvalidArgument(f"{type_name} takes no request body")
    for key, values in query.items():
        if key.startswith("$") or key in ("alt", "key", "prettyPrint", "fields"):  # system parameters
            continue
        # A dotted name binds a field of a message field ("interval.startTime"), as Google's REST does.
        *parents, leaf = key.split(".")
        target, descriptor_fields = payload, fields
        for part in parents:
            parent_field = descriptor_fields.get(part)
            if parent_field is None or parent_field.message_type is None:
                descriptor_fields = {}
                break
            target = target.setdefault(parent_field.json_name, {})
            message_fields = parent_field.message_type.fields
            descriptor_fields = {f.name: f for f in message_fields} | {f.json_name: f for f in message_fields}
        field = descriptor_fields.get(leaf)
        if field is None:
            raise InvalidArgument(
                f'Invalid JSON payload received. Unknown name "{key}": Cannot bind query parameter. '
                f"Field '{key}' could not be found in request message."
            )
        target[field.json_name] = _query_value(field, values)
    for key, value in path_vars.items():  # "endpoint.name" fills a field of the body message
        *parents, leaf = key.split(".")
        target = payload
        for part in parents:
            target = target.setdefault(fields[part].json_name if part in fields else part, {})
        target[leaf] = value
    message = cls()
    try:
        json_format.ParseDict(payload, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise InvalidArgument(f"Invalid JSON payload received. {exc}") from exc
    return json_format.MessageToDict(message)


def emit(version: str, type_name: str, value: Mapping[str, Any], int_enums: bool = False) -> dict[str, Any]:
    """`value` written as the wire JSON of `type_name` (fails loudly if it does not fit)."""
    if version == "v1beta1":
        value = _retype(value)
    message = message_class(version, type_name)()
    json_format.ParseDict(dict(value), message, ignore_unknown_fields=False)
    return json_format.MessageToDict(message, use_integers_for_enums=int_enums)


def _retype(value: Any) -> Any:
    """Operations keep v1 `@type`s; a /v1beta1/ caller gets the v1beta1 types."""
    if isinstance(value, dict):
        return {
            k: (v.replace(".aiplatform.v1.", ".aiplatform.v1beta1.") if k == "@type" else _retype(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_retype(v) for v in value]
    return value
