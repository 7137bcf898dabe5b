"""The reconcile operator: find our Vertex work no live task stands behind, and stop paying for it.

It lists the jobs that carry our run-key label and the deployed models of the versions our registry
operator made, reads task-instance states through the Task SDK (the Execution API a task may call),
lets `aria_tuning.reconcile` judge each one, cancels or undeploys (unless `dry_run`), and returns the
report. Nothing without our labels is ever touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from airflow.sdk import Context

from aria_tuning import reconcile as rc
from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import TuningMethod
from aria_tuning.errors import ConfigurationError, VertexError, VertexNotFound
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.jobs import TuningJobHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.resources import label_value


class TaskStates(Protocol):
    """Where task-instance states come from: the Task SDK in a task, a plain table in unit tests."""

    def of_dag(self, dag_id: str) -> Mapping[str, Mapping[str, Any]]:
        """`{run_id: {task_id or task_id_<map_index>: state}}` for every task instance of `dag_id`."""

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The state of one DAG run."""


class SdkTaskStates:
    """Task states from the API server through the task's supervisor (no metadata-DB access in tasks).

    `RuntimeTaskInstance.get_task_states` / `get_dagrun_state` send GetTaskStates / GetDagRunState to
    the supervisor, which asks the Execution API (`GET /task-instances/states`: every TI of the DAG when
    no task, run or date is given; airflow/api_fastapi/execution_api/routes/task_instances.py, 3.3.2).
    """

    def of_dag(self, dag_id: str) -> Mapping[str, Mapping[str, Any]]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        return RuntimeTaskInstance.get_task_states(dag_id=dag_id)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        return str(RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id))


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {value!r}")


def _minutes(value: object) -> dt.timedelta:
    try:
        minutes = float(str(value))
    except ValueError as exc:
        raise ConfigurationError(f"grace_minutes must be a number, got {value!r}") from exc
    if minutes < 0:
        raise ConfigurationError(f"grace_minutes must be 0 or more, got {minutes:g}")
    return dt.timedelta(minutes=minutes)


