"""The canary plan: the candidate's traffic share step by step, and when a soak shows a rise in errors.

Pure functions, no Airflow and no Google import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aria_tuning.errors import ConfigurationError
from aria_tuning.traffic import percentage, scaled_split


def shares(first: object, steps: object = ()) -> list[int]:
    """The candidate's successive traffic shares: `first`, the `steps` above it in order, then 100."""
    start = percentage(first)
    if isinstance(steps, str):
        steps = [s for s in steps.strip("[] ").split(",") if s.strip()]
    if not isinstance(steps, Sequence):
        raise ConfigurationError(f"canary_steps must be a list of percentages, got {steps!r}")
    later = sorted({percentage(step, "canary_steps") for step in steps} | {100})
    return [start, *(share for share in later if share > start)]


def next_share(plan: Sequence[int], current: int) -> int:
    """The share after `current` (100 once there is none)."""
    return next((share for share in plan if share > current), 100)


def split_with(current: Mapping[str, int], candidate: str, share: int) -> dict[str, int]:
    """`candidate` gets `share`, the others serving now keep theirs rescaled to the rest."""
    others = {k: v for k, v in current.items() if k != candidate and v > 0}
    if share >= 100 or not others:
        return {candidate: 100}
    return {candidate: share, **scaled_split(others, 100 - share)}


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    candidate_rate: float
    baseline_rate: float
    reason: str


def error_verdict(candidate: tuple[int, int], baseline: tuple[int, int], max_increase: float) -> Verdict:
    """Compare (predictions, errors) of the canary with those of the versions it shares traffic with.

    Unhealthy when the canary's error rate exceeds the baseline's by more than `max_increase`
    (a fraction: 0.01 is one percentage point). No predictions means a rate of 0: nothing rose.
    """
    rate = _rate(*candidate)
    base = _rate(*baseline)
    if rate > base + max_increase:
        return Verdict(
            False,
            rate,
            base,
            f"the canary's error rate {rate:.2%} ({candidate[1]} of {candidate[0]} predictions) exceeds "
            f"the baseline's {base:.2%} by more than {max_increase:.2%}",
        )
    return Verdict(True, rate, base, f"error rate {rate:.2%} vs baseline {base:.2%}")


def _rate(predictions: int, errors: int) -> float:
    return errors / predictions if predictions else 0.0
