"""Benchmark 2b: 500 tuning waits in one event loop over gRPC, ours against the provider's trigger as shipped.

One emulator serves gRPC over TLS with a certificate for `*.googleapis.com` and holds 500 RUNNING
tune-large-model pipeline jobs. The provider's `RunPipelineJobTrigger`, unchanged, dials
`{region}-aiplatform.googleapis.com:443` through a CONNECT proxy to that port (`grpc_proxy`); ours
dials the port itself (connection extras `vertex_transport: grpc`, `vertex_api_endpoint`,
`vertex_grpc_root_cert`). Each kind waits on all 500 in a fresh interpreter (bench/wait_driver.py),
the provider's first, as in benchmark 2; the emulator counts the polls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Row, Section, importable, run_driver
from bench.offline_cloud import OfflineCloud, create_pipeline_jobs, offline_cloud, upload_tuning_dataset
from bench.waits import SECONDS_PER_STEP, TRAIN_STEPS
from scripts.processes import Server, free_port, serve
from vertex_emulator import tls

#: What the certificate names: the host the provider dials, and loopback for our direct channel.
CERT_HOSTS = ("*.googleapis.com", "localhost", "127.0.0.1")
#: Proxy settings gRPC core and HTTP clients read (case-insensitively): replaced in both drivers.
PROXY_VARIABLES = frozenset({"grpc_proxy", "https_proxy", "http_proxy", "no_grpc_proxy", "no_proxy"})


@dataclass(frozen=True)
class GrpcCloud:
    """The emulators with the Vertex one also on TLS gRPC, the CONNECT proxy to it, and its certificate."""

    cloud: OfflineCloud
    grpc_target: str
    proxy: Server
    cert: Path

    def _environment(self, extras: dict[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
        env["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"] = json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, **extras}}
        )
        env["NO_GCE_CHECK"] = "true"  # google-auth: never probe a GCE metadata server
        return env

    def provider_environment(self) -> dict[str, str]:
        """The provider's hard-coded endpoint reaches the emulator through gRPC core's own proxy
        support (`grpc_proxy`) and trusts its certificate through gRPC's default roots file
        (grpc/grpc doc/environment_variables.md; tests/provider/conftest.py does the same)."""
        return {
            **self._environment({}),
            "grpc_proxy": self.proxy.url,
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(self.cert),
        }

    def ours_environment(self) -> dict[str, str]:
        """Our hook's own settings: one TLS channel per trigger, straight to the emulator's port."""
        return self._environment(
            {
                "vertex_transport": "grpc",
                "vertex_api_endpoint": self.grpc_target,
                "vertex_grpc_root_cert": str(self.cert),
            }
        )


@contextmanager
def grpc_cloud(work: Path) -> Iterator[GrpcCloud]:
    cert = tls.self_signed(work / "tls", hosts=CERT_HOSTS)
    grpc_port = free_port()
    grpc_args = (
        "--grpc-port",
        str(grpc_port),
        "--grpc-tls-cert",
        str(cert.cert),
        "--grpc-tls-key",
        str(cert.key),
    )
    with offline_cloud(work / "logs", seconds_per_step=SECONDS_PER_STEP, vertex_args=grpc_args) as cloud:
        proxy = serve(
            "connect-proxy",
            lambda port: [
                *(sys.executable, "-m", "vertex_emulator.connect_proxy"),
                *("--port", str(port), "--upstream", f"127.0.0.1:{grpc_port}"),
            ],
            "/",  # answered 405 (not a CONNECT): enough to know it listens
            work / "logs",
        )
        try:
            yield GrpcCloud(cloud, f"127.0.0.1:{grpc_port}", proxy, cert.cert)
        finally:
            proxy.stop()


def _drive(kind: str, stack: GrpcCloud, jobs: Path, work: Path, poll_interval: float, window: float) -> dict:
    env = stack.provider_environment() if kind == "provider" else stack.ours_environment()
    args = ["--kind", kind, "--transport", "grpc", "--endpoint", stack.grpc_target]
    args += ["--control", stack.cloud.vertex_url, "--jobs", str(jobs)]
    args += ["--poll-interval", str(poll_interval), "--window", str(window)]
    return run_driver("bench.wait_driver", args, work, f"waits-grpc-{kind}", timeout=600, env=env)


def measure(waits: int, poll_interval: float, window: float, kinds: tuple[str, ...]) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-waits-grpc-") as tmp:
        work = Path(tmp)
        with grpc_cloud(work) as stack:
            dataset = upload_tuning_dataset()
            jobs = create_pipeline_jobs(
                stack.cloud.vertex_url, waits, dataset, TRAIN_STEPS, prefix="bench-grpc"
            )
            jobs_file = work / "jobs.txt"
            jobs_file.write_text("\n".join(jobs))
            return {kind: _drive(kind, stack, jobs_file, work, poll_interval, window) for kind in kinds}


def section(waits: int = 500, poll_interval: float = 10, window: float = 30) -> Section:
    kinds = ("provider", "ours") if importable("bench.our_components") else ("provider",)
    figures = measure(waits, poll_interval, window, kinds)
    provider = figures["provider"]
    ours = figures.get("ours")
    rows = [
        Row(
            f"2b. Memory per waiting trigger, gRPC ({waits} waits)",
            ours["kb_per_wait"] if ours else None,
            provider["kb_per_wait"],
            "KB",
            "<= 100 KB per wait",
            ours["kb_per_wait"] <= 100 if ours else None,
        ),
        Row(
            "2b. CPU per poll, gRPC",
            ours["cpu_ms_per_poll"] if ours else None,
            provider["cpu_ms_per_poll"],
            "ms",
            "<= 1/3 of the provider's trigger's",
            (provider["cpu_ms_per_poll"] / ours["cpu_ms_per_poll"] >= 3) if ours else None,
        ),
        Row(
            "2b. Polls served per second, gRPC",
            ours["requests_per_second"] if ours else None,
            provider["requests_per_second"],
            "polls/s",
            f"~{waits / poll_interval:.0f} polls/s ({waits} waits / {poll_interval:g} s poll)",
            None,
            note="informative",
        ),
    ]
    return Section("2b. Waiting at scale over gRPC", rows, _text(figures, waits, poll_interval, window))


def _text(figures: dict[str, dict], waits: int, poll_interval: float, window: float) -> str:
    table = [
        "| Trigger | Route | KB per wait | CPU ms per poll | Polls in window (server-side) | Polls/s "
        "| CPU share of one core | Ramp to first poll of all | RSS before -> waiting |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    routes = {
        "provider": "new client per poll, via CONNECT proxy",
        "ours": "one client shared by the waits, direct",
    }
    for kind, fig in figures.items():
        table.append(
            f"| {kind} | {routes[kind]} | {fig['kb_per_wait']:.1f} | {fig['cpu_ms_per_poll']:.2f} "
            f"| {fig['polls']} | {fig['requests_per_second']:.1f} | {fig['cpu_share_of_one_core']:.0%} "
            f"| {fig['ramp_seconds']:.1f} s | {fig['rss_before_mb']:.0f} -> {fig['rss_waiting_mb']:.0f} MB |"
        )
    verdict = ""
    if "ours" in figures:
        provider, ours = figures["provider"], figures["ours"]
        ratio = provider["cpu_ms_per_poll"] / ours["cpu_ms_per_poll"]
        cpu_met = "met" if ratio >= 3 else "**not met**"
        memory_met = "met" if ours["kb_per_wait"] <= 100 else "**not met**"
        verdict = (
            f"\n\n**Targets:** CPU per poll at most a third of the provider's: {cpu_met} "
            f"(ours {ours['cpu_ms_per_poll']:.2f} ms, the provider's {provider['cpu_ms_per_poll']:.2f} ms: "
            f"{ratio:.1f}x less). Memory per wait at most 100 KB: {memory_met} "
            f"(ours {ours['kb_per_wait']:.1f} KB, the provider's {provider['kb_per_wait']:.1f} KB)."
        )
    else:
        verdict = "\n\n**Our trigger is not available yet: only the provider's baseline is measured.**"
    return (
        f"""
