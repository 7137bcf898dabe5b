"""Runs N tuning waits in one asyncio event loop, the way the triggerer does, and measures them.

Run in a fresh interpreter by bench/waits.py (REST) and bench/waits_grpc.py (gRPC), once for our
trigger and once for the provider's:
`python -m bench.wait_driver --kind ours|provider --endpoint URL --jobs FILE --out FILE ...`.
Every trigger's `run()` async generator is consumed by its own task on one loop, as Airflow's
TriggerRunner does. Polls are counted under both triggers alike: over REST at aiohttp's
`ClientSession._request`; over gRPC (`--transport grpc`) by the emulator itself, whose control plane
(`GET /_emulator/stats`, at `--control URL`) counts the GetPipelineJob calls it served.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import psutil


class PollCounter(Protocol):
    async def count(self) -> int:
        """Polls made so far."""
        ...


class HttpRequestCounter:
    """Counts the HTTP requests made through aiohttp in this process (the REST transports)."""

    def __init__(self) -> None:
        import aiohttp

        self.requests = 0
        original = aiohttp.ClientSession._request

        async def counted(session: Any, *args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return await original(session, *args, **kwargs)

        aiohttp.ClientSession._request = counted  # type: ignore[method-assign,assignment]

    async def count(self) -> int:
        return self.requests


class EmulatorPollCounter:
    """The GetPipelineJob calls the emulator served (gRPC calls are counted by route, as REST ones)."""

    def __init__(self, control_url: str) -> None:
        self.stats_url = f"{control_url.rstrip('/')}/_emulator/stats"

    def _read(self) -> int:
        try:
            with urllib.request.urlopen(self.stats_url, timeout=30) as response:
                by_method = json.load(response)["by_method"]
        except (OSError, ValueError, KeyError) as exc:
            raise RuntimeError(f"cannot read the emulator's call counts at {self.stats_url}: {exc}") from exc
        # Labels are "<HTTP method> /<version>/<route template>", e.g. GET /v1/.../pipelineJobs/*.
        return sum(
            n for label, n in by_method.items() if label.startswith("GET ") and "pipelineJobs" in label
        )

    async def count(self) -> int:
        # Off the loop: a blocking read would stall every trigger on it for its duration.
        return await asyncio.to_thread(self._read)


def provider_factory(endpoint: str, poll_interval: float) -> Callable[[str], Any]:
    from bench.provider_emulated import EmulatedRunPipelineJobTrigger

    def make(job_name: str) -> Any:
        _, project, _, location, _, job_id = job_name.split("/")
        return EmulatedRunPipelineJobTrigger(
            api_endpoint=endpoint,
            conn_id="google_cloud_default",
            project_id=project,
            location=location,
            job_id=job_id,
            poll_interval=int(poll_interval),
        )

    return make


def provider_grpc_factory(endpoint: str, poll_interval: float) -> Callable[[str], Any]:
    """The provider's trigger as it ships: its environment alone points it at the emulator."""
    from airflow.providers.google.cloud.triggers.vertex_ai import RunPipelineJobTrigger

    def make(job_name: str) -> Any:
        _, project, _, location, _, job_id = job_name.split("/")
        return RunPipelineJobTrigger(
            conn_id="google_cloud_default",
            project_id=project,
            location=location,
            job_id=job_id,
            poll_interval=int(poll_interval),
        )

    return make


def ours_factory(endpoint: str, poll_interval: float) -> Callable[[str], Any]:
    from bench.our_components import make_our_trigger

    def make(job_name: str) -> Any:
        return make_our_trigger(job_name, poll_interval)

    return make


async def _consume(trigger: Any, events: list[Any]) -> None:
    async for event in trigger.run():
        events.append(event)
        return


async def _wait_for_polls(counter: PollCounter, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await counter.count() < target and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def drive(
    make: Callable[[str], Any], jobs: list[str], poll_interval: float, window: float, counter: PollCounter
) -> dict:
    process = psutil.Process()
    events: list[Any] = []
    # Warm-up: one trigger polls once so lazy imports and first-use caches are paid before measuring.
    polls_before = await counter.count()
    warm = asyncio.create_task(_consume(make(jobs[0]), events))
    await _wait_for_polls(counter, polls_before + 1, 60)
    await asyncio.sleep(0.5)
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)
    gc.collect()
    rss_before = process.memory_info().rss
    polls_before = await counter.count()

    started = time.monotonic()
    triggers = [make(job) for job in jobs]
    tasks = [asyncio.create_task(_consume(trigger, events)) for trigger in triggers]
    await _wait_for_polls(counter, polls_before + len(jobs), timeout=max(120, 4 * poll_interval))
    ramp_seconds = time.monotonic() - started
    await asyncio.sleep(poll_interval)  # every wait is now in its steady state: sleeping between polls
    gc.collect()
    rss_waiting = process.memory_info().rss

    # The count is read outside the CPU window: a read of the emulator's counts costs this process too.
    polls_at_start = await counter.count()
    cpu_before = process.cpu_times()
    window_start = time.monotonic()
    await asyncio.sleep(window)
    elapsed = time.monotonic() - window_start
    cpu_after = process.cpu_times()
    polls = await counter.count() - polls_at_start
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "waits": len(jobs),
        "poll_interval": poll_interval,
        "ramp_seconds": ramp_seconds,
        "rss_before_mb": rss_before / 2**20,
        "rss_waiting_mb": rss_waiting / 2**20,
        "kb_per_wait": (rss_waiting - rss_before) / 1024 / len(jobs),
        "window_seconds": elapsed,
        "polls": polls,
        "requests_per_second": polls / elapsed,
        "cpu_seconds": cpu,
        "cpu_ms_per_poll": 1000 * cpu / polls if polls else None,
        "cpu_share_of_one_core": cpu / elapsed,
        "events_during_measurement": len(events),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("ours", "provider"), required=True)
    parser.add_argument("--transport", choices=("rest", "grpc"), default="rest")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--control", help="the emulator's REST URL, whose /_emulator/stats counts gRPC polls")
    parser.add_argument("--jobs", type=Path, required=True, help="file with one job resource name per line")
    parser.add_argument("--poll-interval", type=float, default=10)
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    os.environ.setdefault(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}),
    )
    os.environ["ARIA_VERTEX_API_ENDPOINT"] = args.endpoint
    counter: PollCounter
    if args.transport == "grpc":
        if not args.control:
            parser.error(
                "--transport grpc needs --control (the emulator's REST URL): polls are counted there"
            )
        counter = EmulatorPollCounter(args.control)
        factory = provider_grpc_factory if args.kind == "provider" else ours_factory
    else:
        counter = HttpRequestCounter()
        factory = provider_factory if args.kind == "provider" else ours_factory
    make = factory(args.endpoint, args.poll_interval)
    jobs = args.jobs.read_text().split()
    result = asyncio.run(drive(make, jobs, args.poll_interval, args.window, counter))
    result.update(kind=args.kind, transport=args.transport)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
