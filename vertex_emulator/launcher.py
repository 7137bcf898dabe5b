"""`make emulators` / `make emulators-stop`: the GCS and Vertex AI emulators as background processes.

`start` launches both (GCS keeps its objects under RUN_DIR/gcs, Vertex its state under
RUN_DIR/vertex-state), waits until they answer and records pids, ports and URLs in
RUN_DIR/emulators.json; `stop` ends exactly the processes recorded there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_FILE = "emulators.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _same_process(entry: dict[str, Any]) -> bool:
    """The recorded pid still runs the command we started (pids get reused)."""
    if not _alive(entry["pid"]):
        return False
    cmdline = Path(f"/proc/{entry['pid']}/cmdline")
    if not cmdline.exists():
        return True
    return entry["module"] in cmdline.read_bytes().decode(errors="replace")


def wait_http(url: str, timeout: float, gone: Callable[[], str | None] | None = None) -> None:
    """Wait until `url` answers any HTTP status (a 404 still proves the server is up).

    `gone()` returns why the serving process is no longer running (or None while it is), so a crash
    fails at once instead of after `timeout`. Raises RuntimeError then, TimeoutError on time-out.
    Shared by the launcher, `make up`/`make demo` (scripts/) and the test fixtures.
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


def exited(process: subprocess.Popen[bytes]) -> Callable[[], str | None]:
    """A `gone` check for `wait_http` on a child process."""
    return lambda: None if process.poll() is None else f"{process.args!r} exited with {process.returncode}"


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    try:
        wait_http(url, timeout, exited(process))
    except (RuntimeError, TimeoutError) as exc:
        raise SystemExit(f"{exc}; see {log}") from exc


def gcs_emulator_command(port: int, *, in_memory: bool = False) -> list[str]:
    """The command line of gcp-storage-emulator on 127.0.0.1:`port` (in memory: nothing on disk)."""
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
    return [*command, "--port", str(port), *(["--in-memory"] if in_memory else []), "-q"]


def _spawn(
    name: str, argv: list[str], run_dir: Path, cwd: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    log = run_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True
        )
    return process, log


def start(run_dir: Path, gcs_port: int, vertex_port: int) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / STATE_FILE
    if state_path.exists():
        recorded = json.loads(state_path.read_text())
        if all(_same_process(entry) for entry in recorded.values()):
            print(f"emulators already running: {', '.join(e['url'] for e in recorded.values())}")
            return 0
        stop(run_dir)
    gcs_url, vertex_url = f"http://127.0.0.1:{gcs_port}", f"http://127.0.0.1:{vertex_port}"
    gcs_dir = run_dir / "gcs"
    gcs_dir.mkdir(exist_ok=True)
    env = {**os.environ, "STORAGE_EMULATOR_HOST": gcs_url}
    started: dict[str, Any] = {}
    gcs, gcs_log = _spawn("gcs-emulator", gcs_emulator_command(gcs_port), run_dir, gcs_dir, env)
    started["gcs"] = {
        "pid": gcs.pid,
        "port": gcs_port,
        "url": gcs_url,
        "log": str(gcs_log),
        "module": "gcp_storage_emulator",
    }
    vertex, vertex_log = _spawn(
        "vertex-emulator",
        [
            sys.executable,
            "-m",
            "vertex_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(vertex_port),
            "--state-dir",
            str((run_dir / "vertex-state").resolve()),
            "--gcs-endpoint",
            gcs_url,
        ],
        run_dir,
        Path.cwd(),
        env,
    )
    started["vertex"] = {
        "pid": vertex.pid,
        "port": vertex_port,
        "url": vertex_url,
        "log": str(vertex_log),
        "module": "vertex_emulator",
    }
    state_path.write_text(json.dumps(started, indent=2) + "\n")
    _wait(f"{gcs_url}/storage/v1/b", gcs, gcs_log)
    _wait(f"{vertex_url}/_emulator/health", vertex, vertex_log)
    print(f"GCS emulator:       {gcs_url}  (pid {gcs.pid}, log {gcs_log})")
    print(f"Vertex AI emulator: {vertex_url}  (pid {vertex.pid}, log {vertex_log})")
    print(f"export STORAGE_EMULATOR_HOST={gcs_url} ARIA_VERTEX_API_ENDPOINT={vertex_url}")
    return 0


def stop(run_dir: Path) -> int:
    state_path = run_dir / STATE_FILE
    if not state_path.exists():
        print("no emulators recorded; nothing to stop")
        return 0
    recorded = json.loads(state_path.read_text())
    for name, entry in recorded.items():
        if not _same_process(entry):
            print(f"{name}: pid {entry['pid']} is not running")
            continue
        os.kill(entry["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(entry["pid"]) and time.monotonic() < deadline:
            _reap(entry["pid"])
            time.sleep(0.1)
        if _alive(entry["pid"]):
            os.kill(entry["pid"], signal.SIGKILL)
        print(f"{name}: stopped pid {entry['pid']}")
    state_path.unlink()
    return 0


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vertex_emulator.launcher", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start_parser = sub.add_parser("start", help="start both emulators in the background")
    start_parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    start_parser.add_argument("--gcs-port", type=int, default=9023)
    start_parser.add_argument("--vertex-port", type=int, default=9024)
    stop_parser = sub.add_parser("stop", help="stop the emulators recorded in RUN_DIR/emulators.json")
    stop_parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args.run_dir, args.gcs_port, args.vertex_port)
    return stop(args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