The production transport: {waits} RUNNING `tune-large-model` pipeline jobs in one emulator serving gRPC
over TLS (a self-signed certificate for `*.googleapis.com`, `localhost` and `127.0.0.1`); each trigger
kind waits on all of them in a fresh interpreter, every `run()` consumed by its own task on one asyncio
loop (what Airflow's TriggerRunner does), poll interval {poll_interval:g} s for both, anonymous
credentials for both (the emulator without `--require-auth`). Memory per wait and CPU per poll as in
benchmark 2: (RSS once all {waits} are waiting - RSS after a one-trigger warm-up) / {waits}, and
process CPU (user + system) over a {window:g} s steady-state window / polls in that window. Polls are
counted by the emulator (GetPipelineJob calls it served, `GET /_emulator/stats` read just before and
after the window), since gRPC calls pass no aiohttp session.

The provider's `RunPipelineJobTrigger` and `PipelineJobAsyncHook` run as they ship: nothing is
subclassed or patched. On every poll the hook builds a new `PipelineServiceAsyncClient` for the
hard-coded `europe-west4-aiplatform.googleapis.com:443`, that is a new grpc.aio channel (TCP, TLS and
HTTP/2 set-up), and reads the whole PipelineJob. Its driver's environment alone points it at the
emulator: `grpc_proxy` names `vertex_emulator.connect_proxy`, which tunnels `*.googleapis.com:443` to
the emulator's TLS port, and `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` trusts its certificate (the method of
tests/provider). Ours (`VertexTuningJobTrigger`, connection extras `vertex_transport: grpc`,
`vertex_api_endpoint: 127.0.0.1:<port>`, `vertex_grpc_root_cert`) shares one client and TLS channel
between the waits of the process (`hooks/base.py`, `_SHARED_CLIENTS`), straight to the emulator's
TLS port, and polls with the `x-goog-fieldmask` metadata (name, state, error, times, task names and
states). Ours does not go through the proxy: it allows 256 tunnels at a
time, and long-lived channels would hold tunnels open; both are TLS to the same server either way, and
the proxy's own CPU is in neither figure (it is another process). What the provider's route adds on
the client is one CONNECT request and reply per new channel, small beside the TLS handshake.

