"""The reconciler's rules: which of our Vertex jobs and deployments no live task stands behind any more.

Pure functions over plain values, no Airflow and no Google import: the reconcile operator gathers the
inventory (our labelled jobs, the deployed models of our registered versions, task-instance states),
asks `judge_job` / `judge_deployment` what to do, acts, and reports with `report`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import get_model, model_names
from aria_tuning.resources import label_value

#: Task-instance states in which a task still owns its job: it runs, waits in a triggerer, or will run
#: again (a retry or a reschedule re-attaches to the same job through its run key).
LIVE_TASK_STATES = frozenset(
    {"running", "deferred", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "restarting"}
)
#: DAG-run states after which a task that never started will not start.
FINISHED_RUN_STATES = frozenset({"success", "failed"})
#: A job Vertex is already stopping: cancelling it again changes nothing.
STOPPING = frozenset({"CANCELLING"})
#: The alias the quality gate gives the version that serves production (operators/quality.py).
PRODUCTION_ALIAS = "production"

CANCEL, UNDEPLOY, KEEP = "cancel", "undeploy", "keep"


def all_regions() -> list[str]:
    """Every region the catalog tunes in: where our jobs and endpoints can be."""
    regions: set[str] = set()
    for name in model_names():
        model = get_model(name)
        regions.update(spec.region for spec in model.accelerators.values())
        regions.update(model.regions)
    return sorted(regions)


@dataclass(frozen=True)
class TaskRecord:
    """One task instance as Airflow has it now (`state` None: not started yet)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None

    @property
    def run_key(self) -> str:
        return vj.run_key(self.dag_id, self.run_id, self.task_id, self.map_index)

    @property
    def identity(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"


_MAPPED = re.compile(r"^(?P<task>.+)_(?P<index>\d+)$")


def task_records(dag_id: str, states: Mapping[str, Mapping[str, Any]]) -> list[TaskRecord]:
    """The records of one DAG from the Execution API's task states (`{run_id: {key: state}}`).

    A mapped task's key is `task_id_<map_index>` there, which an unmapped `tune_2` also looks like:
    both readings are kept, and only the one whose run key a job carries ever matches.
    """
    records = []
    for run_id, tasks in states.items():
        for key, raw in tasks.items():
            state = None if raw is None else str(getattr(raw, "value", raw))
            records.append(TaskRecord(dag_id, run_id, key, -1, state))
            if mapped := _MAPPED.match(key):
                records.append(TaskRecord(dag_id, run_id, mapped["task"], int(mapped["index"]), state))
    return records


@dataclass(frozen=True)
class LabelledJob:
    """A pipeline job or tuning job as listed, reduced to what the rules read."""

    name: str
    method: str
    state: str  # short: RUNNING, SUCCEEDED, ...
    labels: Mapping[str, str]
    create_time: dt.datetime | None

    @property
    def run_key(self) -> str:
        return self.labels.get(vj.LABEL_RUN_KEY, "")

    @property
    def attempt(self) -> int:
        raw = self.labels.get(vj.LABEL_ATTEMPT, "1") or "1"
        return int(raw) if raw.isdigit() else 0


def is_our_job(labels: Mapping[str, str]) -> bool:
    """Only a job the tuning operator labelled is ever touched."""
    return bool(labels.get(vj.LABEL_RUN_KEY))


@dataclass(frozen=True)
class Deployment:
    """A model deployed on an endpoint, with what the registry says about its version."""

    endpoint: str
    deployed_model_id: str
    model_version: str  # projects/.../models/ID@VERSION
    traffic: int  # the endpoint's traffic share for it, in percent
    aliases: tuple[str, ...]
    labels: Mapping[str, str]
    create_time: dt.datetime | None

    @property
    def resource(self) -> str:
        return f"{self.endpoint}/deployedModels/{self.deployed_model_id}"


def is_our_model(labels: Mapping[str, str]) -> bool:
    """A model version the registry operator made (it names the tuning job it came from)."""
    return bool(labels.get(vj.LABEL_TUNING_JOB))


@dataclass(frozen=True)
class Verdict:
    """What to do about one resource, and why."""

    kind: str  # "job" | "deployment"
    resource: str
    action: str  # CANCEL | UNDEPLOY | KEEP
    reason: str
    task: str | None = None  # dag_id/run_id/task_id it was matched to
    outcome: str = ""  # filled in by the operator: done, dry run, or what failed

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _age(created: dt.datetime | None, now: dt.datetime) -> dt.timedelta | None:
    if created is None:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return now - created


def _within_grace(created: dt.datetime | None, now: dt.datetime, grace: dt.timedelta) -> str | None:
    """Why a resource is too young to judge, or None once its grace period is over."""
    age = _age(created, now)
    if age is None:
        return "its creation time is unknown: left alone"
    if age < grace:
        minutes = age.total_seconds() / 60
        return f"created {minutes:.1f} min ago, within the {grace.total_seconds() / 60:g} min grace period"
    return None


@dataclass
class Inventory:
    """Task records of the DAGs we could read, indexed by run key; which DAG ids are known."""

    by_key: dict[str, TaskRecord] = field(default_factory=dict)
    known_dags: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, records: Iterable[TaskRecord]) -> Inventory:
        inventory = cls()
        for record in records:
            inventory.by_key[record.run_key] = record
            inventory.known_dags.add(record.dag_id)
        return inventory

    def dag_of(self, labels: Mapping[str, str]) -> str | None:
        """The known DAG a resource's `aria-dag` label names (label values are lossy: compare them so)."""
        wanted = labels.get(vj.LABEL_DAG)
        matches = [dag for dag in self.known_dags if wanted and label_value(dag) == wanted]
        return matches[0] if len(matches) == 1 else None

    def run_is_live(self, labels: Mapping[str, str]) -> bool:
        """Whether any task of the DAG run named by `aria-dag` / `aria-dag-run` labels is still live."""
        dag, run = labels.get(vj.LABEL_DAG), labels.get(vj.LABEL_DAG_RUN)
        return any(
            label_value(r.dag_id) == dag and label_value(r.run_id) == run and r.state in LIVE_TASK_STATES
            for r in self.by_key.values()
        )


