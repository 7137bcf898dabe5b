"""`python -m vertex_emulator`: serve the Vertex AI emulator."""

from __future__ import annotations

import argparse
import asyncio
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
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=None,
        help="seed of the fault rules' random streams (with each rule's id), so a run with rate-based "
        "faults strikes the same calls again; a rule's own `seed` wins (default: unseeded)",
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
        '(with --require-auth) and applies the fault rules of "service": "gcs" (point '
        "STORAGE_EMULATOR_HOST at it; default: 0, none)",
    )
    grpc = parser.add_argument_group("gRPC", "the same services, state and faults over gRPC (grpc_server)")
    grpc.add_argument(
        "--grpc-port", type=int, default=0, help="also serve gRPC on this port of --host (default: 0, none)"
    )
    grpc.add_argument("--grpc-tls-cert", type=Path, help="PEM certificate chain: serve gRPC over TLS")
    grpc.add_argument("--grpc-tls-key", type=Path, help="PEM private key of --grpc-tls-cert")
    grpc.add_argument(
        "--grpc-tls-self-signed",
        type=Path,
        metavar="DIR",
        help="serve gRPC over TLS with DIR/cert.pem and DIR/key.pem, generated if absent "
        "(self-signed, for localhost and 127.0.0.1; clients trust DIR/cert.pem as root)",
    )


def _grpc_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The TLS files of the gRPC port (None: plain-text); a usage error for inconsistent options."""
    pair = (args.grpc_tls_cert, args.grpc_tls_key)
    if any(pair) and not all(pair):
        parser.error("--grpc-tls-cert and --grpc-tls-key go together")
    if all(pair) and args.grpc_tls_self_signed:
        parser.error("--grpc-tls-self-signed replaces --grpc-tls-cert/--grpc-tls-key: give one or the other")
    if (any(pair) or args.grpc_tls_self_signed) and not args.grpc_port:
        parser.error("the --grpc-tls-* options need --grpc-port")
    if not (any(pair) or args.grpc_tls_self_signed):
        return None
    from vertex_emulator import tls

    if args.grpc_tls_self_signed:
        return tls.self_signed(args.grpc_tls_self_signed)
    return tls.TlsFiles(args.grpc_tls_cert, args.grpc_tls_key)


def run(args: argparse.Namespace, tls: Any = None) -> int:
    import uvicorn

    from vertex_emulator.app import create_app
    from vertex_emulator.auth import TokenAuthority
    from vertex_emulator.backend import Backend, Settings
    from vertex_emulator.control import RequestCounter
    from vertex_emulator.faults import Faults

    settings = Settings(
        seconds_per_step=args.seconds_per_step,
        phase_seconds=args.phase_seconds,
        operation_seconds=args.operation_seconds,
        gcs_endpoint=args.gcs_endpoint,
        state_dir=args.state_dir,
    )
    backend = Backend(settings)
    faults, counter = Faults(args.fault_seed), RequestCounter()  # one set for REST and gRPC alike
    authority = TokenAuthority(backend.store, required=args.require_auth)  # REST, gRPC and the GCS gate
    app = create_app(backend, faults=faults, counter=counter, authority=authority)
    http = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    )

    async def serve() -> None:
        # The gRPC server shares uvicorn's event loop: both dispatch on it, the backend runs in threads.
        grpc_server = None
        grpc_note = ""
        if args.grpc_port:
            from vertex_emulator import grpc_server as grpc_face

            grpc_server = grpc_face.create_server(backend, faults, counter, authority=authority)
            try:
                target = grpc_face.listen(grpc_server, args.host, args.grpc_port, tls)
            except OSError as exc:
                raise SystemExit(str(exc)) from exc
            await grpc_server.start()
            grpc_note = f", gRPC on {target} ({f'TLS, {tls.cert}' if tls else 'plain-text'})"
        print(
            f"Vertex AI emulator on http://{args.host}:{args.port}{grpc_note} "
            f"(state: {args.state_dir or 'memory'}, GCS: {args.gcs_endpoint or 'unset'})",
            flush=True,
        )
        try:
            await http.serve()
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=1.0)

    if args.gcs_gate_port:
        _start_gcs_gate(args, authority, faults, counter)
    try:
        with asyncio.Runner(loop_factory=http.config.get_loop_factory()) as runner:
            runner.run(serve())
    except KeyboardInterrupt:
        pass
    return 0 if http.started else 3  # uvicorn.run's exit status when the server never started


def _start_gcs_gate(args: argparse.Namespace, authority: Any, faults: Any, counter: Any) -> None:
    """The GCS gate on --gcs-gate-port (a daemon thread: it ends with the process), on the same fault
    rules and request counts as the API (struck GCS calls are counted as `gcs fault ...`)."""
    from vertex_emulator import gcs_gate

    if not args.gcs_endpoint:
        raise SystemExit("--gcs-gate-port needs --gcs-endpoint (or $STORAGE_EMULATOR_HOST): the GCS to guard")
    app = gcs_gate.create_gate(
        args.gcs_endpoint, authority, faults, lambda label: counter.add(f"gcs {label}")
    )
    gcs_gate.serve_in_thread(app, args.host, args.gcs_gate_port, args.log_level)
    print(f"GCS gate on http://{args.host}:{args.gcs_gate_port} -> {args.gcs_endpoint}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vertex_emulator", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args, _grpc_tls(parser, args))
