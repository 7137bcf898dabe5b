"""The GCS gate: an authenticating reverse proxy in front of the GCS emulator (gcp-storage-emulator checks
no credentials), served by the Vertex emulator process on a port of its own (`--gcs-gate-port`).

In the Vertex process because it must accept exactly the tokens that process issues: it shares the one
`TokenAuthority` (no token-introspection hop between processes) and its calls land in the same
control-plane call log (surface "gcs"). On a port of its own because STORAGE_EMULATOR_HOST is a root URL
whose `/storage/v1`, `/upload/storage/v1` and `/download/storage/v1` paths must reach the GCS emulator as
they are. Everything but the credential check is forwarded unchanged and streamed both ways: any method,
headers, query, bodies (resumable and multipart uploads, ranged downloads).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from vertex_emulator.auth import STORAGE_SCOPES, TokenAuthority
from vertex_emulator.exceptions import PermissionDenied, Unauthenticated

log = logging.getLogger("vertex_emulator.gcs_gate")

#: RFC 9110 section 7.6.1 hop-by-hop headers: a proxy never forwards them.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade"}
)
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_gate(upstream: str, authority: TokenAuthority) -> Starlette:
    """The gate's ASGI app forwarding to `upstream` (the GCS emulator's root URL)."""
    upstream = upstream.rstrip("/")
    clients: dict[str, httpx.AsyncClient] = {}  # one per event loop: the gate runs on its own

    async def proxy(request: Request) -> Response:
        try:
            principal = authority.verify(request.headers.get("authorization"), STORAGE_SCOPES)
        except (Unauthenticated, PermissionDenied) as error:
            return _gcs_error(error)
        authority.record("gcs", request.method, request.url.path, principal)
        client = clients.get("client")
        if client is None:
            client = clients["client"] = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0))
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        forward = client.build_request(
            request.method,
            url,
            # Host stays the client's: the GCS emulator builds mediaLink and the resumable-upload
            # Location from it (gcp_storage_emulator/server.py, Request.__init__), so they point here.
            headers=[(k, v) for k, v in request.headers.items() if k not in _HOP_BY_HOP | {"authorization"}],
            content=_body(request) if has_body else None,
        )
        try:
            answer = await client.send(forward, stream=True)
        except httpx.HTTPError as exc:
            log.warning("GCS gate: upstream %s unreachable for %s %s: %r", upstream, request.method, url, exc)
            return JSONResponse(
                {"error": {"code": 502, "message": f"GCS gate: upstream {upstream} unreachable: {exc!r}"}},
                status_code=502,
            )
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

    return Starlette(routes=[Route("/{path:path}", proxy, methods=_METHODS)])


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _relocate(key: str, value: str, upstream: str, gate_root: str) -> str:
    """A Location pointing at the upstream points at the gate instead (for upstreams ignoring Host)."""
    if key.lower() == "location" and value.startswith(upstream):
        return gate_root + value[len(upstream) :]
    return value


def _gcs_error(error: Unauthenticated | PermissionDenied) -> JSONResponse:
    """The JSON API's error shape (`errors[]` with reason and location), Google's words in `message`."""
    reason = "required" if error.reason == "CREDENTIALS_MISSING" else "authError"
    if isinstance(error, PermissionDenied):
        reason = "insufficientPermissions"
    item = {"message": error.message, "domain": "global", "reason": reason}
    if isinstance(error, Unauthenticated):
        item |= {"locationType": "header", "location": "Authorization"}
    body: dict[str, Any] = {"error": {"code": error.http_status, "message": error.message, "errors": [item]}}
    return JSONResponse(body, status_code=error.http_status, headers=error.headers)


def serve_in_thread(app: Starlette, host: str, port: int, log_level: str, timeout: float = 30.0) -> Any:
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
