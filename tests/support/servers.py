"""Start a server that listens on more than one free port, picking all of them again when one was taken.

`scripts.processes.serve` restarts a child on a new HTTP port when it lost that port to another
process, but ports given on the command line (the emulator's gRPC port, its GCS gate) are its
caller's: a child that cannot bind one of them fails the same way on every retry. This picks them
anew for each attempt.
"""

from __future__ import annotations

from collections.abc import Callable

from scripts.processes import PORT_TAKEN, Server, ServerDidNotStart, free_port

#: What the Vertex emulator says when its gRPC port is taken (vertex_emulator/grpc_server.py `listen`;
#: grpcio's own message is "Failed to bind to address ...", without the errno text).
GRPC_PORT_TAKEN = "cannot listen for grpc"


def lost_a_port(error: ServerDidNotStart) -> bool:
    """Whether a server failed to start because a port it was given was taken meanwhile."""
    text = str(error).lower()
    return error.port_taken or PORT_TAKEN in text or GRPC_PORT_TAKEN in text


def start_on_free_ports(
    start: Callable[[list[int]], Server], count: int, attempts: int = 3
) -> tuple[Server, list[int]]:
    """`start(ports)` with `count` free ports; on a lost port, again with new ones (at most `attempts`)."""
    for attempt in range(1, attempts + 1):
        ports: list[int] = []
        while len(ports) < count:  # the kernel may hand out a port just closed again
            if (port := free_port()) not in ports:
                ports.append(port)
        try:
            return start(ports), ports
        except ServerDidNotStart as exc:
            if attempt == attempts or not lost_a_port(exc):
                raise
    raise AssertionError("unreachable")  # the loop returns or raises