def latest_attempts(jobs: Iterable[LabelledJob]) -> dict[str, int]:
    """The highest attempt number seen per run key (the one its task re-attaches to)."""
    latest: dict[str, int] = {}
    for job in jobs:
        latest[job.run_key] = max(latest.get(job.run_key, 0), job.attempt)
    return latest


def judge_job(
    job: LabelledJob,
    inventory: Inventory,
    latest_attempt: int,
    now: dt.datetime,
    grace: dt.timedelta,
    run_state: str | None = None,
) -> Verdict:
    """Cancel a still-running job of ours only when no live task stands behind it, after the grace period.

    `run_state` is the state of the matched task's DAG run, needed only when the task has no state.
    """

    def verdict(action: str, reason: str, task: TaskRecord | None = None) -> Verdict:
        return Verdict("job", job.name, action, reason, task.identity if task else None)

    task = inventory.by_key.get(job.run_key)
    if job.state in vj.TERMINAL:
        return verdict(KEEP, f"ended {job.state}", task)
    if job.state in STOPPING:
        return verdict(KEEP, f"already {job.state}", task)
    if young := _within_grace(job.create_time, now, grace):
        return verdict(KEEP, young, task)
    if job.attempt < latest_attempt:
        return verdict(CANCEL, f"superseded by attempt {latest_attempt} of the same task", task)
    if task is None:
        dag = inventory.dag_of(job.labels)
        if dag is not None and job.labels.get(vj.LABEL_TASK):
            return verdict(CANCEL, f"no task instance of {dag} carries its run key (its DAG run is gone)")
        return verdict(KEEP, "matches no task instance of a DAG we can read: left alone")
    if task.state in LIVE_TASK_STATES:
        return verdict(KEEP, f"its task is {task.state}", task)
    if task.state is None and run_state not in FINISHED_RUN_STATES:
        return verdict(KEEP, f"its task has not started yet (DAG run {run_state or 'unknown'})", task)
    state = task.state or f"never started in a {run_state} DAG run"
    return verdict(CANCEL, f"its task is {state}: nothing waits for this job", task)


def judge_deployment(
    deployment: Deployment, inventory: Inventory, now: dt.datetime, grace: dt.timedelta
) -> Verdict:
    """Undeploy a version of ours that serves no traffic and is not production (it bills node-hours)."""

    def verdict(action: str, reason: str) -> Verdict:
        run = deployment.labels.get(vj.LABEL_DAG_RUN)
        task = f"{deployment.labels.get(vj.LABEL_DAG)}/{run}" if run else None
        return Verdict("deployment", deployment.resource, action, reason, task)

    if deployment.traffic > 0:
        return verdict(KEEP, f"serves {deployment.traffic}% of the endpoint's traffic")
    if PRODUCTION_ALIAS in deployment.aliases:
        return verdict(KEEP, f"{deployment.model_version} holds the {PRODUCTION_ALIAS} alias")
    if young := _within_grace(deployment.create_time, now, grace):
        return verdict(KEEP, young)
    if inventory.run_is_live(deployment.labels):
        return verdict(KEEP, "its DAG run is still working on it (deploy or quality gate)")
    return verdict(UNDEPLOY, f"{deployment.model_version} serves no traffic and is not {PRODUCTION_ALIAS}")


def report(verdicts: list[Verdict], *, dry_run: bool, grace: dt.timedelta, ignored: int) -> dict[str, Any]:
    """The run's report (its XCom): what was found, what was done or would be, and why."""
    acted = [v for v in verdicts if v.action != KEEP]
    return {
        "dry_run": dry_run,
        "grace_minutes": grace.total_seconds() / 60,
        "found": {
            "jobs": sum(v.kind == "job" for v in verdicts),
            "deployments": sum(v.kind == "deployment" for v in verdicts),
            "unlabelled_ignored": ignored,
        },
        "cancelled": sum(v.action == CANCEL for v in acted),
        "undeployed": sum(v.action == UNDEPLOY for v in acted),
        "actions": [v.to_dict() for v in acted],
        "kept": [v.to_dict() for v in verdicts if v.action == KEEP],
    }


def summary_lines(verdicts: list[Verdict], dry_run: bool) -> list[str]:
    """One line per resource, actions first, for the task log."""
    prefix = "DRY RUN, would " if dry_run else ""
    ordered = sorted(verdicts, key=lambda v: (v.action == KEEP, v.kind, v.resource))
    return [
        f"{prefix if v.action != KEEP else ''}{v.action} {v.kind} {v.resource}: {v.reason}"
        + (f" [{v.task}]" if v.task else "")
        + (f" -> {v.outcome}" if v.outcome else "")
        for v in ordered
    ]
