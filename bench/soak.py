"""`make soak RUNS=N SEED=S`: N DAG runs on two triggerers and PostgreSQL, each under faults drawn from
the seed; invariants checked after every run and at the end; results in bench/SOAK.md.

The plan (which faults each run gets, what it must end as) is a pure function of (runs, seed) and is
printed first, so a failing run is replayed with the same seed. Each run's tuning job runs on a slow
emulator clock and is finished through the control plane once its faults are over, so every fault
lands while the job runs.

    python -m bench.soak --runs 100 --seed 7 [--shards 2] [--out bench/SOAK.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "aria_text_tuning"
RECONCILE_DAG = "aria_vertex_reconcile"
TUNE = "tune"
TRAIN_STEPS = 20
#: While faults are injected the job would take 20 minutes; it is finished once they are over.
SLOW_STEP = 60.0
#: Deploys that take seconds, not none: a deferral that resumes at once can race the LocalExecutor
#: (the scheduler reads the deferring process's exit after the resumed try started, and kills it).
OPERATION_SECONDS = 5.0
#: The soak's own: its runs must stay near a minute for 100 of them to fit in an afternoon; 3 s still
#: leaves the scheduler time to read the deferring try's exit (see OPERATION_SECONDS).
SOAK_OPERATION_SECONDS = 3.0
#: Held-out prompts per endpoint in the quality gate: the gate's path, not its statistics, is soaked.
EVALUATION_PROMPTS = 10
#: Fast clocks and polls; two triggerers that hand triggers over after 15 s of silence.
SOAK_ENV = {
    "ARIA_TUNING_SCHEDULE": "none",
    "ARIA_RECONCILE_SCHEDULE": "none",
    "ARIA_SENSOR_POKE_SECONDS": "2",
    "ARIA_UPLOAD_INACTIVITY_SECONDS": "4",
    "ARIA_VERTEX_POLL_SECONDS": "1",
    "ARIA_RETRY_DELAY_SECONDS": "3",
    "ARIA_CANARY_SOAK_SECONDS": "2",
    # A task's supervisor waits 5 s per Execution API call by default; a busy 2-core machine (and a cold
    # api-server) answers slower, and a task that cannot start dies ("Workload execution failed").
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
    # A cold triggerer's first task-state read (on_kill) takes about the default 30 s here.
    "AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT": "120",
}

# --- the plan: pure, from the seed -------------------------------------------------------------------

#: Faults on the APIs while the run submits and waits (any run may get one). The lost reply strikes
#: the paid create after Vertex applied it: the retry must re-attach (409), not create a second job.
#: GCS faults strike the sensor's listings, prep's reads and writes and the report, through the GCS gate.
API_FAULTS = ("vertex_429_503_burst", "vertex_latency", "reply_lost_after_commit", "gcs_429_503_and_latency")
#: Faults on a process while the tune task is deferred (at most one per run).
PROCESS_FAULTS = (
    "triggerer_kill",
    "triggerer_stall",
    "triggerer_rolling_restart",
    "scheduler_restart",
    "emulator_restart",
    "worker_killed_during_submit",
)
#: What a person does, or sends (each changes how the run must end).
USER_FAULTS = ("user_marks_tune_failed", "bad_dataset")
#: The tune-large-model pipeline (a TPU pod), whatever the DAG's default model: the costly case, and
#: the one whose job length the emulator's step clock sets.
BASE_MODEL = "text-bison@001"
RUN_CONF = {"train_steps": TRAIN_STEPS, "base_model": BASE_MODEL, "evaluation_prompts": EVALUATION_PROMPTS}


@dataclass(frozen=True)
class RunPlan:
    index: int
    logical_date: str
    faults: tuple[str, ...]
    seed: int = 0  # of the emulator's fault rules for this run: which calls they strike

    @property
    def expected_state(self) -> str:
        return "failed" if set(self.faults) & set(USER_FAULTS) else "success"

    @property
    def expected_jobs(self) -> int:
        return 0 if "bad_dataset" in self.faults else 1


def plan(runs: int, seed: int, first_date: dt.date = dt.date(2026, 1, 4)) -> list[RunPlan]:
    """The fault plan of `runs` runs: the same for the same seed."""
    rng = random.Random(seed)
    plans = []
    for index in range(runs):
        faults: list[str] = []
        roll = rng.random()
        if roll < 0.15:
            faults.append(rng.choice(USER_FAULTS))
        if "bad_dataset" not in faults:
            if rng.random() < 0.5:
                faults.append(rng.choice(API_FAULTS))
            if "user_marks_tune_failed" not in faults or rng.random() < 0.5:
                faults.append(rng.choice(PROCESS_FAULTS))
        date = first_date + dt.timedelta(days=index)
        plans.append(RunPlan(index + 1, date.isoformat(), tuple(faults), rng.randrange(2**31)))
    return plans


# --- one run -----------------------------------------------------------------------------------------


@dataclass
class RunResult:
    plan: RunPlan
    run_id: str = ""
    state: str = ""
    jobs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _job_states(stack: Any, run_id: str) -> list[tuple[str, str]]:
    from tests.faults import checks

    return [(j.name, j.state.name.split("_STATE_")[-1]) for j in checks.tuning_jobs(stack, run_id)]


ENDED = ("SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED")


def _all_ended(stack: Any, run_id: str) -> bool:
    return all(state in ENDED for _, state in _job_states(stack, run_id))


def _wait(what: str, ready: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f}s")
        time.sleep(0.5)


def _slow_clock(stack: Any) -> None:
    settings = {"secondsPerStep": SLOW_STEP, "operationSeconds": SOAK_OPERATION_SECONDS}
    stack.control("PATCH", "settings", settings)


def _inject_process_fault(stack: Any, fault: str, run_id: str) -> None:
    """Act on the processes while the tune task is deferred and its trigger runs."""
    holder = stack.wait_triggerer_of(run_id, TUNE)
    if fault == "triggerer_kill":
        stack.signal(holder, signal.SIGKILL)
        try:
            stack.wait_triggerer_of(run_id, TUNE, other_than=holder)
        finally:
            stack.restart(holder)
    elif fault == "triggerer_stall":
        stack.signal(holder, signal.SIGSTOP)
        try:
            stack.wait_triggerer_of(run_id, TUNE, other_than=holder)
        finally:
            stack.signal(holder, signal.SIGCONT)
    elif fault == "triggerer_rolling_restart":
        for name in [holder, *(n for n in stack.triggerer_jobs if n != holder)]:
            stack.restart(name)
            stack.wait_triggerer_of(run_id, TUNE)
    elif fault == "scheduler_restart":
        stack.restart("scheduler")
    elif fault == "emulator_restart":
        stack.restart_vertex()
        _slow_clock(stack)  # settings are the process's; the jobs and their clocks are on disk
    stack.wait_triggerer_of(run_id, TUNE)


def _kill_during_submit(stack: Any, run_id: str) -> None:
    """Hold the create call in the emulator and SIGKILL the task runner meanwhile (as scenario 2)."""
    from tests.faults.test_scenarios import _kill_task_process

    stack.control(
        "POST", "faults", {"latencyMs": 8000, "method": "POST", "path": r"/pipelineJobs$", "count": 1}
    )
    stack.wait_task_state(run_id, TUNE, {"running"}, timeout=300)
    _wait("the create call held", lambda: _held_creates(stack) > 0, timeout=120)
    _kill_task_process(stack, run_id, TUNE)


def _held_creates(stack: Any) -> int:
    rules = stack.control("GET", "faults")["faults"]
    return sum(rule["hits"] for rule in rules if rule.get("latencyMs") == 8000)


def execute(stack: Any, run: RunPlan) -> RunResult:
    """One run of the plan: start it, inject its faults, let it end, check the invariants."""
    from tests.faults import checks
    from tests.faults.test_scenarios import upload

    started = time.monotonic()
    result = RunResult(run)
    stack.control("DELETE", "faults")
    _slow_clock(stack)
    if "bad_dataset" in run.faults:
        from tests.aria_tuning.dataprep.test_corpus import BAD, CASES

        palm = sorted(name for name in CASES if not name.startswith("gemini"))  # as scenario 8
        upload(run.logical_date, files=[BAD / name for name in palm[:2]])
    else:
        upload(run.logical_date)
    fault_rules: dict[str, list[dict[str, Any]]] = {
        "vertex_429_503_burst": [
            {"status": 429, "rate": 0.15, "count": 20},
            {"status": 503, "rate": 0.15, "count": 20},
        ],
        "vertex_latency": [{"latencyMs": 400, "rate": 1.0, "count": 60}],
        "reply_lost_after_commit": [
            {"status": 503, "when": "after", "method": "POST", "path": r"/pipelineJobs$", "count": 1}
        ],
        "gcs_429_503_and_latency": [
            {"service": "gcs", "status": 429, "rate": 0.2, "count": 6},
            {"service": "gcs", "status": 503, "rate": 0.2, "count": 6},
            {"service": "gcs", "latencyMs": 200, "rate": 1.0, "count": 80},
        ],
    }
    for number, rule in enumerate(r for fault in run.faults for r in fault_rules.get(fault, [])):
        stack.control("POST", "faults", {**rule, "seed": run.seed + number})
    result.run_id = stack.trigger(run.logical_date, RUN_CONF)
    run_id = result.run_id
    try:
        if "worker_killed_during_submit" in run.faults:
            _kill_during_submit(stack, run_id)
        if run.expected_jobs:
            stack.wait_task_state(run_id, TUNE, {"deferred"}, timeout=600)
            for fault in run.faults:
                if fault in PROCESS_FAULTS and fault != "worker_killed_during_submit":
                    _inject_process_fault(stack, fault, run_id)
            stack.control("DELETE", "faults")
            if "user_marks_tune_failed" in run.faults:
                stack.mark_task(run_id, TUNE, "failed")
            else:
                (job,) = checks.tuning_jobs(stack, run_id)
                stack.control("POST", f"jobs/{job.name}:succeed")
        result.state = stack.wait_run(run_id, timeout=900)
    except Exception as exc:  # a fault that could not be injected, or a run that never ended
        result.violations.append(f"run did not complete its plan: {type(exc).__name__}: {exc}")
        result.state = stack.run(run_id)["state"]
    stack.control("DELETE", "faults")
    result.violations += _invariants(stack, run, run_id, result.state)
    result.jobs = [f"{name.rsplit('/', 1)[-1]} {state}" for name, state in _job_states(stack, run_id)]
    result.seconds = time.monotonic() - started
    return result


def _invariants(stack: Any, run: RunPlan, run_id: str, state: str) -> list[str]:
    from tests.faults import checks

    problems = []
    if state != run.expected_state:
        problems.append(f"run ended {state}, its faults call for {run.expected_state}")
    jobs = _job_states(stack, run_id)
    if len(jobs) != run.expected_jobs:
        problems.append(f"{len(jobs)} Vertex jobs for the run, expected {run.expected_jobs}")
    if state == "failed" and jobs:
        # A user's mark-failed must not leave the job billing: on_kill cancels it, else the reconciler.
        if any(s not in (*ENDED, "CANCELLING") for _, s in jobs):
            _reconcile(stack, grace_minutes=0)
        try:
            _wait("every job of the failed run ended", lambda: _all_ended(stack, run_id), timeout=120)
        except TimeoutError:
            problems.append(f"jobs left billing after the run failed: {_job_states(stack, run_id)}")
        registered = checks.models_from(stack, {name for name, _ in jobs})
        if registered:
            problems.append(f"models registered from a failed tuning: {registered}")
    if run.expected_jobs:
        damage = checks.prepared_data_intact(stack, run_id)
        if damage:
            problems.append(damage)
    stuck = {t: s for t, s in stack.task_states(run_id).items() if s in ("running", "deferred", "queued")}
    if stuck:
        problems.append(f"tasks stuck after the run ended: {stuck}")
    return problems


def _reconcile(stack: Any, **conf: Any) -> dict[str, Any]:
    import json

    body = {"logical_date": None, "conf": conf}
    run_id = str(stack._request("POST", f"/api/v2/dags/{RECONCILE_DAG}/dagRuns", body)["dag_run_id"])
    stack.wait_run(run_id, timeout=300, dag_id=RECONCILE_DAG)
    path = (
        f"/api/v2/dags/{RECONCILE_DAG}/dagRuns/{run_id}/taskInstances/reconcile/xcomEntries/return_value"
        "?deserialize=true"
    )
    value = stack._request("GET", path)["value"]
    return dict(json.loads(value) if isinstance(value, str) else value)


def final_checks(stack: Any) -> list[str]:
    """At the end: the reconciler cleans what the runs left (idle deployments); then nothing is left."""
    problems = []
    cleaned = _reconcile(stack, grace_minutes=0)
    left = _reconcile(stack, grace_minutes=0, dry_run=True)
    if left["actions"]:
        problems.append(f"still billing after the reconciler ran: {left['actions']}")
    stack.final_cleanup = cleaned  # type: ignore[attr-defined]  # for the report
    return problems


# --- the soak ----------------------------------------------------------------------------------------


def start_stack(base: Path) -> Any:
    from scripts.airflow_stack import AirflowStack

    stack = AirflowStack(base, extra_env=SOAK_ENV, triggerers=2, db="postgres", gcs_gate=True)
    stack.start()
    stack.wait_dag_parsed()
    stack.wait_dag_parsed(RECONCILE_DAG)
    stack.control("PATCH", "settings", {"operationSeconds": SOAK_OPERATION_SECONDS})
    return stack


def soak(
    stack: Any,
    plans: list[RunPlan],
    echo: Callable[[str], None] = print,
    after_each: Callable[[list[RunResult]], None] = lambda results: None,
) -> list[RunResult]:
    results: list[RunResult] = []
    for done, run in enumerate(plans, 1):
        result = execute(stack, run)
        verdict = "ok" if not result.violations else "VIOLATION: " + "; ".join(result.violations)
        faults = ",".join(run.faults) or "no fault"
        echo(f"run {run.index} ({done}/{len(plans)} here) {run.logical_date} {faults}: {result.state} in "
             f"{result.seconds:.0f}s, jobs {result.jobs}: {verdict}")  # fmt: skip
        results.append(result)
        after_each(results)
    return results


def report(
    seed: int,
    results: list[RunResult],
    final: list[str],
    seconds: float,
    cleanup: Any,
    planned: int | None = None,
    status: str = "",
    shards: int = 1,
) -> str:
    """bench/SOAK.md; `status` says why the soak is not over (in progress, interrupted): no pass then."""
    planned = len(results) if planned is None else planned
    faults = Counter(f for r in results for f in r.plan.faults)
    violations = [(r.plan.index, v) for r in results for v in r.violations] + [(0, v) for v in final]
    lines = [
        "# Soak: DAG runs under random faults (two triggerers, PostgreSQL, LocalExecutor)",
        "",
        f"Written by `make soak RUNS={planned} SEED={seed}{f' SHARDS={shards}' if shards > 1 else ''}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (bench/soak.py). Replay: the same RUNS and SEED.",
        "",
        *([f"**{status}: {len(results)} of {planned} planned runs done: no pass.**", ""] if status else []),
        "| runs | faults injected | invariant violations | duration | mean run |",
        "|---|---|---|---|---|",
        f"| {len(results)} | {sum(faults.values())} | {len(violations)} | {seconds / 60:.1f} min | "
        f"{sum(r.seconds for r in results) / max(len(results), 1):.0f} s |",
        "",
        "## Faults injected, by kind",
        "",
        "| fault | runs |",
        "|---|---|",
        *(f"| {kind} | {faults.get(kind, 0)} |" for kind in (*API_FAULTS, *PROCESS_FAULTS, *USER_FAULTS)),
        "",
        "## Invariants (after every run, and at the end)",
        "",
        "- the run ends as its faults call for (`failed` after a user's mark-failed or a bad dataset, else "
        "`success`);",
        "- exactly one Vertex job per run (none for a bad dataset): re-attached, never resubmitted;",
        "- nothing registered from a failed tuning; no job of a failed run left billing (on_kill or the "
        "reconciler cancels it);",
        "- the prepared data intact (SHA-256 and line counts of report.json); no task stuck;",
        "- at the end, after one reconciler run, a dry run of the reconciler finds nothing left to cancel "
        "or undeploy.",
        "",
        f"End of soak: the reconciler cancelled {cleanup.get('cancelled', 0)} and undeployed "
        f"{cleanup.get('undeployed', 0)}; then nothing was left.",
        "",
        "## Runs",
        "",
        "| # | logical date | faults | expected | ended | jobs | seconds | violations |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r.plan.index} | {r.plan.logical_date} | {', '.join(r.plan.faults) or '-'} | "
            f"{r.plan.expected_state} | {r.state} | {'; '.join(r.jobs) or '-'} | {r.seconds:.0f} | "
            f"{'; '.join(r.violations) or '-'} |"
            for r in results
        ),
    ]
    if final:
        lines += ["", "## At the end", "", *(f"- {v}" for v in final)]
    return "\n".join(lines) + "\n"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_on_signals() -> None:
    """SIGTERM, and SIGINT even where a shell started the soak in the background with SIGINT ignored,
    stop it as Ctrl-C does: the final checks run, the stack is stopped, the report says so."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


