"""Runs N tuning waits in one asyncio event loop, the way the triggerer does, and measures them.

Run in a fresh interpreter by bench/waits.py, once for our trigger and once for the provider's:
`python -m bench.wait_driver --kind ours|provider --endpoint URL --jobs FILE --out FILE ...`.
Every trigger's `run()` async generator is consumed by its own task on one loop, as Airflow's
TriggerRunner does. Requests are counted at aiohttp's `ClientSession._request`, under both triggers alike.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REQUESTS = {"count": 0}


def _count_http_requests() -> None:
    import aiohttp

    original = aiohttp.ClientSession._request

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        REQUESTS["count"] += 1
        return await original(self, *args, **kwargs)

    aiohttp.ClientSession._request = counted  # type: ignore[method-assign]


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


def ours_factory(endpoint: str, poll_interval: float) -> Callable[[str], Any]:
    from bench.our_components import make_our_trigger

    def make(job_name: str) -> Any:
        return make_our_trigger(job_name, poll_interval)

    return make


async def _consume(trigger: Any, events: list[Any]) -> None:
    async for event in trigger.run():
        events.append(event)
        return


async def _wait_for_requests(target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while REQUESTS["count"] < target and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def drive(make: Callable[[str], Any], jobs: list[str], poll_interval: float, window: float) -> dict:
    process = psutil.Process()
    events: list[Any] = []
    # Warm-up: one trigger polls once so lazy imports and first-use caches are paid before measuring.
    warm = asyncio.create_task(_consume(make(jobs[0]), events))
    await _wait_for_requests(1, 60)
    await asyncio.sleep(0.5)
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)
    gc.collect()
    rss_before = process.memory_info().rss
    requests_before = REQUESTS["count"]

    started = time.monotonic()
    triggers = [make(job) for job in jobs]
    tasks = [asyncio.create_task(_consume(trigger, events)) for trigger in triggers]
    await _wait_for_requests(requests_before + len(jobs), timeout=max(120, 4 * poll_interval))
    ramp_seconds = time.monotonic() - started
    await asyncio.sleep(poll_interval)  # every wait is now in its steady state: sleeping between polls
    gc.collect()
    rss_waiting = process.memory_info().rss

    cpu_before = process.cpu_times()
    requests_at_start = REQUESTS["count"]
    window_start = time.monotonic()
    await asyncio.sleep(window)
    elapsed = time.monotonic() - window_start
    cpu_after = process.cpu_times()
    polls = REQUESTS["count"] - requests_at_start
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
    parser.add_argument("--endpoint", required=True)
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
    _count_http_requests()
    factory = provider_factory if args.kind == "provider" else ours_factory
    make = factory(args.endpoint, args.poll_interval)
    jobs = args.jobs.read_text().split()
    result = asyncio.run(drive(make, jobs, args.poll_interval, args.window))
    result["kind"] = args.kind
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
