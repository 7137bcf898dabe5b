"""Dropping a REST connection without a reply, as a lost reply looks on a real network.

ASGI has no way to say "reset the connection": an app that raises or sends nothing gets a 500 from
uvicorn. So a handler returns `DROPPED`, which marks the request's scope, and `droppable` (the
outermost ASGI layer) then aborts the TCP connection through uvicorn's transport with SO_LINGER 0,
which sends an RST: the client sees ConnectionResetError (requests: ConnectionError, which
google-api-core's default retry predicate counts as transient).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_MARK = "vertex_emulator.drop"


class _Dropped(Response):
    """A response that sends nothing: it asks `droppable` to reset the connection instead."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette's router and middleware pass the server's scope dict down unchanged.
        scope[_MARK] = True


DROPPED = _Dropped()


def droppable(app: ASGIApp) -> ASGIApp:
    """`app`, with the connections of the requests it answered `DROPPED` reset."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope.get(_MARK):
            await _reset(send)

    return asgi


async def _reset(send: Send) -> None:
    # uvicorn's `send` is a bound method of its RequestResponseCycle, which holds the connection's
    # transport (uvicorn/protocols/http/{httptools,h11}_impl.py); no ASGI event closes a connection.
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("dropping a connection needs uvicorn's transport; this server has none")
    sock = transport.get_extra_info("socket")
    if sock is not None:  # linger 0: close() sends RST, not FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the protocol's connection_lost run, so uvicorn knows the client is gone and does not answer
    # the request it saw no response to with a 500 (and an error in the log).
    await asyncio.sleep(0)
