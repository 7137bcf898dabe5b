"""One log line on a running tuning job: how long it has run, how far it is, and when the plan expects it
to end. Pure: the tuning trigger passes what Vertex reported and what the plan expected.

Vertex reports no step counter for either method: a pipeline's task details say which task runs and since
when; a Gemini tuning job only that it runs. The step and the ending time are the plan's estimates (Google's
seconds per step, or the tuning-job range), and the line says so; on the emulator, which runs far faster,
they read as "early".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _clock(moment: dt.datetime) -> str:
    return (
        f"{moment:%H:%M} UTC"
        if moment.date() == dt.datetime.now(dt.UTC).date()
        else f"{moment:%Y-%m-%d %H:%M} UTC"
    )


def progress_line(
    *,
    started: dt.datetime,
    now: dt.datetime,
    tasks: Sequence[tuple[str, str]] = (),
    running_task_started: dt.datetime | None = None,
    tuner: str = "large-language-model-tuner",
    train_steps: int | None = None,
    expected_seconds: float | None = None,
    expected_range_seconds: Sequence[float] | None = None,
) -> str:
    """`running 40 s; tasks done 3/6, now large-language-model-tuner; step ~2 of 36 ...; ends around ...`."""
    elapsed = max(0.0, (now - started).total_seconds())
    parts = [f"running {_span(elapsed)}"]
    if tasks:
        done = sum(1 for _, state in tasks if state == "SUCCEEDED")
        running = [name for name, state in tasks if state == "RUNNING"]
        parts.append(f"tasks done {done}/{len(tasks)}" + (f", now {running[-1]}" if running else ""))
        if running and running[-1] == tuner and train_steps and expected_seconds and running_task_started:
            per_step = expected_seconds / train_steps
            tuned_for = max(0.0, (now - running_task_started).total_seconds())
            step = min(train_steps, int(tuned_for // per_step) + 1)
            parts.append(f"step ~{step} of {train_steps} (at the plan's {per_step:.1f} s/step)")
    low, high = tuple(expected_range_seconds)[:2] if expected_range_seconds else (None, None)
    if expected_seconds:
        share = min(99, int(100 * elapsed / expected_seconds))
        end = started + dt.timedelta(seconds=expected_seconds)
        ranged = f" ({_span(low)} to {_span(high)})" if low and high else ""
        expects = f"the plan expects {_span(expected_seconds)}{ranged}"
        parts.append(f"{expects}: about {share}% done, ends around {_clock(end)}")
    elif low and high:
        first, last = started + dt.timedelta(seconds=low), started + dt.timedelta(seconds=high)
        parts.append(
            f"the plan expects {_span(low)} to {_span(high)}: ends between {_clock(first)} and {_clock(last)}"
        )
    return "; ".join(parts)
