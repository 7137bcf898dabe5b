"""The one seam between the project and Vertex AI: credentials, endpoint and GAPIC clients.

Nothing else knows where Vertex is. By default clients talk gRPC to `{region}-aiplatform.googleapis.com`;
with an override (connection extra `vertex_api_endpoint` or env `ARIA_VERTEX_API_ENDPOINT`) they use
the REST transports against that URL, which is how the offline emulator stands in.
Google libraries are imported inside methods only: importing this module stays cheap.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, TypeVar

from airflow.sdk import BaseHook

from aria_tuning.errors import ConfigurationError, VertexError

T = TypeVar("T")

ENDPOINT_ENV = "ARIA_VERTEX_API_ENDPOINT"
ENDPOINT_EXTRA = "vertex_api_endpoint"

#: Short service name -> GAPIC client class in google.cloud.aiplatform_v1.
SERVICES = {
    "pipeline": "PipelineServiceClient",
    "tuning": "GenAiTuningServiceClient",
    "model": "ModelServiceClient",
    "endpoint": "EndpointServiceClient",
    "prediction": "PredictionServiceClient",
}

#: Synchronous calls (in execute) are tried this often on transient errors, backing off from
#: SYNC_BACKOFF_SECONDS x 2 (jittered): about 15 s at most before the task itself fails.
SYNC_ATTEMPTS = 4
SYNC_BACKOFF_SECONDS = 1.0

#: HTTP / gRPC codes worth retrying: quota (429), server errors, and timeouts.
TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """True for errors a later call can get past: 429/5xx, deadline exceeded, broken connection."""
    import asyncio

    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code in TRANSIENT_CODES or isinstance(exc, api_exceptions.DeadlineExceeded)
    return isinstance(
        exc,
        (api_exceptions.RetryError, auth_exceptions.TransportError, ConnectionError, asyncio.TimeoutError),
    )


def is_not_found(exc: BaseException) -> bool:
    from google.api_core import exceptions as api_exceptions

    return isinstance(exc, api_exceptions.NotFound)


def is_already_exists(exc: BaseException) -> bool:
    from google.api_core import exceptions as api_exceptions

    return isinstance(exc, (api_exceptions.AlreadyExists, api_exceptions.Conflict))


def vertex_message(exc: BaseException) -> str:
    """Vertex's own words for a failed call (the `message` of the error envelope)."""
    return str(getattr(exc, "message", None) or exc)


def vertex_call(resource: str, action: str, call: Callable[[], T], *, retry: bool = True) -> T:
    """Run one Vertex call; a failure becomes a VertexError naming `resource` and quoting Vertex.

    Transient errors (429, 5xx, deadline) are retried a few times with jittered backoff, unless
    `retry=False`: calls that are not idempotent (create without an id, upload, deploy) must not be
    repeated blindly; their task's retry looks the resource up first instead.
    """
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        try:
            return call()
        except Exception as exc:
            if not retry or attempt == SYNC_ATTEMPTS or not is_transient(exc):
                raise VertexError(f"{action} failed: {vertex_message(exc)}", resource=resource) from exc
            time.sleep(random.uniform(0, SYNC_BACKOFF_SECONDS * 2**attempt))
    raise AssertionError("unreachable")


class VertexHook(BaseHook):
    """Builds `google.cloud.aiplatform_v1` clients (sync and async) for a region.

    Credentials come from the `google_cloud_platform` connection through the Google provider's
    `GoogleBaseHook`, so key files, ADC, `impersonation_chain` and `is_anonymous` all work.
    """

    conn_name_attr = "gcp_conn_id"
    default_conn_name = "google_cloud_default"
    conn_type = "google_cloud_platform"
    hook_name = "ARIA Vertex AI"

    def __init__(
        self,
        gcp_conn_id: str = default_conn_name,
        impersonation_chain: str | Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.gcp_conn_id = gcp_conn_id
        self.impersonation_chain = impersonation_chain

    @cached_property
    def _google(self) -> Any:
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

        return GoogleBaseHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)

    @cached_property
    def _extras(self) -> dict[str, Any]:
        return dict(self.get_connection(self.gcp_conn_id).extra_dejson)

    @cached_property
    def credentials(self) -> Any:
        return self._google.get_credentials()

    @property
    def project_id(self) -> str | None:
        """The connection's project (extra `project`), if it names one."""
        extras = self._extras
        return extras.get("project") or extras.get("extra__google_cloud_platform__project") or None

    @cached_property
    def endpoint_override(self) -> str | None:
        """The Vertex URL set on the connection or in the environment, else None (real Vertex)."""
        value = self._extras.get(ENDPOINT_EXTRA) or os.environ.get(ENDPOINT_ENV)
        return str(value).rstrip("/") if value else None

    def api_endpoint(self, region: str) -> str:
        if not region:
            raise ConfigurationError("a Vertex AI region is required to build a client")
        return self.endpoint_override or f"{region}-aiplatform.googleapis.com"

    def _client_kwargs(self, region: str, asynchronous: bool) -> dict[str, Any]:
        from google.api_core.client_options import ClientOptions

        kwargs: dict[str, Any] = {
            "credentials": self.credentials,
            "client_options": ClientOptions(api_endpoint=self.api_endpoint(region)),
        }
        if self.endpoint_override:
            kwargs["transport"] = "rest_asyncio" if asynchronous else "rest"
        return kwargs

    def client(self, service: str, region: str) -> Any:
        """A synchronous GAPIC client, e.g. `client("pipeline", "europe-west4")`."""
        from google.cloud import aiplatform_v1

        return getattr(aiplatform_v1, SERVICES[service])(**self._client_kwargs(region, asynchronous=False))

    def async_client(self, service: str, region: str) -> Any:
        """An asyncio GAPIC client; build it once per trigger and close it with `close_async_client`."""
        from google.cloud import aiplatform_v1

        cls = getattr(aiplatform_v1, SERVICES[service].replace("Client", "AsyncClient"))
        return cls(**self._client_kwargs(region, asynchronous=True))


async def close_async_client(client: Any) -> None:
    """Release an async client's connections (aiohttp session or gRPC channel)."""
    close = getattr(client.transport, "close", None)
    if close is not None:
        result = close()
        if hasattr(result, "__await__"):
            await result
