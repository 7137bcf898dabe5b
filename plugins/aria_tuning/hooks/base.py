"""What every Vertex AI hook shares: the connection's credentials, where Vertex is, the transport, retries.

The one place that builds GAPIC clients and turns Google's exceptions into the typed errors of
`aria_tuning.errors`. Google libraries are imported inside methods only: importing it stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from aria_tuning.errors import (
    ConfigurationError,
    VertexAlreadyExists,
    VertexError,
    VertexInvalidRequest,
    VertexNotFound,
    VertexPermissionDenied,
)

#: Where Vertex is, when it is not `{region}-aiplatform.googleapis.com` (the emulator): a URL for REST
#: (`http://127.0.0.1:9024`), a `host:port` target for gRPC. The connection extra wins over the env.
ENDPOINT_ENV = "ARIA_VERTEX_API_ENDPOINT"
ENDPOINT_EXTRA = "vertex_api_endpoint"
#: `grpc` (the client libraries' default, as on Google Cloud) or `rest`.
TRANSPORT_ENV = "ARIA_VERTEX_TRANSPORT"
TRANSPORT_EXTRA = "vertex_transport"
#: A PEM file of root certificates for a gRPC endpoint override served over TLS (a self-signed
#: emulator); without it an overridden gRPC endpoint is plain-text on loopback.
GRPC_ROOT_CERT_ENV = "ARIA_VERTEX_GRPC_ROOT_CERT"
GRPC_ROOT_CERT_EXTRA = "vertex_grpc_root_cert"
TRANSPORTS = ("grpc", "rest")

#: Short service name -> GAPIC client class in google.cloud.aiplatform_v1.
SERVICES = {
    "pipeline": "PipelineServiceClient",
    "tuning": "GenAiTuningServiceClient",
    "model": "ModelServiceClient",
    "endpoint": "EndpointServiceClient",
    "prediction": "PredictionServiceClient",
    "evaluation": "EvaluationServiceClient",
}

#: HTTP / gRPC codes worth retrying: quota (429), server errors, and timeouts.
TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
#: Per-attempt deadline of a synchronous call, and the whole budget of its transient-error retries:
#: api-core's Retry sleeps a jittered, doubling delay (1 s, 2 s, 4 s, capped at 8 s) between attempts
#: (google/api_core/retry/retry_base.py, exponential_sleep_generator), so about 5 attempts fit.
CALL_TIMEOUT_SECONDS = 60.0
RETRY_BUDGET_SECONDS = 30.0


def is_transient(exc: BaseException) -> bool:
    """True for errors a later call can get past: 429/5xx, deadline exceeded, broken connection."""
    import asyncio

    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(exc, VertexError):
        return exc.transient
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code in TRANSIENT_CODES or isinstance(exc, api_exceptions.DeadlineExceeded)
    # The REST transports raise requests' own ConnectionError (an OSError, not the builtin one) when a
    # connection is reset or refused, and ChunkedEncodingError when a reply breaks off; api-core's own
    # `if_transient_error` retries both (google/api_core/retry/retry_base.py).
    from requests import exceptions as requests_exceptions

    return isinstance(
        exc,
        (
            api_exceptions.RetryError,
            auth_exceptions.TransportError,
            ConnectionError,
            asyncio.TimeoutError,
            requests_exceptions.ConnectionError,
            requests_exceptions.ChunkedEncodingError,
        ),
    )


def vertex_message(exc: BaseException) -> str:
    """Google's own words for a failed call (the `message` of the error envelope)."""
    if isinstance(exc, VertexError) and exc.__cause__ is not None:
        return vertex_message(exc.__cause__)  # our typed error wraps Google's
    return str(getattr(exc, "message", None) or exc)


