"""The ASGI application: route table dispatch, fault injection and the one error adapter.

A fault strikes before the handler (nothing changes) or after it (the change is kept, the reply
lost: an error, a late reply or a reset connection; see `faults`).

Handlers run in Starlette's thread pool, so many clients (deferrable triggers polling at once)
are served concurrently; injected latency sleeps without holding a thread.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp

from vertex_emulator import control, oauth, partial, wire
from vertex_emulator.auth import TokenAuthority
from vertex_emulator.backend import Backend
from vertex_emulator.dropped import DROPPED, droppable
from vertex_emulator.exceptions import EmulatorError, InvalidArgument, NotFound
from vertex_emulator.faults import ConnectionDropped, Faults, serve
from vertex_emulator.responses import error_body
from vertex_emulator.urls import ROUTES

log = logging.getLogger("vertex_emulator")


def create_app(
    backend: Backend,
    fault_seed: int | None = None,
    *,
    faults: Faults | None = None,
    counter: control.RequestCounter | None = None,
    authority: TokenAuthority | None = None,
) -> ASGIApp:
    """The REST app; pass `faults` and `counter` to share them with the gRPC server (`grpc_server`)."""
    wire.load("v1")
    # v1beta1 (google-genai's version) loads in the background: startup is ~1 s faster, and a first
    # v1beta1 request simply waits on the import lock.
    threading.Thread(target=wire.load, args=("v1beta1",), daemon=True).start()
    faults = faults if faults is not None else Faults(fault_seed)
    counter = counter if counter is not None else control.RequestCounter()
    authority = authority if authority is not None else TokenAuthority(backend.store)
    plane = control.ControlPlane(backend, faults, counter, authority)

    async def dispatch(request: Request) -> Response:
        method, path = request.method, request.url.path
        try:
            if oauth.serves(path):  # /token and IAM Credentials: other Google services, own rules
                return await oauth.handle(request, authority)
            if not path.startswith(control.PREFIX):  # the control plane never needs a token
                principal = authority.verify(request.headers.get("authorization"))
                authority.record("rest", method, path, principal)
            body = await _json_body(request)
            if path.startswith(control.PREFIX):
                return JSONResponse(await run_in_threadpool(plane.handle, method, path, body))
            return await _api_call(request, method, path, body)
        except ConnectionDropped:
            return DROPPED
        except EmulatorError as error:
            status, envelope = error_body(error)
            return JSONResponse(envelope, status_code=status, headers=error.headers)
        except Exception as exc:  # the envelope, not a stack trace, is what clients must see
            log.exception("internal error serving %s %s", method, path)
            status, envelope = error_body(EmulatorError(f"emulator internal error: {exc!r}"))
            return JSONResponse(envelope, status_code=status)

    async def _api_call(request: Request, method: str, path: str, body: Any) -> Response:
        decision = faults.decide(method, path)
        return await serve(decision, lambda: _route(request, method, path, body), counter.add)

    async def _route(request: Request, method: str, path: str, body: Any) -> Response:
        for route in ROUTES:
            matched = route.match(method, path)
            if matched is None:
                continue
            prefix, path_vars = matched
            version = "v1" if prefix == "ui" else prefix
            counter.add(f"{method} /{prefix}/{route.template}")
            query: dict[str, list[str]] = {}
            for key, value in request.query_params.multi_items():
                query.setdefault(key, []).append(value)
            int_enums = "enum-encoding=int" in request.url.query.replace("%3D", "=")
            req = wire.parse_request(version, route.request, path_vars, query, route.body, body)
            reply = await run_in_threadpool(route.handler, backend, req)
            response = wire.emit(version, reply.type_name, reply.body, int_enums)
            selector = request.headers.get("x-goog-fieldmask") or request.query_params.get("fields")
            if selector:
                response = partial.apply(response, partial.parse(selector))
            return JSONResponse(response)
        raise NotFound(f"no Vertex AI method {method} {path} (see vertex_emulator/urls.py)")

    return droppable(
        Starlette(
            routes=[
                StarletteRoute("/{path:path}", dispatch, methods=["GET", "POST", "DELETE", "PATCH", "PUT"])
            ]
        )
    )


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"Invalid JSON payload received. {exc.msg} at line {exc.lineno}") from exc