#: What the end-of-soak reconciler run did, as counted in the report.
CLEANUP_COUNTS = ("cancelled", "undeployed")


@dataclass
class Outcome:
    """What one stack's soak, or several stacks' merged, leaves: runs, final problems, cleanup, status."""

    results: list[RunResult] = field(default_factory=list)
    final: list[str] = field(default_factory=list)
    cleanup: dict[str, int] = field(default_factory=dict)
    status: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        results = [
            RunResult(**{**r, "plan": RunPlan(**{**r["plan"], "faults": tuple(r["plan"]["faults"])})})
            for r in data["results"]
        ]
        return cls(results, list(data["final"]), dict(data["cleanup"]), data["status"])

    @classmethod
    def merged(cls, outcomes: list[Outcome]) -> Outcome:
        # The reconciler's report also holds lists and dicts (found, actions): only its counts add up.
        cleanup = {key: sum(int(o.cleanup.get(key, 0)) for o in outcomes) for key in CLEANUP_COUNTS}
        return cls(
            sorted((r for o in outcomes for r in o.results), key=lambda r: r.plan.index),
            [v for o in outcomes for v in o.final],
            cleanup,
            next((o.status for o in outcomes if o.status), ""),
        )


def run_on_one_stack(plans: list[RunPlan], progress: Callable[[Outcome], None], prefix: str = "") -> Outcome:
    """`plans` on a stack of its own; `progress` gets the outcome so far after every run."""
    outcome = Outcome()

    def after_each(results: list[RunResult]) -> None:
        outcome.results = list(results)
        progress(outcome)

    with tempfile.TemporaryDirectory(prefix="aria-soak-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            try:
                soak(stack, plans, echo=lambda line: print(prefix + line, flush=True), after_each=after_each)
            except KeyboardInterrupt:
                outcome.status = "Interrupted"
                print(f"{prefix}soak interrupted: checking what the runs so far left", flush=True)
            outcome.final = final_checks(stack)
            outcome.cleanup = dict(getattr(stack, "final_cleanup", {}))
        finally:
            stack.stop()
    return outcome


#: Between two shards' starts: each picks free ports for a dozen processes, and two doing it at once
#: can pick the same one.
STAGGER_SECONDS = 20.0


def _write_json(path: Path, outcome: Outcome) -> None:
    """Atomically: the parent reads it while the child runs."""
    import json

    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(outcome.to_json()))
    partial.replace(path)


