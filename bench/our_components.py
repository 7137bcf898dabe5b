"""Our components as the benchmarks use them: one place to adapt if their signatures change."""

from __future__ import annotations

from typing import Any

from aria_tuning.triggers import VertexTuningJobTrigger


def make_our_trigger(job_name: str, poll_interval: float) -> Any:
    """Our tuning-job trigger at a fixed poll interval (no backoff growth), to compare poll for poll."""
    return VertexTuningJobTrigger(
        job_name=job_name,
        method="pipeline",
        poll_interval=poll_interval,
        max_poll_interval=poll_interval,
    )
