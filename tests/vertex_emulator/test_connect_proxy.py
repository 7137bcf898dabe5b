"""The CONNECT proxy: tunnels `*.googleapis.com:443` to its one upstream, refuses everything else."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

from vertex_emulator.connect_proxy import ConnectProxy, Upstream, parse_connect

Scenario = Callable[[int, list[bytes]], Awaitable[None]]


def run_with_proxy(scenario: Scenario, allowed: tuple[str, ...] | None = None) -> list[bytes]:
    """Run `scenario(proxy_port, upstream_received)` against a proxy whose upstream echoes in upper case."""
    received: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            received.append(data)
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    async def main() -> None:
        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]
        proxy = ConnectProxy(Upstream("127.0.0.1", port), *([allowed] if allowed else []))
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        async with upstream, server:
            await asyncio.wait_for(scenario(server.sockets[0].getsockname()[1], received), 10)

    asyncio.run(main())
    return received


async def exchange(port: int, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    return reader, writer, await reader.readuntil(b"\r\n\r\n")


def test_a_googleapis_connect_is_tunnelled_both_ways() -> None:
    async def scenario(port: int, received: list[bytes]) -> None:
        head = b"CONNECT us-central1-aiplatform.googleapis.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"
        reader, writer, answer = await exchange(port, head)
        assert answer == b"HTTP/1.1 200 Connection established\r\n\r\n"
        writer.write(b"tls bytes")
        await writer.drain()
        assert await reader.readexactly(9) == b"TLS BYTES"
        writer.close()

    assert b"".join(run_with_proxy(scenario)) == b"tls bytes"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", b"403 Forbidden"),
        (b"CONNECT aiplatform.googleapis.com:80 HTTP/1.1\r\n\r\n", b"403 Forbidden"),
        (b"CONNECT googleapis.com.evil.test:443 HTTP/1.1\r\n\r\n", b"403 Forbidden"),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", b"405 Method Not Allowed"),
        (b"hello\r\n\r\n", b"400 Bad Request"),
        (b"CONNECT a.googleapis.com:443 HTTP/1.1\r\nX: " + b"y" * 9000 + b"\r\n\r\n", b"431 "),
    ],
)
def test_anything_else_is_refused_without_reaching_upstream(head: bytes, status: bytes) -> None:
    async def scenario(port: int, received: list[bytes]) -> None:
        _, writer, answer = await exchange(port, head)
        assert answer.startswith(b"HTTP/1.1 " + status), answer
        writer.close()

    assert run_with_proxy(scenario) == []


def test_allowed_patterns_replace_the_default() -> None:
    async def scenario(port: int, received: list[bytes]) -> None:
        _, writer, answer = await exchange(port, b"CONNECT aiplatform.googleapis.com:443 HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403")
        writer.close()
        _, writer, answer = await exchange(port, b"CONNECT storage.example:443 HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        writer.close()

    run_with_proxy(scenario, allowed=("storage.example:443",))


def test_an_unreachable_upstream_is_a_bad_gateway() -> None:
    async def main() -> bytes:
        closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = closed.sockets[0].getsockname()[1]
        closed.close()
        await closed.wait_closed()
        proxy = ConnectProxy(Upstream("127.0.0.1", port))
        async with await asyncio.start_server(proxy.handle, "127.0.0.1", 0) as server:
            _, writer, answer = await exchange(
                server.sockets[0].getsockname()[1], b"CONNECT a.googleapis.com:443 HTTP/1.1\r\n\r\n"
            )
            writer.close()
            return answer

    assert asyncio.run(main()).startswith(b"HTTP/1.1 502 Bad Gateway")


def test_parse_connect_lowercases_the_authority() -> None:
    assert parse_connect(b"CONNECT EU-AIPlatform.GoogleAPIs.com:443 HTTP/1.1\r\n\r\n") == (
        "eu-aiplatform.googleapis.com:443"
    )


@pytest.mark.parametrize("upstream", ["10.0.0.1:9000", "example.com:443", "127.0.0.1", ":9000"])
def test_only_a_loopback_upstream_is_accepted(upstream: str) -> None:
    with pytest.raises(ValueError, match="upstream"):
        Upstream.parse(upstream)
    result = subprocess.run(
        [sys.executable, "-m", "vertex_emulator.connect_proxy", "--port", "0", "--upstream", upstream],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "upstream" in result.stderr
