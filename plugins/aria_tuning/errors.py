"""The project's one exception hierarchy. Every error names what was wrong and where."""

from __future__ import annotations


class AriaTuningError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(AriaTuningError):
    """A setting (connection, variable, environment, parameter) is missing or wrong."""


class CatalogError(ConfigurationError):
    """Unknown base model, or an accelerator/region the model cannot be tuned on."""


class DatasetError(AriaTuningError):
    """The dataset is not valid for the chosen model; `problems` holds `file:line: reason` strings."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems or [])


class PlanError(AriaTuningError):
    """The tuning plan is impossible or above the configured limits (steps, duration)."""


class VertexError(AriaTuningError):
    """A Vertex AI (or GCS) call or job failed; `resource` names the resource involved.

    `transient` is True when a later call may get past it (quota, server errors, timeouts, a broken
    connection): the triggers ride those out, everything else fails the wait.
    """

    def __init__(self, message: str, resource: str | None = None, *, transient: bool = False) -> None:
        super().__init__(f"{resource}: {message}" if resource else message)
        self.resource = resource
        self.transient = transient


class VertexNotFound(VertexError):
    """The resource does not exist (HTTP 404 / gRPC NOT_FOUND)."""


class VertexAlreadyExists(VertexError):
    """A resource with that id already exists (HTTP 409 / gRPC ALREADY_EXISTS)."""


class VertexInvalidRequest(VertexError):
    """Vertex refused the request as malformed or impossible now (INVALID_ARGUMENT, FAILED_PRECONDITION)."""


class VertexPermissionDenied(VertexError):
    """The caller's credentials are missing, invalid or lack a permission (401 / 403)."""


class VertexJobFailed(VertexError):
    """A pipeline run or tuning job ended FAILED, CANCELLED or EXPIRED."""

    def __init__(self, message: str, resource: str, state: str) -> None:
        super().__init__(message, resource)
        self.state = state


class EvaluationEndpointError(VertexError):
    """An endpoint asked during an evaluation did not answer (after retries): nothing was scored."""


class QualityGateFailed(AriaTuningError):
    """The candidate lost to the champion or stayed below the floor: it is not promoted."""


class CanaryFailed(AriaTuningError):
    """The canary's error rate rose during its soak: it was rolled back."""