class VertexReconcileOperator(VertexBaseOperator):
    """Cancel our jobs whose task is gone or finished; undeploy our idle, non-production versions.

    `dag_ids` are the DAGs whose tuning tasks label jobs (a job's `aria-dag` label is label-safe, so
    lossy: it is matched against these). Returns the report of `aria_tuning.reconcile.report`.
    """

    # `dry_run` is stored as `dry_run_param`: BaseOperator.dry_run() is a method of its own.
    template_fields: Sequence[str] = ("project_id", "regions", "dag_ids", "dry_run_param", "grace_minutes")
    ui_color = "#fce8e6"

    def __init__(
        self,
        *,
        project_id: str | None = None,
        regions: Sequence[str] | None = None,
        dag_ids: Sequence[str] = (),
        dry_run: bool | str = False,
        grace_minutes: float | str = 15,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_id = project_id
        self.regions = list(regions) if regions is not None else rc.all_regions()
        self.dag_ids = list(dag_ids)
        self.dry_run_param = dry_run
        self.grace_minutes = grace_minutes

    def task_states(self) -> TaskStates:
        return SdkTaskStates()

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            dry_run, grace = _as_bool("dry_run", self.dry_run_param), _minutes(self.grace_minutes)
            project = self.project_id or self.hook(TuningJobHook).project_id
            if not project:
                raise ConfigurationError("no GCP project: pass project_id or set `project` on the connection")
        except ConfigurationError as exc:
            raise fail_without_retry(exc) from exc
        now = dt.datetime.now(dt.UTC)
        jobs = self._our_jobs(project)
        deployments, ignored = self._our_deployments(project)
        states = self.task_states()
        inventory = self._inventory(states, jobs, deployments)
        latest = rc.latest_attempts(jobs)

        verdicts = []
        for job in jobs:
            task, run_state = inventory.by_key.get(job.run_key), None
            if task is not None and task.state is None and job.state not in vj.TERMINAL:
                # Only a task that has not started is judged by its DAG run's state too.
                run_state = states.run_state(task.dag_id, task.run_id)
            verdict = rc.judge_job(job, inventory, latest[job.run_key], now, grace, run_state)
            verdicts.append(self._act_on_job(job, verdict, dry_run))
        verdicts += [
            self._act_on_deployment(d, rc.judge_deployment(d, inventory, now, grace), dry_run)
            for d in deployments
        ]

        for line in rc.summary_lines(verdicts, dry_run):
            self.log.info("%s", line)
        result = rc.report(verdicts, dry_run=dry_run, grace=grace, ignored=ignored)
        self.log.info(
            "Reconciled %d jobs and %d deployments: %d cancelled, %d undeployed%s",
            result["found"]["jobs"],
            result["found"]["deployments"],
            result["cancelled"],
            result["undeployed"],
            " (dry run: nothing changed)" if dry_run else "",
        )
        failed = [v for v in verdicts if v.outcome.startswith("failed")]
        if failed:
            raise VertexError(
                f"{len(failed)} reconcile actions failed: "
                + "; ".join(f"{v.resource}: {v.outcome}" for v in failed)
            )
        return result

    # --- inventory ---------------------------------------------------------------------------------

    def _our_jobs(self, project: str) -> list[rc.LabelledJob]:
        hook = self.hook(TuningJobHook)
        found = []
        for region in self.regions:
            parent = f"projects/{project}/locations/{region}"
            for method in TuningMethod:
                for job in hook.list_ours(parent, method):
                    labels = dict(job.labels)
                    if not rc.is_our_job(labels):  # the hook filters too; the rule is the reconciler's
                        continue
                    found.append(
                        rc.LabelledJob(
                            name=str(job.name),
                            method=str(method),
                            state=vj.short_state(job.state),
                            labels=labels,
                            create_time=job.create_time or None,
                        )
                    )
        return found

    def _our_deployments(self, project: str) -> tuple[list[rc.Deployment], int]:
        """Deployed models of versions we registered; and how many deployed models were not ours."""
        endpoints, models = self.hook(EndpointHook), self.hook(ModelRegistryHook)
        found, ignored = [], 0
        for region in self.regions:
            for endpoint in endpoints.list_endpoints(f"projects/{project}/locations/{region}"):
                split = dict(endpoint.traffic_split)
                for deployed in endpoint.deployed_models:
                    version = f"{deployed.model.split('@', 1)[0]}@{deployed.model_version_id or '1'}"
                    try:
                        model = models.get_model(version)
                    except VertexNotFound:
                        ignored += 1  # a deleted version: nothing of ours to judge it by
                        continue
                    labels = dict(model.labels)
                    if not rc.is_our_model(labels):
                        ignored += 1
                        continue
                    found.append(
                        rc.Deployment(
                            endpoint=str(endpoint.name),
                            deployed_model_id=str(deployed.id),
                            model_version=version,
                            traffic=int(split.get(str(deployed.id), 0)),
                            aliases=tuple(model.version_aliases),
                            labels=labels,
                            create_time=deployed.create_time or None,
                        )
                    )
        return found, ignored

    def _inventory(
        self, states: TaskStates, jobs: list[rc.LabelledJob], deployments: list[rc.Deployment]
    ) -> rc.Inventory:
        """Every task record of the configured DAGs and of DAG ids our labels name as they are."""
        dag_ids = set(self.dag_ids)
        labelled = {j.labels.get(vj.LABEL_DAG) for j in jobs} | {
            d.labels.get(vj.LABEL_DAG) for d in deployments
        }
        known_labels = {label_value(d) for d in dag_ids}
        dag_ids |= {label for label in labelled if label and label not in known_labels}
        records = []
        for dag_id in sorted(dag_ids):
            records += rc.task_records(dag_id, states.of_dag(dag_id))
        return rc.Inventory.of(records)

    # --- actions -----------------------------------------------------------------------------------

    def _act_on_job(self, job: rc.LabelledJob, verdict: rc.Verdict, dry_run: bool) -> rc.Verdict:
        if verdict.action != rc.CANCEL:
            return verdict
        if dry_run:
            return _with_outcome(verdict, "dry run: not cancelled")
        jobs = self.hook(TuningJobHook)
        try:
            jobs.cancel_job(job.name, TuningMethod(job.method))
        except VertexError as exc:
            # Vertex refuses to cancel a job that ended (or began cancelling) since it was listed,
            # e.g. by the trigger's on_kill: then there is nothing left to do.
            try:
                now = vj.short_state(jobs.get_job(job.name, TuningMethod(job.method)).get("state", ""))
            except VertexError:
                now = ""
            if now in vj.TERMINAL or now in rc.STOPPING:
                return _with_outcome(verdict, f"already {now}")
            return _with_outcome(verdict, f"failed: {exc}")
        return _with_outcome(verdict, "cancel requested")

    def _act_on_deployment(self, deployment: rc.Deployment, verdict: rc.Verdict, dry_run: bool) -> rc.Verdict:
        if verdict.action != rc.UNDEPLOY:
            return verdict
        if dry_run:
            return _with_outcome(verdict, "dry run: not undeployed")
        try:
            operation = self.hook(EndpointHook).undeploy(deployment.endpoint, deployment.deployed_model_id)
        except VertexError as exc:
            return _with_outcome(verdict, f"failed: {exc}")
        return _with_outcome(verdict, f"undeploy started ({operation})")


def _with_outcome(verdict: rc.Verdict, outcome: str) -> rc.Verdict:
    return dataclasses.replace(verdict, outcome=outcome)
