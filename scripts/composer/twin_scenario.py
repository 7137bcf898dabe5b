"""What the twin proves once it runs: the DAG end to end as a backfill over two dataset versions, with the
tune and deploy tasks deferring to (and resuming from) a triggerer, and the console links rendered by the
API server; gathered into one report that `make composer-twin` prints and the tests assert on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from scripts.composer.twin import ComposerTwin

DAG_ID = "aria_text_tuning"
#: Two consecutive weekly runs from the DAG's start date, each on its own sample version (README).
BACKFILL_DATES = ("2025-06-01", "2025-06-08")
DEFERRING_TASKS = ("tune", "deploy_model")
LINKED_TASKS = ("tune", "register_model", "deploy_model")
#: Small, fixed step count: the job's length is the emulator clock's (0.5 s a step: ~10 s).
TRAIN_STEPS = 20


@dataclass
class RunReport:
    run_id: str
    logical_date: str
    state: str
    task_states: dict[str, str | None]
    deferred_seen: set[str] = field(default_factory=set)  # tasks observed in the `deferred` state
    trigger_jobs: dict[str, list[int]] = field(default_factory=dict)  # task -> triggerer job ids that ran it
    links: dict[str, dict[str, str | None]] = field(default_factory=dict)


@dataclass
class TwinReport:
    runs: list[RunReport]
    triggerer_jobs: list[int]  # ids of the alive triggerer jobs (one per triggerer process)
    plugins: list[str]
    seconds: float

    def lines(self) -> list[str]:
        out = [
            f"backfill of {len(self.runs)} dataset versions in {self.seconds:.0f}s; triggerer jobs alive: "
            f"{self.triggerer_jobs}; API server plugins: {', '.join(self.plugins)}"
        ]
        for run in self.runs:
            out.append(f"  {run.logical_date} {run.run_id}: {run.state}")
            for task in DEFERRING_TASKS:
                seen = "deferred" if task in run.deferred_seen else "never seen deferred"
                jobs = ", ".join(f"triggerer job {job}" for job in run.trigger_jobs.get(task, [])) or "none"
                out.append(f"    {task}: {seen}; its trigger ran in {jobs}")
            for task, links in run.links.items():
                out.append(f"    links of {task}: {links}")
        return out


def clear_scheduled_runs(twin: ComposerTwin, timeout: float = 60) -> list[str]:
    """Fail the scheduler's own run of the latest weekly interval (its dataset never comes, and under
    max_active_runs=1 it would hold the backfill back); waits for it to exist first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if failed := twin.fail_scheduled_runs(DAG_ID):
            return failed
        time.sleep(1)
    return []


def run_backfill(
    twin: ComposerTwin, dates: tuple[str, ...] = BACKFILL_DATES, timeout: float = 900
) -> TwinReport:
    from scripts.sample_data import sample_versions, upload_version

    started = time.monotonic()
    clear_scheduled_runs(twin)
    for date, version in zip(dates, sample_versions(), strict=False):
        upload_version(version, as_version=date)
    twin._request(
        "POST",
        "/api/v2/backfills",
        {
            "dag_id": DAG_ID,
            "from_date": f"{dates[0]}T00:00:00Z",
            "to_date": f"{dates[-1]}T00:00:00Z",
            "max_active_runs": 1,
            "run_backwards": False,
            "dag_run_conf": {"train_steps": TRAIN_STEPS},
            "reprocess_behavior": "completed",
        },
    )
    runs = _watch(twin, dates, timeout)
    for run in runs:
        run.trigger_jobs = {task: _trigger_jobs(twin, run.run_id, task) for task in DEFERRING_TASKS}
        run.links = {task: twin.links(run.run_id, task) for task in LINKED_TASKS}
    alive = sorted(int(job["id"]) for job in twin.alive_triggerers())
    return TwinReport(runs, alive, twin.plugins(), time.monotonic() - started)


def _watch(twin: ComposerTwin, dates: tuple[str, ...], timeout: float) -> list[RunReport]:
    """Poll the backfill's runs until all finish, noting every task seen deferred on the way."""
    wanted = {f"{d}T00:00:00Z": d for d in dates}
    reports: dict[str, RunReport] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in twin.runs(DAG_ID):
            date = wanted.get(str(run["logical_date"]).replace("+00:00", "Z"))
            if date is None or run["run_type"] != "backfill":
                continue
            states = twin.task_states(run["dag_run_id"], DAG_ID)
            report = reports.setdefault(
                run["dag_run_id"], RunReport(run["dag_run_id"], date, run["state"], states)
            )
            report.state, report.task_states = run["state"], states
            report.deferred_seen |= {task for task, state in states.items() if state == "deferred"}
        if len(reports) == len(dates) and all(r.state in ("success", "failed") for r in reports.values()):
            return sorted(reports.values(), key=lambda r: r.logical_date)
        time.sleep(0.5)
    raise TimeoutError(
        f"backfill of {dates} not finished within {timeout:.0f}s: "
        + "; ".join(f"{r.logical_date} {r.state} {r.task_states}" for r in reports.values())
    )


def _trigger_jobs(twin: ComposerTwin, run_id: str, task_id: str) -> list[int]:
    """The triggerer jobs that ran this task's triggers: Airflow writes a trigger's log next to the task's,
    as `attempt=N.log.trigger.<triggerer job id>.log`."""
    folder = twin.base / "airflow" / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    return sorted({int(path.name.rsplit(".", 2)[-2]) for path in folder.glob("attempt=*.log.trigger.*.log")})
