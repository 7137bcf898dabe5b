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
        #: google.rpc status details (e.g. an ErrorInfo), sent as the envelope's "details".
        self.details: list[dict[str, object]] = []
        #: Extra HTTP response headers (e.g. WWW-Authenticate on a 401).
        self.headers: dict[str, str] = {}

    def to_envelope(self) -> dict[str, dict[str, object]]:
        error: dict[str, object] = {"code": self.http_status, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class InvalidArgument(EmulatorError):
    http_status = 400
    status = "INVALID_ARGUMENT"


class FailedPrecondition(EmulatorError):
    http_status = 400
    status = "FAILED_PRECONDITION"


class FrontEndError(EmulatorError):
    """An error of Google's API front end (credentials, scopes, IAM), with its google.rpc.ErrorInfo:
    `reason` from google/api/error_reason.proto, domain googleapis.com, the `service` called."""

    def __init__(self, message: str, reason: str, service: str = "aiplatform.googleapis.com"):
        super().__init__(message)
        self.reason = reason
        self.details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": service},
            }
        ]


class Unauthenticated(FrontEndError):
    """No valid bearer token: Google's 401 with a WWW-Authenticate challenge; `reason` is
    CREDENTIALS_MISSING, ACCESS_TOKEN_EXPIRED or ACCESS_TOKEN_TYPE_UNSUPPORTED."""

    http_status = 401
    status = "UNAUTHENTICATED"

    def __init__(self, message: str, reason: str, service: str = "aiplatform.googleapis.com"):
        super().__init__(message, reason, service)
        challenge = 'Bearer realm="https://accounts.google.com/"'
        if reason != "CREDENTIALS_MISSING":
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class PermissionDenied(FrontEndError):
    """A valid caller without the right: insufficient scopes, or not a token creator of an account."""

    http_status = 403
    status = "PERMISSION_DENIED"


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


class OAuthError(Exception):
    """An error of the OAuth 2.0 token endpoint: RFC 6749's `{"error", "error_description"}`, not
    Google's API envelope (e.g. invalid_grant, status 400, as oauth2.googleapis.com answers)."""

    def __init__(self, error: str, description: str, http_status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.http_status = http_status

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
