"""The soak's fault plan: reproducible from the seed, every kind drawn, expectations follow the faults."""

from __future__ import annotations

from collections import Counter

from bench import soak


def test_the_plan_is_a_function_of_runs_and_seed() -> None:
    assert soak.plan(30, seed=7) == soak.plan(30, seed=7)
    assert soak.plan(30, seed=7) != soak.plan(30, seed=8)
    assert soak.plan(5, seed=7) == soak.plan(30, seed=7)[:5]  # a short soak is the long one's start


def test_a_hundred_runs_draw_every_injectable_fault_on_distinct_dates() -> None:
    plans = soak.plan(100, seed=1)
    drawn = Counter(f for p in plans for f in p.faults)
    assert set(drawn) == {*soak.API_FAULTS, *soak.PROCESS_FAULTS, *soak.USER_FAULTS}
    assert len({p.logical_date for p in plans}) == 100
    # At most one process fault per run: each one's effect on the run stays attributable.
    assert all(sum(f in soak.PROCESS_FAULTS for f in p.faults) <= 1 for p in plans)


def test_expectations_follow_the_faults() -> None:
    assert soak.RunPlan(1, "2026-01-04", ("triggerer_kill",)).expected_state == "success"
    marked = soak.RunPlan(1, "2026-01-04", ("user_marks_tune_failed", "vertex_latency"))
    assert (marked.expected_state, marked.expected_jobs) == ("failed", 1)
    bad = soak.RunPlan(1, "2026-01-04", ("bad_dataset",))
    assert (bad.expected_state, bad.expected_jobs) == ("failed", 0)
