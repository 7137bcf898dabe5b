"""The emulator's gRPC face: Vertex AI's gRPC services, served from the REST route table.

Served, unary-unary: google.cloud.aiplatform.{v1,v1beta1}.PipelineService, GenAiTuningService,
ModelService, EndpointService and PredictionService, and google.longrunning.Operations
(GetOperation, ListOperations, WaitOperation: the operations REST serves). Each RPC is a group of
`urls.ROUTES`: the route's section names the service and its request type the method
(CreatePipelineJobRequest -> CreatePipelineJob); routes sharing a request type (Predict on
endpoints and on publisher models) are told apart by which template the request's fields fit.

A call becomes the REST call it stands for: the request's path fields fill the route template, so
fault rules and the request counter see `POST /v1/projects/p/locations/l/pipelineJobs`; the request
proto becomes the camelCase dict `wire.parse_request` makes; the same handler runs on the same
backend (in a thread, as Starlette runs it); the reply goes out as the same response type, cut
down by the `x-goog-fieldmask` metadata. Errors become the gRPC code of their status, with a
google.rpc.Status in `grpc-status-details-bin` (see `error_details`). A fault after the handler
keeps its change and loses the reply; a dropped connection is UNAVAILABLE, as a channel reports
a reset.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_status import rpc_status

from vertex_emulator import error_details, partial, wire
from vertex_emulator.backend import Backend
from vertex_emulator.control import RequestCounter
from vertex_emulator.exceptions import EmulatorError, InvalidArgument
from vertex_emulator.faults import ConnectionDropped, Faults, serve
from vertex_emulator.routing import Route
from vertex_emulator.tls import TlsFiles
from vertex_emulator.urls import ROUTES

log = logging.getLogger("vertex_emulator.grpc")

VERSIONS = ("v1", "v1beta1")
#: Google's system parameter for partial responses, sent as gRPC metadata.
FIELD_MASK = "x-goog-fieldmask"
#: Threads for the (synchronous) backend: as many as Starlette's pool gives REST. Injected latency
#: is awaited on the event loop and holds none.
WORKERS = 40


class BadResourceName(InvalidArgument):
    """A request whose resource name does not fit its method's path template."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field  # error_details reports it in a google.rpc.BadRequest


@dataclass(frozen=True)
class Rpc:
    """One gRPC method: its service, name, API version and the routes its requests stand for."""

    version: str
    service: str
    name: str
    routes: tuple[Route, ...]

    @property
    def full_name(self) -> str:
        """As Google's ErrorInfo names it: google.cloud.aiplatform.v1.PipelineService.GetPipelineJob."""
        return f"{self.service}.{self.name}"

    @property
    def request_type(self) -> str:
        return self.routes[0].request


@dataclass(frozen=True)
class Target:
    """The REST call a gRPC request stands for (route None: no template fits the request)."""

    route: Route | None
    method: str
    path: str
    resource: str


def rpcs(versions: Sequence[str] = VERSIONS) -> list[Rpc]:
    """Every RPC the route table implies; a version-less service (Operations) under the first version."""
    grouped: dict[tuple[str, str], tuple[str, list[Route]]] = {}
    for version in versions:
        for route in ROUTES:
            service = route.grpc_service(version)
            if not route.service or (service == route.service and version != versions[0]):
                continue
            grouped.setdefault((service, route.rpc), (version, []))[1].append(route)
    return [
        Rpc(version, service, name, tuple(routes)) for (service, name), (version, routes) in grouped.items()
    ]


def _field(message: Message, path: str) -> str:
    value: Any = message
    for part in path.split("."):  # "endpoint.name": a field of a field
        value = getattr(value, part)
    return str(value)


def locate(rpc: Rpc, request: Message) -> Target:
    """The route whose template the request's path fields fit, and the REST path they make (the first
    route's, with route None, when none fits: faults still see a path, then the call is refused)."""
    unmatched: Target | None = None
    for route in rpc.routes:
        values = {variable: _field(request, variable) for variable in route.variables}
        path, resource = f"/{rpc.version}/{route.expand(values)}", next(iter(values.values()), "")
        if route.match(route.method, path) is not None:
            return Target(route, route.method, path, resource)
        unmatched = unmatched or Target(None, route.method, path, resource)
    assert unmatched is not None  # every Rpc has at least one route
    return unmatched


