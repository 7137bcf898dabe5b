"""Finish detection's emulated clock: the triggers' sleeps are scaled back up, the rest counts once."""

from __future__ import annotations

import pytest

from bench.finish_detection import ENDS, LENGTHS, TRIGGERS, emulated_seconds, waits


def test_time_outside_sleeps_counts_once() -> None:
    assert emulated_seconds(10.0, 12.0, [], 60) == pytest.approx(2.0)


def test_a_sleep_is_scaled() -> None:
    # 1 s of sleep (60 emulated), then 0.5 s of a request (0.5), then 0.5 s of sleep (30).
    assert emulated_seconds(0.0, 2.0, [[0.0, 1.0], [1.5, 2.0]], 60) == pytest.approx(90.5)


def test_only_the_part_of_a_sleep_inside_the_span_counts() -> None:
    # The sleep began before the job ended: only its last 0.2 s are inside the span.
    assert emulated_seconds(1.0, 1.2, [[0.5, 1.2]], 60) == pytest.approx(0.2 * 60)
    assert emulated_seconds(1.0, 2.0, [[0.5, 1.2], [1.5, 4.0]], 60) == pytest.approx(0.7 * 60 + 0.3)


def test_every_run_length_end_and_trigger_is_waited_on_once_at_the_scale() -> None:
    plan = waits(60)
    assert len(plan) == len(LENGTHS) * len(ENDS) * len(TRIGGERS)
    assert len({w["key"] for w in plan}) == len(plan)
    ours = next(w for w in plan if w["kind"] == "ours" and w["length"] == 3600 and w["end"] == 110)
    assert ours["expected_seconds"] == pytest.approx(60.0)
    assert ours["end_after"] == pytest.approx(66.0)
    assert (ours["poll_interval"], ours["max_poll_interval"]) == (1, 10)
    provider = next(w for w in plan if w["label"] == "provider-300")
    assert provider["poll_interval"] == 5 and isinstance(provider["poll_interval"], int)
