"""Background processes of the local tooling: start one with its log in its own session, wait until it
answers, tell whether a recorded pid is still ours, stop it, and record it in a JSON state file.

The one launcher of `make emulators`, `make up`, `make demo`, the test fixtures and the benchmarks.
Linux only: a process is recognised by its start time in /proc/<pid>/stat.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How a server that lost its port says so: uvicorn ("address already in use") and Python's socket
#: servers ("[Errno 98] Address already in use"), compared in lower case.
PORT_TAKEN = "address already in use"


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now (the kernel's pick for port 0).

    Only free until someone binds it: between our close and the child's bind another process may take
    it. `serve` narrows that race for the port it picks by starting again on a new one when its child
    reports PORT_TAKEN (the other remedy, a child binding port 0 and reporting its port, needs every
    server to support it; the GCS emulator and Airflow do not). Other ports handed to a child (Airflow's
    api-server and log servers, a second listening port) are tried once.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float, gone: Callable[[], str | None] | None = None) -> None:
    """Wait until `url` answers any HTTP status (a 404 still proves the server is up).

    `gone()` returns why the serving process is no longer running (or None while it is), so a crash
    fails at once instead of after `timeout`. Raises RuntimeError then, TimeoutError on time-out.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if gone is not None and (reason := gone()):
            raise RuntimeError(f"{reason} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last_error = exc
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s") from last_error


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None without that pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the name, in parentheses, may itself hold spaces


def _start_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[19]) if fields else -1


@dataclass
class Process:
    """A background process we started; it leads its own session, so its pid names its process group."""

    name: str
    pid: int
    start_ticks: int  # /proc/<pid>/stat start time: a recycled pid never matches it
    log: str
    # Only in the interpreter that started it: lets `running()` reap it, so an exit never shows as a zombie.
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """The JSON form kept in state files (`from_record` reads it back)."""
        return {"name": self.name, "pid": self.pid, "start_ticks": self.start_ticks, "log": self.log}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Process:
        """A recorded process; keys beyond `record()`'s (a port, a URL) are the caller's and ignored.

        A record without a start time (written before there was one) can never be recognised as ours.
        """
        ticks = int(record.get("start_ticks", -1))
        return cls(str(record.get("name", "?")), int(record["pid"]), ticks, str(record.get("log", "")))

    def running(self) -> bool:
        """Whether the pid still runs the process we started (not a newer one given the same pid)."""
        fields = _stat(self.pid)
        if fields is None or int(fields[19]) != self.start_ticks:
            return False
        # The leader shows "Z" from its exit until it is reaped, also while its other threads still run:
        # only reaping it (possible for our own child) proves the whole process is gone.
        return fields[0] != "Z" or not self._reaped()

    def _reaped(self) -> bool:
        if self._child is not None:
            return self._child.poll() is not None  # also keeps its exit status for `gone()`
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child (`make up`, then `make down`): its parent reaps it
            return True
        return pid != 0

    def gone(self) -> str | None:
        """Why it no longer runs, or None while it does: the `gone` check of `wait_http`."""
        if self.running():
            return None
        code = self._child.returncode if self._child is not None else None
        status = f" with {code}" if code is not None else ""
        return f"{self.name} (pid {self.pid}) exited{status} (log: {self.log})"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM its process group, then SIGKILL it if the leader still runs after `timeout`.

        Does nothing to a pid that is no longer ours.
        """
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if not self.running():
                return
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)

    def log_tail(self, lines: int = 40, since: int = 0) -> str:
        """The last `lines` lines of its log written after byte `since`."""
        with open(self.log, "rb") as log:
            log.seek(since)
            return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])


def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start `argv` in its own session, output appended to `log_dir`/`name`.log; `env` is the whole
    environment (None: this process's)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return Process(name, child.pid, _start_ticks(child.pid), str(log), child)


@dataclass
class Server:
    """A background process answering HTTP on 127.0.0.1:`port`, started by `serve`.

    `restart()` stops it and starts the same command on the same port (a restart test needs the
    address its clients already hold).
    """

    name: str
    port: int
    process: Process
    command: Callable[[int], Sequence[str]] = field(repr=False)
    ready_path: str
    log_dir: Path
    env: Mapping[str, str] | None = field(default=None, repr=False)
    cwd: Path | None = None
    timeout: float = 60.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> None:
        self.process.stop()
        argv = self.command(self.port)
        ready = self.url + self.ready_path
        self.process = _start_answering(
            self.name, argv, ready, self.log_dir, self.env, self.cwd, self.timeout
        )


class ServerDidNotStart(RuntimeError):
    """A server exited or did not answer before its deadline; the message carries its log's tail."""

    def __init__(self, message: str, port_taken: bool = False):
        super().__init__(message)
        self.port_taken = port_taken


def _start_answering(
    name: str,
    argv: Sequence[str],
    ready_url: str,
    log_dir: Path,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    timeout: float,
) -> Process:
    log = log_dir / f"{name}.log"
    since = log.stat().st_size if log.exists() else 0
    process = spawn(name, argv, log_dir, env, cwd)
    try:
        wait_http(ready_url, timeout, process.gone)
    except (RuntimeError, TimeoutError) as exc:
        process.stop()
        tail = process.log_tail(since=since)
        raise ServerDidNotStart(
            f"{name} did not start: {exc}\n--- {process.log} ---\n{tail}", PORT_TAKEN in tail.lower()
        ) from exc
    return process


def serve(
    name: str,
    command: Callable[[int], Sequence[str]],
    ready_path: str,
    log_dir: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
    pick_port: Callable[[], int] = free_port,
    attempts: int = 3,
) -> Server:
    """Start `command(port)` and wait until `ready_path` answers; without a `port`, on a free one.

    A child that lost its free port to another process (see `free_port`) is started again on a new port,
    up to `attempts` times; a fixed `port` is tried once. Raises ServerDidNotStart.
    """
    attempt = 1
    while True:
        chosen = port or pick_port()
        try:
            process = _start_answering(
                name, command(chosen), f"http://127.0.0.1:{chosen}{ready_path}", log_dir, env, cwd, timeout
            )
        except ServerDidNotStart as exc:
            if port is not None or not exc.port_taken or attempt == attempts:
                raise
            attempt += 1
            continue
        return Server(name, chosen, process, command, ready_path, log_dir, env, cwd, timeout)


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write a state file (processes in it as `Process.record()`); replaced whole, never half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(path)


def load_state(path: Path) -> dict[str, Any] | None:
    """A state file's content, or None when there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return dict(json.loads(text))
    except ValueError as exc:
        raise RuntimeError(
            f"state file {path} is not JSON: remove it once its processes are stopped"
        ) from exc