def _child_command(args: argparse.Namespace, index: int, path: Path) -> list[str]:
    shard = ["--shard", f"{index}/{args.shards}", "--json", str(path)]
    return [sys.executable, "-m", "bench.soak", "--runs", str(args.runs), "--seed", str(args.seed), *shard]


def run_sharded(args: argparse.Namespace, progress: Callable[[Outcome], None]) -> Outcome:
    """`--shards K`: K stacks side by side, each a child process running every K-th run of the plan (the
    DAG runs one run at a time, so one stack cannot go faster); their outcomes merged."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory(prefix="aria-soak-shards-") as tmp:
        files = [Path(tmp) / f"shard-{i}.json" for i in range(args.shards)]
        children: list[subprocess.Popen[bytes]] = []
        for i, path in enumerate(files):
            if children:
                time.sleep(STAGGER_SECONDS)
            children.append(subprocess.Popen(_child_command(args, i, path)))

        def read() -> Outcome:
            return Outcome.merged([Outcome.from_json(json.loads(f.read_text())) for f in files if f.exists()])

        try:
            while any(child.poll() is None for child in children):
                time.sleep(10)
                progress(read())
        except KeyboardInterrupt:
            for child in children:
                child.send_signal(signal.SIGTERM)  # each runs its final checks and stops its stack
            for child in children:
                child.wait()
        outcome = read()
        crashed = [
            i + 1 for i, c in enumerate(children) if c.returncode not in (0, 1) or not files[i].exists()
        ]
        if crashed and not outcome.status:
            outcome.status = f"Shard(s) {', '.join(map(str, crashed))} ended without an outcome"
        return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "SOAK.md")
    parser.add_argument("--shards", type=int, default=1, help="stacks side by side (each every K-th run)")
    parser.add_argument("--shard", help=argparse.SUPPRESS)  # I/K: a child of --shards
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # where a child writes its outcome
    args = parser.parse_args(argv)
    _stop_on_signals()
    plans = plan(args.runs, args.seed)
    if args.shard:
        index, count = (int(n) for n in args.shard.split("/"))
        outcome = run_on_one_stack(
            plans[index::count],
            lambda so_far: _write_json(args.json, so_far),
            f"[shard {index + 1}/{count}] ",
        )
        _write_json(args.json, outcome)
        return 1 if outcome.status or outcome.final or any(r.violations for r in outcome.results) else 0
    print(f"Fault plan (seed {args.seed}):")
    for run in plans:
        print(f"  run {run.index} {run.logical_date}: {', '.join(run.faults) or 'no fault'} "
              f"-> {run.expected_state}, {run.expected_jobs} job(s)")  # fmt: skip
    started = time.monotonic()

    def write(outcome: Outcome, status: str) -> None:
        """Rewritten after every run, so a soak stopped early still leaves its figures."""
        seconds = time.monotonic() - started
        text = report(
            args.seed,
            outcome.results,
            outcome.final,
            seconds,
            outcome.cleanup,
            len(plans),
            status,
            args.shards,
        )
        args.out.write_text(text)

    def progress(outcome: Outcome) -> None:
        write(outcome, "In progress")

    outcome = run_sharded(args, progress) if args.shards > 1 else run_on_one_stack(plans, progress)
    if not outcome.status and len(outcome.results) < len(plans):
        outcome.status = "Stopped early"
    write(outcome, outcome.status)
    bad = sum(len(r.violations) for r in outcome.results) + len(outcome.final)
    print(f"{len(outcome.results)} of {len(plans)} runs, {bad} invariant violations; written to {args.out}")
    return 1 if bad or outcome.status else 0


if __name__ == "__main__":
    sys.exit(main())