def api_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a Google call raises for reasons outside our code (everything else is a bug)."""
    import asyncio

    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    return (
        api_exceptions.GoogleAPIError,  # GoogleAPICallError, RetryError
        auth_exceptions.GoogleAuthError,
        OSError,  # ConnectionError, socket timeouts
        asyncio.TimeoutError,
    )


def typed_error(exc: BaseException, resource: str | None, action: str) -> VertexError:
    """The VertexError subclass for a Google exception; raise it `from exc`."""
    from google.api_core import exceptions as api_exceptions

    # An exhausted api-core Retry wraps the last error it saw: classify by that one.
    last = exc.cause if isinstance(exc, api_exceptions.RetryError) and exc.cause is not None else exc
    message = f"{action} failed: {vertex_message(exc)}"
    kind: type[VertexError] = VertexError
    if isinstance(last, api_exceptions.NotFound):
        kind = VertexNotFound
    elif isinstance(last, api_exceptions.AlreadyExists) or (
        isinstance(last, api_exceptions.Conflict) and not isinstance(last, api_exceptions.Aborted)
    ):
        kind = VertexAlreadyExists
    elif isinstance(
        last, (api_exceptions.InvalidArgument, api_exceptions.FailedPrecondition, api_exceptions.BadRequest)
    ):
        kind = VertexInvalidRequest
    elif isinstance(last, (api_exceptions.Unauthenticated, api_exceptions.Forbidden)):
        kind = VertexPermissionDenied
    return kind(message, resource=resource, transient=is_transient(exc))


@contextlib.contextmanager
def translated(resource: str | None, action: str) -> Iterator[None]:
    """Turn a failed Google call inside the block into a typed VertexError naming `resource`."""
    try:
        yield
    except VertexError:
        raise
    except api_errors() as exc:
        raise typed_error(exc, resource, action) from exc


class VertexHook(BaseHook):
    """Credentials, endpoint and transport of one `google_cloud_platform` connection; builds clients.

    Credentials come through the Google provider's `GoogleBaseHook`, so key files, ADC,
    `impersonation_chain` and `is_anonymous` all work. The service hooks (`hooks.jobs`,
    `hooks.models`, `hooks.endpoints`, `hooks.prediction`, `hooks.gcs`) build on it.
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
        self._clients: dict[tuple[str, str], Any] = {}

    @cached_property
    def _google(self) -> Any:
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

        return GoogleBaseHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)

    @cached_property
    def _extras(self) -> dict[str, Any]:
        return dict(self.get_connection(self.gcp_conn_id).extra_dejson)

    def _setting(self, extra: str, env: str) -> str | None:
        value = self._extras.get(extra) or os.environ.get(env)
        return str(value) if value else None

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
        """The Vertex endpoint set on the connection or in the environment, else None (real Vertex)."""
        value = self._setting(ENDPOINT_EXTRA, ENDPOINT_ENV)
        return value.rstrip("/") if value else None

    @cached_property
    def transport(self) -> str:
        """`grpc` or `rest`: the setting, else REST for an http(s):// override, else gRPC (the default)."""
        value = self._setting(TRANSPORT_EXTRA, TRANSPORT_ENV)
        if value is None:
            override = self.endpoint_override or ""
            return "rest" if override.startswith(("http://", "https://")) else "grpc"
        if value.lower() not in TRANSPORTS:
            raise ConfigurationError(
                f"{TRANSPORT_EXTRA} (connection {self.gcp_conn_id}) / {TRANSPORT_ENV} must be one of "
                f"{', '.join(TRANSPORTS)}, got {value!r}"
            )
        return value.lower()

    def api_endpoint(self, region: str) -> str:
        if not region:
            raise ConfigurationError("a Vertex AI region is required to build a client")
        return self.endpoint_override or f"{region}-aiplatform.googleapis.com"

    def _grpc_channel(self, target: str, asynchronous: bool) -> Any:
        """A channel to an overridden gRPC endpoint that still carries the connection's credentials.

        Call credentials need a secure channel: TLS with the configured root certificate, or gRPC's
        local credentials, which grpc allows for plain-text connections to loopback only.
        """
        import grpc
        from google.auth.transport.grpc import AuthMetadataPlugin
        from google.auth.transport.requests import Request

        target = target.removeprefix("grpc://").removeprefix("dns:///")
        root_certificates = self._grpc_root_certificates
        if root_certificates is not None:
            channel_credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        else:
            channel_credentials = grpc.local_channel_credentials()
        credentials = grpc.composite_channel_credentials(
            channel_credentials,
            grpc.metadata_call_credentials(AuthMetadataPlugin(self.credentials, Request())),
        )
        factory = grpc.aio.secure_channel if asynchronous else grpc.secure_channel
        return factory(target, credentials)

    @cached_property
    def _grpc_root_certificates(self) -> bytes | None:
        """The PEM bytes of the configured gRPC root certificate, read once (None: none configured)."""
        root_cert = self._setting(GRPC_ROOT_CERT_EXTRA, GRPC_ROOT_CERT_ENV)
        if not root_cert:
            return None
        try:
            with open(root_cert, "rb") as pem:
                return pem.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the gRPC root certificate {root_cert}: {exc}") from exc

    def _client_kwargs(self, service: str, region: str, asynchronous: bool) -> dict[str, Any]:
        from google.api_core.client_options import ClientOptions

        endpoint = self.api_endpoint(region)
        if self.transport == "grpc" and self.endpoint_override:
            transport_class = _transport_class(service, asynchronous)
            return {"transport": transport_class(channel=self._grpc_channel(endpoint, asynchronous))}
        kwargs: dict[str, Any] = {
            "credentials": self.credentials,
            "client_options": ClientOptions(api_endpoint=endpoint),
        }
        if self.transport == "rest":
            kwargs["transport"] = "rest_asyncio" if asynchronous else "rest"
        return kwargs

    def client(self, service: str, region: str) -> Any:
        """A synchronous GAPIC client, e.g. `client("pipeline", "europe-west4")`, cached per region."""
        from google.cloud import aiplatform_v1

        key = (service, region)
        if key not in self._clients:
            cls = getattr(aiplatform_v1, SERVICES[service])
            self._clients[key] = cls(**self._client_kwargs(service, region, asynchronous=False))
        return self._clients[key]

    def async_client(self, service: str, region: str) -> Any:
        """An asyncio GAPIC client; build it once per wait and close it with `close_async_client`."""
        from google.cloud import aiplatform_v1

        cls = getattr(aiplatform_v1, SERVICES[service].replace("Client", "AsyncClient"))
        return cls(**self._client_kwargs(service, region, asynchronous=True))

    @staticmethod
    def retry(idempotent: bool = True) -> Any:
        """api-core's jittered exponential retry on transient errors, or None for calls not to repeat.

        A create without a client-chosen id, an upload or a deploy may have landed when its reply was
        lost: repeating it blindly could pay twice. Their task's retry looks the resource up instead.
        Waits pass it to `operation.result(retry=...)` too: api-core polls an LRO's GetOperation with no
        retry otherwise (api_core/operation.py `_refresh_and_update`), and one 429 failed the wait.
        """
        if not idempotent:
            return None
        from google.api_core.retry import Retry

        return Retry(
            predicate=is_transient, initial=1.0, multiplier=2.0, maximum=8.0, timeout=RETRY_BUDGET_SECONDS
        )


