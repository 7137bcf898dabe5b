"""An HTTP CONNECT proxy that sends `*.googleapis.com:443` to the emulator's TLS gRPC port, and nothing else.

gRPC clients that hard-code Google's endpoints (the Airflow Google provider's hooks build
`{region}-aiplatform.googleapis.com:443`) reach the emulator unchanged when their environment names
this proxy: gRPC core tunnels through the HTTP CONNECT proxy in `grpc_proxy` (else `https_proxy`,
`http_proxy`) and trusts the roots in `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` (grpc/grpc,
doc/environment_variables.md). TLS stays end to end between client and emulator, so the
certificate must name `*.googleapis.com`. Any other host is refused (403), so nothing leaves the
machine; the proxy listens and connects on loopback only.

    python -m vertex_emulator.connect_proxy --port 9026 --upstream 127.0.0.1:9025
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass

#: Hosts tunnelled by default: every Google API endpoint, on the HTTPS port only.
GOOGLE_APIS = ("*.googleapis.com:443",)
#: Limits: a request head is a line and a few headers; a client that sends none in time is dropped.
MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_SECONDS = 10.0
MAX_TUNNELS = 256
_CHUNK = 65536


class ProxyRefusal(Exception):
    """A request the proxy answers with an HTTP error instead of a tunnel."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """`HOST:PORT` of a loopback address (the emulator); ValueError naming what is wrong."""
        host, _, port = text.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ValueError(f"upstream {text!r}: expected HOST:PORT")
        _require_loopback(host, f"upstream {text!r}")
        return cls(host, int(port))


def _require_loopback(host: str, what: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError as exc:
        raise ValueError(f"{what}: {host!r} is not a loopback address") from exc
    if not loopback:
        raise ValueError(f"{what}: {host!r} is not a loopback address (nothing may leave the machine)")


def parse_connect(head: bytes) -> str:
    """The `host:port` authority of a CONNECT request head; ProxyRefusal for anything else."""
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ProxyRefusal("400 Bad Request", f"not an HTTP/1.x request line: {request_line!r}")
    method, authority, _ = parts
    if method != "CONNECT":
        raise ProxyRefusal("405 Method Not Allowed", f"{method}: this proxy only tunnels (CONNECT)")
    return authority.lower()


class ConnectProxy:
    """Tunnels CONNECTs to an allowed `host:port` (fnmatch patterns) to one upstream address."""

    def __init__(self, upstream: Upstream, allowed: Sequence[str] = GOOGLE_APIS) -> None:
        self.upstream = upstream
        self.allowed = tuple(pattern.lower() for pattern in allowed)
        self._slots = asyncio.Semaphore(MAX_TUNNELS)

    def allows(self, authority: str) -> bool:
        return any(fnmatch.fnmatchcase(authority, pattern) for pattern in self.allowed)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            authority = await self._authority(reader)
            async with self._slots:
                await self._tunnel(authority, reader, writer)
        except ProxyRefusal as refusal:
            _log(f"refused: {refusal}")
            body = f"{refusal}\n".encode()
            writer.write(
                f"HTTP/1.1 {refusal.status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away (a reset or a half-open socket)
        finally:
            with contextlib.suppress(OSError):
                writer.close()
                await writer.wait_closed()

    async def _authority(self, reader: asyncio.StreamReader) -> str:
        too_large = ProxyRefusal(
            "431 Request Header Fields Too Large", f"request head over {MAX_HEAD_BYTES} bytes"
        )
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
        except asyncio.LimitOverrunError as exc:  # beyond the stream's own buffer limit
            raise too_large from exc
        except TimeoutError as exc:
            raise ProxyRefusal("408 Request Timeout", "no request head in time") from exc
        if len(head) > MAX_HEAD_BYTES:
            raise too_large
        authority = parse_connect(head)
        if not self.allows(authority):
            raise ProxyRefusal(
                "403 Forbidden", f"CONNECT {authority}: only {', '.join(self.allowed)} are tunnelled"
            )
        return authority

    async def _tunnel(
        self, authority: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)
        except OSError as exc:
            target = f"{self.upstream.host}:{self.upstream.port}"
            raise ProxyRefusal("502 Bad Gateway", f"CONNECT {authority}: upstream {target}: {exc}") from exc
        _log(f"tunnel {authority} -> {self.upstream.host}:{self.upstream.port}")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close, so the other direction can finish."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:  # the peer reset or already shut its side down
        writer.close()


def _log(line: str) -> None:
    print(line, flush=True)  # the launcher keeps stdout as the proxy's log


async def serve(port: int, proxy: ConnectProxy, host: str = "127.0.0.1") -> None:
    _require_loopback(host, "--host")
    server = await asyncio.start_server(proxy.handle, host, port)
    _log(
        f"CONNECT proxy on http://{host}:{port}: {', '.join(proxy.allowed)} -> "
        f"{proxy.upstream.host}:{proxy.upstream.port}"
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vertex_emulator.connect_proxy", description=__doc__)
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback interface to listen on (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument(
        "--upstream", required=True, help="HOST:PORT (loopback) of the emulator's TLS gRPC port"
    )
    parser.add_argument(
        "--allow",
        action="append",
        help="host:port pattern (fnmatch) to tunnel; repeatable (default: *.googleapis.com:443)",
    )
    args = parser.parse_args(argv)
    try:
        proxy = ConnectProxy(Upstream.parse(args.upstream), args.allow or GOOGLE_APIS)
        asyncio.run(serve(args.port, proxy, args.host))
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)  # "address already in use"
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
