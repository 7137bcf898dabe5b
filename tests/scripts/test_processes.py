"""The one launcher (scripts/processes.py): recognising our pids, stopping, state files, the port race."""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.processes import (
    PORT_TAKEN,
    Process,
    ServerDidNotStart,
    free_port,
    load_state,
    save_state,
    serve,
    spawn,
)

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    "time.sleep(60)"
)


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def wait_for_log(process: Process, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in Path(process.log).read_text():
        assert process.running(), process.log_tail()
        assert time.monotonic() < deadline, f"{text!r} not in {process.log} within {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_recorded_pid_is_ours_only_with_its_start_time_and_survives_the_state_file(tmp_path: Path) -> None:
    process = spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
    try:
        save_state(tmp_path / "state.json", {"sleeper": process.record()})
        recorded = Process.from_record(load_state(tmp_path / "state.json")["sleeper"])  # type: ignore[index]
        assert recorded.running()
        recycled = Process(process.name, process.pid, process.start_ticks + 1, process.log)
        assert not recycled.running()
        recycled.stop()  # not ours: left alone
        assert process.running()
    finally:
        process.stop()
    assert not process.running()
    assert not recorded.running()
    assert load_state(tmp_path / "missing.json") is None


def test_stop_kills_what_ignores_sigterm_after_the_timeout(tmp_path: Path) -> None:
    process = spawn("stubborn", [sys.executable, "-c", IGNORES_TERM], tmp_path)
    wait_for_log(process, "ready")
    process.stop(timeout=0.5)
    assert not process.running()
    assert process.gone() is not None
    assert f"with {-signal.SIGKILL}" in (process.gone() or "")


def test_serve_starts_again_on_a_new_port_when_the_free_one_was_taken(tmp_path: Path, listener: int) -> None:
    ports = iter([listener, free_port()])
    server = serve("http", http_server, "/", tmp_path, cwd=tmp_path, pick_port=lambda: next(ports))
    try:
        assert server.port != listener
        assert PORT_TAKEN in Path(server.process.log).read_text().lower()  # the first attempt lost the race
        server.restart()
        assert server.process.running()
    finally:
        server.stop()


def test_serve_on_a_taken_fixed_port_fails_naming_the_server_and_its_log(
    tmp_path: Path, listener: int
) -> None:
    with pytest.raises(ServerDidNotStart) as failed:
        serve("http", http_server, "/", tmp_path, port=listener, cwd=tmp_path)
    assert failed.value.port_taken
    assert "http did not start" in str(failed.value)
    assert str(tmp_path / "http.log") in str(failed.value)
