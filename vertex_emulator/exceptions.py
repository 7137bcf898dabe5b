"""Typed errors of the emulator, each carrying the HTTP status and the google.rpc code name.

Backends raise these; `responses.error_response` is the one place that turns them into
Google's wire envelope `{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base class: an HTTP status and a google.rpc.Code name."""

    http_status = 500
    status = "INTERNAL"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_envelope(self) -> dict[str, dict[str, object]]:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}


class InvalidArgument(EmulatorError):
    http_status = 400
    status = "INVALID_ARGUMENT"


class FailedPrecondition(EmulatorError):
    http_status = 400
    status = "FAILED_PRECONDITION"


class NotFound(EmulatorError):
    http_status = 404
    status = "NOT_FOUND"


class AlreadyExists(EmulatorError):
    http_status = 409
    status = "ALREADY_EXISTS"


class Unimplemented(EmulatorError):
    http_status = 501
    status = "UNIMPLEMENTED"


class Injected(EmulatorError):
    """A fault injected through `/_emulator/faults`: any status the test asked for."""

    _STATUS_NAMES = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ABORTED",
        429: "RESOURCE_EXHAUSTED",
        499: "CANCELLED",
        500: "INTERNAL",
        501: "UNIMPLEMENTED",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }

    def __init__(self, http_status: int, message: str):
        super().__init__(message)
        self.http_status = http_status
        self.status = self._STATUS_NAMES.get(http_status, "UNKNOWN")
