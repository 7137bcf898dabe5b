"""`vertex-tuning emulator` (and `python -m vertex_emulator`): serve the Vertex AI emulator."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9024, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep jobs, models, endpoints and operations here so they survive a restart (default: memory)",
    )
    parser.add_argument(
        "--seconds-per-step",
        type=float,
        default=0.01,
        help="seconds per tuning step: a job takes about train_steps x this (default: %(default)s)",
    )
    parser.add_argument(
        "--phase-seconds",
        type=float,
        default=0.05,
        help="seconds each fixed pipeline task (validation, upload, ...) takes (default: %(default)s)",
    )
    parser.add_argument(
        "--operation-seconds",
        type=float,
        default=0.0,
        help="seconds before long-running operations report done (default: %(default)s, done at once)",
    )
    parser.add_argument(
        "--gcs-endpoint",
        default=os.environ.get("STORAGE_EMULATOR_HOST"),
        help="GCS (emulator) URL datasets are read from (default: $STORAGE_EMULATOR_HOST)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: %(default)s)")
    auth = parser.add_argument_group("auth", "credentials as Google checks them (auth, oauth, gcs_gate)")
    auth.add_argument(
        "--require-auth",
        action="store_true",
        help="refuse API calls without a valid bearer token (401 UNAUTHENTICATED); the token endpoint is "
        'POST /token; switch at run time with POST /_emulator/auth {"required": ...} (default: off)',
    )
    auth.add_argument(
        "--gcs-gate-port",
        type=int,
        default=0,
        help="also serve, on this port, a GCS gate: a proxy to --gcs-endpoint that checks the same tokens "
        "(point STORAGE_EMULATOR_HOST at it; default: 0, none)",
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from vertex_emulator.app import create_app
    from vertex_emulator.auth import TokenAuthority
    from vertex_emulator.backend import Backend, Settings

    settings = Settings(
        seconds_per_step=args.seconds_per_step,
        phase_seconds=args.phase_seconds,
        operation_seconds=args.operation_seconds,
        gcs_endpoint=args.gcs_endpoint,
        state_dir=args.state_dir,
    )
    backend = Backend(settings)
    authority = TokenAuthority(backend.store, required=args.require_auth)  # REST and the GCS gate
    app = create_app(backend, authority=authority)
    if args.gcs_gate_port:
        _start_gcs_gate(args, authority)
    print(
        f"Vertex AI emulator on http://{args.host}:{args.port} (state: {args.state_dir or 'memory'}, "
        f"GCS: {args.gcs_endpoint or 'unset'})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def _start_gcs_gate(args: argparse.Namespace, authority: Any) -> None:
    """The GCS gate on --gcs-gate-port (a daemon thread: it ends with the process)."""
    from vertex_emulator import gcs_gate

    if not args.gcs_endpoint:
        raise SystemExit("--gcs-gate-port needs --gcs-endpoint (or $STORAGE_EMULATOR_HOST): the GCS to guard")
    app = gcs_gate.create_gate(args.gcs_endpoint, authority)
    gcs_gate.serve_in_thread(app, args.host, args.gcs_gate_port, args.log_level)
    print(f"GCS gate on http://{args.host}:{args.gcs_gate_port} -> {args.gcs_endpoint}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vertex_emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