Why the figures are what they are (measured once on this machine, 2026-12-01, not by this run): a
grpc.aio channel over TLS holds its own connection, about 115 KB of RSS after one call (200 bare
channels in one process), and the GAPIC async client and transport built on it add 40-70 KB; with
one of each per trigger, a wait cannot get under 100 KB. gRPC is built for sharing one channel (one
HTTP/2 connection multiplexes the calls): with our hook's channel shared by all triggers of the
process, 200 waits took 73 KB per wait and 2.97 ms per poll; with one async client (and its channel)
shared, 29 KB and 1.88 ms; with one of each per trigger in that same run, 171 KB and 2.54 ms. Our
hooks now share one client per connection, service and region in a triggerer (the row above). What
is left per poll is gRPC's and GAPIC's per-call path (0.7-1.0 ms per call in a burst of 200 calls, about
0.25 ms of it
google-auth's metadata plugin, which gRPC core calls on its own thread for every call), the loop's
wake-ups and the trigger's own code. The provider pays, on top, a new client, channel and TLS
connection per poll (the proxy logs one tunnel per poll) and the parse of the whole PipelineJob.

"""
        + "\n".join(table)
        + verdict
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waits", type=int, default=500)
    parser.add_argument("--poll-interval", type=float, default=10)
    parser.add_argument("--window", type=float, default=30)
    args = parser.parse_args()
    result = section(args.waits, args.poll_interval, args.window)
    print(json.dumps([row.__dict__ for row in result.rows], indent=1))
    print(result.text)


if __name__ == "__main__":
    main()