#: Async clients shared by the waits of one triggerer: per event loop (a client belongs to the loop it
#: was built on; a loop that is gone takes its entries with it), (connection, impersonation, service,
#: region) -> [client, number of open hooks using it]. A gRPC channel over TLS holds its own connection
#: (about 115 KB) and its GAPIC client 40-70 KB more; 500 waits each with their own measured 163 KB per
#: wait, sharing them 19 KB, and less CPU per poll (bench/RESULTS.md, benchmark 2b). The client is
#: closed when the last wait using it closes.
_SHARED_CLIENTS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], list[Any]]] = (
    weakref.WeakKeyDictionary()
)


class AsyncVertexHook(VertexHook):
    """The async client of one service for one wait in the triggerer: `await open()`, then `close()`.

    Waits on the same connection, service and region in one event loop share one client and channel.
    """

    def __init__(self, service: str, region: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.region = region
        self._async_client: Any = None
        self._share_key: tuple[Any, ...] | None = None

    def _key(self) -> tuple[Any, ...]:
        chain = self.impersonation_chain
        chain_key = tuple(chain) if isinstance(chain, (list, tuple)) else chain
        return (self.gcp_conn_id, chain_key, self.service, self.region)

    @staticmethod
    def _shared() -> dict[tuple[Any, ...], list[Any]]:
        """The running loop's shared clients."""
        import asyncio

        return _SHARED_CLIENTS.setdefault(asyncio.get_running_loop(), {})

    async def open(self) -> None:
        """Build the client, holding the triggerer's event loop only for what must happen on it.

        What blocks runs in a thread first: the connection and credentials, the root certificate file,
        and the first import of the Google client modules (about a second in a fresh triggerer, which
        stalls every other trigger of the process). Only the client and its channel, which belong to
        this loop, are built on it.
        """
        import asyncio

        key, shared = self._key(), self._shared()
        if key not in shared:
            # A plain worker thread (asgiref would be one more first import on the loop): from there
            # the Task SDK reaches the triggerer's supervisor with run_coroutine_threadsafe.
            await asyncio.to_thread(self._load_off_loop)
            if key not in shared:  # another wait may have built it while we were away
                shared[key] = [self.async_client(self.service, self.region), 0]
        entry = shared[key]
        entry[1] += 1
        self._async_client, self._share_key = entry[0], key

    def _load_off_loop(self) -> None:
        """Everything `async_client` would otherwise read, compute or import on the loop."""
        _import_google_clients()
        if self.transport == "grpc" and self.endpoint_override:
            _transport_class(self.service, asynchronous=True)
            self._grpc_root_certificates  # noqa: B018  # cached: the PEM file is read here, not on the loop
        elif self.transport == "rest":
            _transport_class(self.service, asynchronous=True, kind="rest_asyncio")
        self.credentials  # noqa: B018  # cached; may read a key file or call a metadata server

    async def close(self) -> None:
        """Let go of the client; the last wait using it closes its connections."""
        if self._async_client is None:
            return
        key, self._async_client, self._share_key = self._share_key, None, None
        shared = self._shared()
        entry = shared.get(key) if key is not None else None
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del shared[key]  # type: ignore[arg-type]
            await close_async_client(entry[0])

    @property
    def aio(self) -> Any:
        """The open client (`open()` first)."""
        if self._async_client is None:
            raise RuntimeError(f"{type(self).__name__}: call open() before using the client")
        return self._async_client


def _import_google_clients() -> None:
    """The first import of the Google client modules, in the calling (worker) thread, without stalling
    the event loop's thread.

    Importing google.cloud.aiplatform_v1 creates so many objects that the garbage collector runs full
    collections during it, each holding the GIL for up to 0.6 s: the loop thread, though it has nothing to
    compute, cannot run (the triggerer logged "async thread was blocked for 1.3 s"). So the collector is
    paused for the import, and what it imported is frozen (`gc.freeze`: module objects live as long as the
    process, no collection needs to walk them again; the process's other objects of that moment are
    frozen with them, a one-time cost). Also the lazily imported pieces: the channel factory and the
    call-credentials plugin (grpc), error classes (on the first error), and the stdlib's strptime, which
    protobuf's JSON parser imports on the first timestamp of a REST answer.
    """
    import gc
    import importlib
    import sys

    first = "google.cloud.aiplatform_v1" not in sys.modules
    paused = first and gc.isenabled()
    if paused:
        gc.disable()
    try:
        for module in (
            "_strptime",
            "grpc._plugin_wrapping",
            "grpc.aio",
            "google.api_core.exceptions",
            "google.auth.transport.grpc",
            "google.auth.transport.requests",
            "google.cloud.aiplatform_v1",
        ):
            importlib.import_module(module)
    finally:
        if first:
            gc.freeze()
        if paused:
            gc.enable()


def _transport_class(service: str, asynchronous: bool, kind: str = "grpc") -> Any:
    """The GAPIC transport class of `service`: gRPC (sync or asyncio) or `rest_asyncio`."""
    import importlib

    module = importlib.import_module(f"google.cloud.aiplatform_v1.services.{_service_module(service)}")
    if kind == "rest_asyncio":
        rest = importlib.import_module(f"{module.__name__}.transports.rest_asyncio")
        return getattr(rest, "Async" + SERVICES[service].replace("Client", "RestTransport"))
    suffix = "GrpcAsyncIOTransport" if asynchronous else "GrpcTransport"
    return getattr(module.transports, SERVICES[service].replace("Client", suffix))


def _service_module(service: str) -> str:
    """`pipeline` -> `pipeline_service`, `tuning` -> `gen_ai_tuning_service`, ..."""
    import re

    name = SERVICES[service].removesuffix("Client")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


async def close_async_client(client: Any) -> None:
    """Release an async client's connections (aiohttp session or gRPC channel)."""
    close = getattr(client.transport, "close", None)
    if close is not None:
        result = close()
        if hasattr(result, "__await__"):
            await result