class Dispatcher:
    """Runs one gRPC call the way `app` runs its REST twin: auth, faults, count, handler, reply."""

    def __init__(
        self,
        backend: Backend,
        faults: Faults,
        counter: RequestCounter,
        authority: Any | None = None,
        workers: int = WORKERS,
    ) -> None:
        self.backend = backend
        self.faults = faults
        self.counter = counter
        self.authority = authority  # `verify(authorization) -> principal`, raising an EmulatorError
        self.executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="vertex-grpc")

    async def call(self, rpc: Rpc, request: Message, context: grpc.aio.ServicerContext) -> Message:
        metadata = {key: value for key, value in (context.invocation_metadata() or ())}
        resource = ""
        try:
            target = locate(rpc, request)
            resource = target.resource
            if self.authority is not None:  # before faults, as REST checks the token first
                principal = self.authority.verify(metadata.get("authorization"))
                if hasattr(self.authority, "record"):  # auth's log of who called what
                    self.authority.record("grpc", target.method, target.path, principal)
            return await self._serve(rpc, target, request, metadata.get(FIELD_MASK))
        except ConnectionDropped as dropped:
            # What a client's channel reports for a connection reset: UNAVAILABLE, no details.
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(dropped))
            raise AssertionError("grpc.aio abort returned instead of raising") from dropped
        except EmulatorError as error:
            status = error_details.status_of(error, rpc.full_name, resource)
        except Exception as exc:  # a status, not a dropped stream, is what clients must see
            log.exception("internal error serving %s", rpc.full_name)
            status = error_details.status_of(
                EmulatorError(f"emulator internal error: {exc!r}"), rpc.full_name
            )
        await context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("grpc.aio abort_with_status returned instead of raising")

    async def _serve(self, rpc: Rpc, target: Target, request: Message, field_mask: str | None) -> Message:
        decision = self.faults.decide(target.method, target.path)
        return await serve(decision, lambda: self._handle(rpc, target, request, field_mask), self.counter.add)

    async def _handle(self, rpc: Rpc, target: Target, request: Message, field_mask: str | None) -> Message:
        route = target.route
        if route is None:
            variable = rpc.routes[0].variables[0]
            raise BadResourceName(
                f"{rpc.full_name}: {variable} {target.resource!r} is not a valid resource name "
                f"(expected {' or '.join(r.template for r in rpc.routes)})",
                variable,
            )
        self.counter.add(f"{route.method} /{rpc.version}/{route.template}")
        kept = partial.parse(field_mask) if field_mask else None  # a bad mask must refuse, not half-run
        req = json_format.MessageToDict(request)  # the options wire.parse_request uses
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self.executor, route.handler, self.backend, req)
        body = wire.emit(rpc.version, reply.type_name, reply.body)
        if kept is not None:
            body = partial.apply(body, kept)
        response = wire.message_class(rpc.version, reply.type_name)()
        json_format.ParseDict(body, response)
        return response


def _method_handler(dispatcher: Dispatcher, rpc: Rpc) -> grpc.RpcMethodHandler:
    async def behaviour(request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await dispatcher.call(rpc, request, context)

    def deserialize(data: bytes) -> Message:
        # Looked up per call: v1beta1's types load on first use, keeping startup cheap.
        return wire.message_class(rpc.version, rpc.request_type).FromString(data)

    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=deserialize, response_serializer=_serialize
    )


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def create_server(
    backend: Backend,
    faults: Faults,
    counter: RequestCounter,
    *,
    authority: Any | None = None,
    versions: Sequence[str] = VERSIONS,
) -> grpc.aio.Server:
    """A grpc.aio server for the emulator (call inside the event loop it will run on; then `listen`)."""
    dispatcher = Dispatcher(backend, faults, counter, authority)
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for rpc in rpcs(versions):
        by_service.setdefault(rpc.service, {})[rpc.name] = _method_handler(dispatcher, rpc)
    # No SO_REUSEPORT (grpcio turns it on by default): a taken port must fail the start, not be shared.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(service, handlers) for service, handlers in by_service.items()]
    )
    return server


def listen(server: grpc.aio.Server, host: str, port: int, tls: TlsFiles | None = None) -> str:
    """Bind `host:port`, plain-text or TLS; returns the target clients dial. OSError when it cannot."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is None:
            server.add_insecure_port(address)
        else:
            cert, key = tls.read()
            server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    except RuntimeError as exc:  # grpcio raises RuntimeError("Failed to bind ...")
        raise OSError(f"cannot listen for gRPC on {address}: {exc}") from exc
    return address
