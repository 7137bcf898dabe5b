"""The GCS gate: an authenticating reverse proxy in front of the GCS emulator (gcp-storage-emulator checks
no credentials), served by the Vertex emulator process on a port of its own (`--gcs-gate-port`).

In the Vertex process because it must accept exactly the tokens that process issues: it shares the one
`TokenAuthority` (no token-introspection hop between processes) and its calls land in the same
control-plane call log (surface "gcs"). On a port of its own because STORAGE_EMULATOR_HOST is a root URL
whose `/storage/v1`, `/upload/storage/v1` and `/download/storage/v1` paths must reach the GCS emulator as
they are. Everything but the credential check is forwarded unchanged and streamed both ways: any method,
headers, query, bodies (resumable and multipart uploads, ranged downloads). The emulator's fault rules
with `"service": "gcs"` strike here (gcp-storage-emulator has none of its own), through the same
`faults.serve` as Vertex calls, answering in the JSON API's error shape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from vertex_emulator.auth import STORAGE_SCOPES, TokenAuthority
from vertex_emulator.dropped import DROPPED, droppable
from vertex_emulator.exceptions import EmulatorError, Injected, PermissionDenied, Unauthenticated
from vertex_emulator.faults import ConnectionDropped, Faults, serve

log = logging.getLogger("vertex_emulator.gcs_gate")

#: RFC 9110 section 7.6.1 hop-by-hop headers: a proxy never forwards them.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade"}
)
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: `errors[].reason` of an injected status, as Cloud Storage words them
#: (https://cloud.google.com/storage/docs/json_api/v1/status-codes); others: backendError or invalid.
_REASONS = {
    400: "invalid",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "badGateway",
    503: "backendError",
    504: "gatewayTimeout",
}


def create_gate(
    upstream: str,
    authority: TokenAuthority,
    faults: Faults | None = None,
    count: Callable[[str], None] | None = None,
) -> ASGIApp:
    """The gate's ASGI app forwarding to `upstream` (the GCS emulator's root URL); the `gcs` rules of
    `faults` strike its calls, and `count` gets each struck call's label (e.g. `fault 503`)."""
    upstream = upstream.rstrip("/")
    faults = faults if faults is not None else Faults()
    clients: dict[str, httpx.AsyncClient] = {}  # one per event loop: the gate runs on its own

    async def proxy(request: Request) -> Response:
        try:
            principal = authority.verify(request.headers.get("authorization"), STORAGE_SCOPES)
        except (Unauthenticated, PermissionDenied) as error:
            return _gcs_error(error)
        authority.record("gcs", request.method, request.url.path, principal)
        decision = faults.decide(request.method, request.url.path, service="gcs")
        answers: list[httpx.Response] = []
        try:
            return await serve(decision, lambda: forward(request, answers), count or (lambda _: None))
        except (Injected, ConnectionDropped) as struck:
            # A reply lost after the upstream answered (`when: after`): release its connection.
            for answer in answers:
                await answer.aclose()
            return DROPPED if isinstance(struck, ConnectionDropped) else _gcs_error(struck)

    async def forward(request: Request, answers: list[httpx.Response]) -> Response:
        client = clients.get("client")
        if client is None:
            client = clients["client"] = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0))
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        outgoing = client.build_request(
            request.method,
            url,
            # Host stays the client's: the GCS emulator builds mediaLink and the resumable-upload
            # Location from it (gcp_storage_emulator/server.py, Request.__init__), so they point here.
            headers=[(k, v) for k, v in request.headers.items() if k not in _HOP_BY_HOP | {"authorization"}],
            content=_body(request) if has_body else None,
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            log.warning("GCS gate: upstream %s unreachable for %s %s: %r", upstream, request.method, url, exc)
            return JSONResponse(
                {"error": {"code": 502, "message": f"GCS gate: upstream {upstream} unreachable: {exc!r}"}},
                status_code=502,
            )
        answers.append(answer)
        gate_root = f"{request.url.scheme}://{request.url.netloc}"
        response = StreamingResponse(
            answer.aiter_raw(), status_code=answer.status_code, background=BackgroundTask(answer.aclose)
        )
        response.raw_headers = [
            (key.encode("latin-1"), _relocate(key, value, upstream, gate_root).encode("latin-1"))
            for key, value in answer.headers.multi_items()
            if key.lower() not in _HOP_BY_HOP
        ]
        return response

    return droppable(Starlette(routes=[Route("/{path:path}", proxy, methods=_METHODS)]))


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _relocate(key: str, value: str, upstream: str, gate_root: str) -> str:
    """A Location pointing at the upstream points at the gate instead (for upstreams ignoring Host)."""
    if key.lower() == "location" and value.startswith(upstream):
        return gate_root + value[len(upstream) :]
    return value


def _gcs_error(error: EmulatorError) -> JSONResponse:
    """The JSON API's error shape (`errors[]` with reason and location), Google's words in `message`:
    what google-api-core's `from_http_response` reads, so storage's retry classifies it by status."""
    item = {"message": error.message, "domain": "global", "reason": _reason(error)}
    if isinstance(error, Unauthenticated):
        item |= {"locationType": "header", "location": "Authorization"}
    if error.http_status == 429:
        item["domain"] = "usageLimits"
    body: dict[str, Any] = {"error": {"code": error.http_status, "message": error.message, "errors": [item]}}
    return JSONResponse(body, status_code=error.http_status, headers=error.headers)


def _reason(error: EmulatorError) -> str:
    if isinstance(error, Unauthenticated):
        return "required" if error.reason == "CREDENTIALS_MISSING" else "authError"
    if isinstance(error, PermissionDenied):
        return "insufficientPermissions"
    return _REASONS.get(error.http_status, "backendError" if error.http_status >= 500 else "invalid")


def serve_in_thread(app: ASGIApp, host: str, port: int, log_level: str, timeout: float = 30.0) -> Any:
    """Serve `app` on host:port from a daemon thread with its own event loop; returns the uvicorn
    server once it listens (set `should_exit` to stop it). SystemExit when it cannot start."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")
    )
    # A non-main thread: uvicorn leaves signal handling to the main server (Server.capture_signals).
    thread = threading.Thread(target=server.run, name="gcs-gate", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit(f"the GCS gate could not listen on {host}:{port} (see the log above)")
        time.sleep(0.02)
    return server
