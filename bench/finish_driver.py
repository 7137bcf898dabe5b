"""Waits on tuning jobs that the emulator ends on schedule, one trigger per job on one asyncio loop (the
triggerer's way), and records when each trigger saw the end, its requests and its sleeps.

Run in a fresh interpreter by bench/finish_detection.py: `python -m bench.finish_driver --endpoint URL
--dataset URI --seconds-per-step S --waits FILE --out FILE`. Each wait in FILE has a key, the trigger
kind (ours, or the provider's `RunPipelineJobTrigger`), its poll settings and how long its job runs (from
its `startTime`). The driver creates each job just before its trigger starts, with as many tuner steps as
make it end then on the emulator's own clock. Requests are recorded per trigger at aiohttp's
`ClientSession._request` (when each started and ended), attributed through a context variable that each
wait's task sets (the trigger's inner tasks inherit it); the driver's own calls (create, read) go through
the synchronous REST client and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

_WAIT = contextvars.ContextVar[str]("wait", default="")


def record_requests() -> defaultdict[str, list[list[float]]]:
    """[start, end] of each request through aiohttp in this process, by the wait whose task made it
    (end: when the response's headers arrived; the body is read within the same await in aiohttp's
    `ClientResponse.read`, a few milliseconds later)."""
    import aiohttp

    spans: defaultdict[str, list[list[float]]] = defaultdict(list)
    original = aiohttp.ClientSession._request

    async def recorded(session: Any, *args: Any, **kwargs: Any) -> Any:
        span = [time.time(), 0.0]
        spans[_WAIT.get()].append(span)
        try:
            return await original(session, *args, **kwargs)
        finally:
            span[1] = time.time()

    aiohttp.ClientSession._request = recorded  # type: ignore[method-assign,assignment]
    return spans


def record_sleeps() -> defaultdict[str, list[list[float]]]:
    """[start, end] of each `asyncio.sleep` a wait's task made: the only time on the scaled clock.

    Both triggers sleep through the module attribute (`asyncio.sleep(...)`: ours in `run`, the
    provider's in `PipelineJobAsyncHook.wait_for_pipeline_job`), so replacing it sees every sleep."""
    spans: defaultdict[str, list[list[float]]] = defaultdict(list)
    original = asyncio.sleep

    async def recorded(delay: float, result: Any = None) -> Any:
        key = _WAIT.get()
        if not key:
            return await original(delay, result)
        span = [time.time(), 0.0]
        spans[key].append(span)
        try:
            return await original(delay, result)
        finally:
            span[1] = time.time()

    asyncio.sleep = recorded  # type: ignore[assignment]
    return spans


def make_trigger(wait: dict[str, Any], job: str, endpoint: str) -> Any:
    if wait["kind"] == "ours":
        from aria_tuning.triggers import VertexTuningJobTrigger

        return VertexTuningJobTrigger(
            job_name=job,
            method="pipeline",
            expected_seconds=wait["expected_seconds"],
            poll_interval=wait["poll_interval"],
            max_poll_interval=wait["max_poll_interval"],
        )
    from bench.provider_emulated import EmulatedRunPipelineJobTrigger

    _, project, _, location, _, job_id = job.split("/")
    return EmulatedRunPipelineJobTrigger(
        api_endpoint=endpoint,
        conn_id="google_cloud_default",
        project_id=project,
        location=location,
        job_id=job_id,
        poll_interval=wait["poll_interval"],
    )


async def _consume(key: str, trigger: Any, seen: dict[str, dict[str, Any]]) -> None:
    _WAIT.set(key)
    async for event in trigger.run():
        seen[key] = {"seen_at": time.time(), "status": event.payload.get("status")}
        return


class Jobs:
    """The driver's own calls to the emulator: create a job that ends on its own schedule, read it."""

    def __init__(self, endpoint: str, dataset: str, seconds_per_step: float) -> None:
        from bench.offline_cloud import pipeline_client

        self.endpoint, self.dataset, self.seconds_per_step = endpoint, dataset, seconds_per_step
        self.client = pipeline_client(endpoint)
        #: Seconds a job runs besides its tuner's steps (the pipeline's other tasks), from a probe.
        self.fixed_seconds = self._schedule_seconds(self._create("probe", 0))

    def _create(self, key: str, train_steps: int) -> str:
        from bench.offline_cloud import create_pipeline_jobs

        return create_pipeline_jobs(self.endpoint, 1, self.dataset, train_steps, prefix=key)[0]

    def _schedule_seconds(self, job: str) -> float:
        """Seconds from the job's start (RUNNING) to its end, as the emulator scheduled it."""
        with urllib.request.urlopen(f"{self.endpoint}/_emulator/inspect/{job}", timeout=60) as response:
            steps = json.load(response)["internal"]["steps"]  # [name, seconds from creation] each
        return float(steps[-1][1] - steps[0][1])

    def create(self, key: str, runs_for: float) -> str:
        """A job that ends `runs_for` seconds after it starts (to the emulator's step resolution)."""
        steps = max(0, round((runs_for - self.fixed_seconds) / self.seconds_per_step))
        return self._create(key, steps)

    def started(self, job: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            start = self.client.get_pipeline_job(name=job).start_time
            if start:
                return float(start.timestamp())
            time.sleep(0.02)
        raise TimeoutError(f"{job} did not start within {timeout:.0f}s")

    def ended(self, job: str) -> float:
        end = self.client.get_pipeline_job(name=job).end_time
        if not end:
            raise RuntimeError(f"{job} has no endTime: it has not ended")
        return float(end.timestamp())


async def warm_up(jobs: Jobs) -> None:
    """One short wait of each kind to its event, before measuring: the client libraries' first imports
    and first-use caches (seconds of blocked loop on a busy machine) are paid before any measured wait."""
    kinds = [
        {"kind": "ours", "expected_seconds": 1.0, "poll_interval": 0.2, "max_poll_interval": 0.2},
        {"kind": "provider", "poll_interval": 1},
    ]
    seen: dict[str, dict[str, Any]] = {}
    for number, wait in enumerate(kinds):
        key = f"warm-up-{number}"
        job = await asyncio.to_thread(jobs.create, key, 0.5)
        await asyncio.wait_for(_consume(key, make_trigger(wait, job, jobs.endpoint), seen), 120)


async def drive(waits: list[dict[str, Any]], jobs: Jobs, timeout: float) -> dict[str, Any]:
    await warm_up(jobs)
    requests, sleeps = record_requests(), record_sleeps()
    seen: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    tasks = []
    for wait in waits:
        key = wait["key"]
        names[key] = job = await asyncio.to_thread(jobs.create, key, wait["end_after"])
        trigger = make_trigger(wait, job, jobs.endpoint)
        tasks.append(asyncio.create_task(_consume(key, trigger, seen), name=key))
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = {task.get_name(): repr(task.exception()) for task in done if task.exception() is not None}
    if errors or pending:
        raise RuntimeError(f"waits that failed: {errors}; still waiting at the timeout: {len(pending)}")
    results = {}
    for key, job in names.items():
        started, ended = await asyncio.to_thread(jobs.started, job), await asyncio.to_thread(jobs.ended, job)
        results[key] = {
            **seen[key],
            "job": job,
            "started_at": started,
            "ended_at": ended,
            "requests": requests[key],
            "sleeps": sleeps[key],
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the Vertex emulator's REST URL")
    parser.add_argument("--dataset", required=True, help="gs:// URI of the jobs' training data")
    parser.add_argument("--seconds-per-step", type=float, required=True, help="the emulator's setting")
    parser.add_argument("--waits", type=Path, required=True, help="JSON list of the waits")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}),
    )
    os.environ["ARIA_VERTEX_API_ENDPOINT"] = args.endpoint
    waits = json.loads(args.waits.read_text())
    jobs = Jobs(args.endpoint, args.dataset, args.seconds_per_step)
    result = asyncio.run(drive(waits, jobs, args.timeout))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
