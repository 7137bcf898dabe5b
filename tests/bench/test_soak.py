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


def test_a_soak_stopped_early_says_so_and_is_no_pass() -> None:
    plans = soak.plan(4, seed=1)
    done = [soak.RunResult(p, state=p.expected_state, seconds=60.0) for p in plans[:2]]
    text = soak.report(1, done, [], 150.0, {}, planned=4, status="Interrupted")
    assert "`make soak RUNS=4 SEED=1`" in text
    assert "**Interrupted: 2 of 4 planned runs done: no pass.**" in text
    assert "| 2 | " in text and "| 60 s |" in text
    finished = soak.report(1, done, [], 150.0, {}, planned=2)
    assert "no pass" not in finished


def test_shard_outcomes_survive_json_and_merge_in_plan_order() -> None:
    import json

    plans = soak.plan(5, seed=3)
    shards = [
        soak.Outcome(
            [soak.RunResult(p, "r", "success", ["j SUCCEEDED"], [], 9.0) for p in plans[i::2]], [], c
        )
        # as the reconciler returns them: counts next to lists and dicts (the sharded soak crashed on it)
        for i, c in enumerate(
            ({"cancelled": 1, "undeployed": 2, "found": {"jobs": 3}}, {"undeployed": 1, "actions": []})
        )
    ]
    shards[1].status, shards[1].final = "Interrupted", ["still billing: x"]
    back = [soak.Outcome.from_json(json.loads(json.dumps(o.to_json()))) for o in shards]
    assert back == shards
    merged = soak.Outcome.merged(back)
    assert [r.plan for r in merged.results] == plans
    assert merged.cleanup == {"cancelled": 1, "undeployed": 3}
    assert (merged.status, merged.final) == ("Interrupted", ["still billing: x"])
