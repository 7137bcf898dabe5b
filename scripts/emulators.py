"""The GCS and Vertex AI emulators as local processes: their command lines, starting them, the Vertex
emulator's control plane, and `make emulators` / `make emulators-stop`.

`start` launches both (GCS keeps its objects under RUN_DIR/gcs, Vertex its state under
RUN_DIR/vertex-state), waits until they answer and records pids, ports and URLs in
RUN_DIR/emulators.json (the Vertex entry with its gRPC port and target); `stop` ends exactly the
processes recorded there.

    python -m scripts.emulators start [--run-dir .run] [--gcs-port 9023] [--vertex-port 9024]
                                      [--vertex-grpc-port 9025]
    python -m scripts.emulators stop [--run-dir .run]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.processes import Process, Server, ServerDidNotStart, load_state, save_state, serve

STATE_FILE = "emulators.json"
GCS_READY = "/storage/v1/b"
VERTEX_READY = "/_emulator/health"


def gcs_emulator_command(port: int, *, in_memory: bool = False) -> list[str]:
    """The command line of gcp-storage-emulator on 127.0.0.1:`port` (in memory: nothing on disk)."""
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
    return [*command, "--port", str(port), *(["--in-memory"] if in_memory else []), "-q"]


def vertex_emulator_command(
    port: int,
    *,
    gcs_url: str | None = None,
    state_dir: Path | None = None,
    grpc_port: int | None = None,
    gcs_gate_port: int | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """`python -m vertex_emulator` on 127.0.0.1:`port` (and gRPC on `grpc_port`, a GCS gate in front of
    `gcs_url` on `gcs_gate_port`); `extra_args` are any further emulator options."""
    command = [sys.executable, "-m", "vertex_emulator", "--host", "127.0.0.1", "--port", str(port)]
    if gcs_url:
        command += ["--gcs-endpoint", gcs_url]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    if grpc_port:
        command += ["--grpc-port", str(grpc_port)]
    if gcs_gate_port:
        command += ["--gcs-gate-port", str(gcs_gate_port)]
    return command + list(extra_args)


def start_gcs_emulator(
    log_dir: Path,
    *,
    port: int | None = None,
    in_memory: bool = True,
    cwd: Path | None = None,
    name: str = "gcs-emulator",
) -> Server:
    """A GCS emulator answering on `port` (default: a free one); on disk it keeps objects under `cwd`."""
    return serve(
        name,
        lambda chosen: gcs_emulator_command(chosen, in_memory=in_memory),
        GCS_READY,
        log_dir,
        port=port,
        cwd=cwd,
    )


def start_vertex_emulator(
    log_dir: Path,
    *,
    gcs_url: str | None,
    port: int | None = None,
    state_dir: Path | None = None,
    grpc_port: int | None = None,
    gcs_gate_port: int | None = None,
    extra_args: Sequence[str] = (),
    name: str = "vertex-emulator",
) -> Server:
    """The Vertex AI emulator reading datasets from `gcs_url`, answering on `port` (default: a free one).

    With a `state_dir` its resources survive `restart()`; with a `grpc_port` it also serves gRPC on
    127.0.0.1:`grpc_port` (plain-text); with a `gcs_gate_port` it serves a GCS gate in front of
    `gcs_url` on 127.0.0.1:`gcs_gate_port` (where GCS fault rules strike; point STORAGE_EMULATOR_HOST
    at it); `extra_args` are further emulator options (e.g. `("--seconds-per-step", "2")`).
    """
    env = {**os.environ, "STORAGE_EMULATOR_HOST": gcs_url} if gcs_url else None
    return serve(
        name,
        lambda chosen: vertex_emulator_command(
            chosen,
            gcs_url=gcs_url,
            state_dir=state_dir,
            grpc_port=grpc_port,
            gcs_gate_port=gcs_gate_port,
            extra_args=extra_args,
        ),
        VERTEX_READY,
        log_dir,
        port=port,
        env=env,
    )


def emulator_control(
    url: str, route: str, body: dict[str, Any] | None = None, method: str | None = None
) -> Any:
    """Call the Vertex emulator's control plane (`/_emulator/<route>`); returns the JSON answer (or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}/_emulator/{route}",
        data=data,
        method=method or ("POST" if data is not None else "GET"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


# --- make emulators / make emulators-stop --------------------------------------------------------


def _recorded(run_dir: Path) -> dict[str, dict[str, Any]]:
    return load_state(run_dir / STATE_FILE) or {}


def start(run_dir: Path, gcs_port: int, vertex_port: int, vertex_grpc_port: int | None = None) -> int:
    """Both emulators in the background; Vertex also serves gRPC on `vertex_grpc_port` when given."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if recorded := _recorded(run_dir):
        if all(Process.from_record(entry).running() for entry in recorded.values()):
            print(f"emulators already running: {', '.join(e['url'] for e in recorded.values())}")
            return 0
        stop(run_dir)
    gcs_dir = run_dir / "gcs"
    gcs_dir.mkdir(exist_ok=True)
    try:
        gcs = start_gcs_emulator(run_dir, port=gcs_port, in_memory=False, cwd=gcs_dir)
        try:
            vertex = start_vertex_emulator(
                run_dir,
                gcs_url=gcs.url,
                port=vertex_port,
                state_dir=(run_dir / "vertex-state").resolve(),
                grpc_port=vertex_grpc_port,
            )
        except BaseException:
            gcs.stop()
            raise
    except ServerDidNotStart as exc:
        raise SystemExit(str(exc)) from exc
    servers = {"gcs": gcs, "vertex": vertex}
    state = {name: {**s.process.record(), "port": s.port, "url": s.url} for name, s in servers.items()}
    grpc_target = f"127.0.0.1:{vertex_grpc_port}" if vertex_grpc_port else None
    if grpc_target:
        state["vertex"].update(grpc_port=vertex_grpc_port, grpc_target=grpc_target)
    save_state(run_dir / STATE_FILE, state)
    print(f"GCS emulator:       {gcs.url}  (pid {gcs.process.pid}, log {gcs.process.log})")
    grpc = f", gRPC {grpc_target}" if grpc_target else ""
    print(f"Vertex AI emulator: {vertex.url}{grpc}  (pid {vertex.process.pid}, log {vertex.process.log})")
    print(f"export STORAGE_EMULATOR_HOST={gcs.url} ARIA_VERTEX_API_ENDPOINT={vertex.url}")
    return 0


def stop(run_dir: Path) -> int:
    recorded = _recorded(run_dir)
    if not recorded:
        print("no emulators recorded; nothing to stop")
        return 0
    for name, entry in recorded.items():
        process = Process.from_record(entry)
        if not process.running():
            print(f"{name}: pid {process.pid} is not running")
            continue
        process.stop(timeout=10)
        print(f"{name}: stopped pid {process.pid}")
    (run_dir / STATE_FILE).unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.emulators", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start_parser = sub.add_parser("start", help="start both emulators in the background")
    start_parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    start_parser.add_argument("--gcs-port", type=int, default=9023)
    start_parser.add_argument("--vertex-port", type=int, default=9024)
    start_parser.add_argument("--vertex-grpc-port", type=int, default=9025, help="0: no gRPC")
    stop_parser = sub.add_parser("stop", help="stop the emulators recorded in RUN_DIR/emulators.json")
    stop_parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args.run_dir, args.gcs_port, args.vertex_port, args.vertex_grpc_port or None)
    return stop(args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
