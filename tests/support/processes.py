"""Starting and stopping the real processes tests need (emulators, Airflow), on free local ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vertex_emulator.launcher import exited, gcs_emulator_command, wait_http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A background process with its output in a log file, stopped on `stop()`."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_gcs_emulator(log_dir: Path, port: int | None = None) -> tuple[Service, str]:
    port = port or free_port()
    service = Service("gcs-emulator", gcs_emulator_command(port, in_memory=True), log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/storage/v1/b", 30, exited(service.process))
    return service, url


class VertexEmulatorProcess:
    """A `python -m vertex_emulator` process; `restart()` keeps its port and state directory."""

    def __init__(
        self,
        log_dir: Path,
        gcs_url: str | None,
        state_dir: Path | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        name: str = "vertex-emulator",
    ):
        self.log_dir = log_dir
        self.gcs_url = gcs_url
        self.state_dir = state_dir
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.name = name
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = self._start()

    def _start(self) -> Service:
        argv = [sys.executable, "-m", "vertex_emulator", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.gcs_url:
            argv += ["--gcs-endpoint", self.gcs_url]
        if self.state_dir is not None:
            argv += ["--state-dir", str(self.state_dir)]
        service = Service(self.name, argv + self.extra_args, self.log_dir)
        try:
            wait_http(f"{self.url}/_emulator/health", 60, exited(service.process))
        except Exception:
            service.stop()
            raise RuntimeError(f"{self.name} did not start:\n{service.log_tail()}") from None
        return service

    def stop(self) -> None:
        self.service.stop()

    def restart(self) -> None:
        self.service.stop()
        self.service = self._start()


def start_vertex_emulator(
    log_dir: Path, gcs_url: str | None, state_dir: Path | None = None, port: int | None = None
) -> tuple[Service, str]:
    emulator = VertexEmulatorProcess(log_dir, gcs_url, state_dir, port)
    return emulator.service, emulator.url


def emulator_control(
    url: str, route: str, body: dict[str, Any] | None = None, method: str | None = None
) -> Any:
    """Call the Vertex emulator's control plane (`/_emulator/<route>`); returns the JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}/_emulator/{route}",
        data=data,
        method=method or ("POST" if data is not None else "GET"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
