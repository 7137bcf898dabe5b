"""When to poll a tuning job next, when the plan knows how long it should run: rarely in the middle,
every base interval from one interval before its expected end.

Pure. Mid-run the trigger sleeps the backoff's cap (less a little random spread), but never past
the point one base interval before the expected end; from there on it polls every base interval.
So a job that ends from then on is seen within one interval, and a run of length T costs about
T / cap + 3 polls where polling every base interval costs T / base + 1. A job that ends much
earlier than planned is still seen within the cap, as with the plain backoff.
"""

from __future__ import annotations

#: Mid-run sleeps are the cap less up to this share, at random: triggers started together (a
#: triggerer restart) do not keep polling in step.
SPREAD = 0.1


def finish_aware_delay(
    elapsed: float, expected: float, base: float, maximum: float, spread: float = 0.0
) -> float:
    """The sleep before the next poll, in seconds.

    `elapsed`: seconds the job has run (since it started, or since it was created while queued);
    `expected`: the plan's expected duration; `base`/`maximum`: the poll interval and its cap;
    `spread` in [0, 1]: a random draw, scaling the mid-run sleep down by up to `SPREAD`.
    """
    until_end_window = expected - base - elapsed
    if until_end_window < base:
        return base  # around and after the expected end
    return min(maximum * (1 - SPREAD * spread), until_end_window)


def poll_times(
    run_seconds: float,
    expected: float | None,
    base: float,
    maximum: float,
    spread: float = 0.0,
) -> list[float]:
    """The poll times (seconds from the start) of a job that ends after `run_seconds`, up to the poll
    that sees it ended, its state unchanged in between. Without `expected`: the trigger's plain
    backoff (base, doubling to the cap; no jitter). For tests and benchmarks.
    """
    times, now, delay = [0.0], 0.0, base
    while now < run_seconds:
        if expected is None:
            sleep, delay = delay, min(maximum, delay * 2)
        else:
            sleep = finish_aware_delay(now, expected, base, maximum, spread)
        now += sleep
        times.append(now)
    return times
