"""An emulator error as a google.rpc.Status with the details Google APIs attach (AIP-193).

Every status carries a google.rpc.ErrorInfo (AIP-193 makes it mandatory), with reasons from
google/api/error_reason.proto where the error is one of Google's infrastructure errors (quota,
credentials) and the status name in the aiplatform.googleapis.com domain otherwise; plus the
code's own detail type from google/rpc/error_details.proto: ResourceInfo for NOT_FOUND and
ALREADY_EXISTS, PreconditionFailure for FAILED_PRECONDITION, QuotaFailure for RESOURCE_EXHAUSTED,
BadRequest for INVALID_ARGUMENT when the error names the field (an error's `field` attribute).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from vertex_emulator.exceptions import EmulatorError

SERVICE = "aiplatform.googleapis.com"
INFRASTRUCTURE = "googleapis.com"  # ErrorInfo.domain of errors raised by Google's API front end
# google/api/error_reason.proto: the reasons Google's front end gives for these codes.
_INFRASTRUCTURE_REASONS = {
    "RESOURCE_EXHAUSTED": "RATE_LIMIT_EXCEEDED",
    "UNAUTHENTICATED": "CREDENTIALS_MISSING",
    "PERMISSION_DENIED": "IAM_PERMISSION_DENIED",
}


def status_of(error: EmulatorError, method: str, resource: str = "") -> status_pb2.Status:
    """The google.rpc.Status of `error` raised by gRPC `method` (e.g. google.cloud.aiplatform.v1.
    PipelineService.CreatePipelineJob) on `resource` (the resource name the request named).

    An error that brings its own details (`error.details`, wire dicts with an "@type", as the REST
    envelope carries them) keeps them; the others get the details described above.
    """
    code = error.status if error.status in code_pb2.Code.keys() else "UNKNOWN"  # noqa: SIM118
    status = status_pb2.Status(code=code_pb2.Code.Value(code), message=error.message)
    own: list[Any] = list(getattr(error, "details", None) or [])
    for detail in own:
        packed = status.details.add()
        try:
            json_format.ParseDict(detail, packed)
        except json_format.ParseError as exc:
            raise ValueError(
                f"{type(error).__name__} has a detail that is not a google.rpc type: {detail}"
            ) from exc
    if not own:
        for message in (_error_info(error, code, method, resource), *_specific(error, code, resource)):
            status.details.add().Pack(message)
    return status


def _consumer(resource: str) -> str:
    """`projects/P` of a resource name: the API consumer Google's errors name."""
    parts = resource.split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 and parts[0] == "projects" else ""


def _error_info(error: EmulatorError, code: str, method: str, resource: str) -> error_details_pb2.ErrorInfo:
    metadata = {"service": SERVICE, "method": method}
    if consumer := _consumer(resource):
        metadata["consumer"] = consumer
    reason = getattr(error, "reason", None) or _INFRASTRUCTURE_REASONS.get(code)
    if reason:
        return error_details_pb2.ErrorInfo(reason=reason, domain=INFRASTRUCTURE, metadata=metadata)
    return error_details_pb2.ErrorInfo(reason=code, domain=SERVICE, metadata=metadata)


def _specific(error: EmulatorError, code: str, resource: str) -> list[Message]:
    if code in ("NOT_FOUND", "ALREADY_EXISTS"):
        return [error_details_pb2.ResourceInfo(resource_name=resource, description=error.message)]
    if code == "FAILED_PRECONDITION":
        violation = error_details_pb2.PreconditionFailure.Violation(
            type="STATE", subject=resource, description=error.message
        )
        return [error_details_pb2.PreconditionFailure(violations=[violation])]
    if code == "RESOURCE_EXHAUSTED":
        quota = error_details_pb2.QuotaFailure.Violation(
            subject=_consumer(resource), description=error.message
        )
        return [error_details_pb2.QuotaFailure(violations=[quota])]
    field = getattr(error, "field", None)
    if code == "INVALID_ARGUMENT" and field:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=error.message)
        return [error_details_pb2.BadRequest(field_violations=[violation])]
    return []
