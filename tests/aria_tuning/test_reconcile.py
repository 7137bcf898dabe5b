"""The reconciler: its rules on plain values, then the operator against the Vertex emulator.

The operator's task states come from a plain table here (`TableStates`); on a real Airflow they come
through the Task SDK, which tests/faults/test_two_triggerers.py exercises.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from aria_tuning import reconcile as rc
from aria_tuning import vertex_jobs as vj
from aria_tuning.resources import label_value

from tests.aria_tuning.conftest import LONG_STEPS, Emulator, new_ti, submit, tuning_operator

NOW = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(minutes=15)
OLD = NOW - dt.timedelta(hours=1)
DAG, RUN, TASK = "aria_text_tuning", "manual__2025-07-01T10:00:00+00:00", "tune"


def job(state: str = "RUNNING", attempt: int = 1, created: dt.datetime | None = OLD, **labels: str) -> Any:
    key = vj.run_key(DAG, RUN, TASK, -1)
    return rc.LabelledJob(
        name=f"projects/p/locations/europe-west4/pipelineJobs/aria-tune-{key}-a{attempt}",
        method="pipeline",
        state=state,
        labels={
            vj.LABEL_RUN_KEY: key,
            vj.LABEL_ATTEMPT: str(attempt),
            **vj.identity_labels(DAG, RUN, TASK),
            **labels,
        },
        create_time=created,
    )


def inventory(state: str | None, run_id: str = RUN, dag_id: str = DAG) -> rc.Inventory:
    return rc.Inventory.of(rc.task_records(dag_id, {run_id: {TASK: state, "deploy_model": None}}))


# --- jobs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(rc.LIVE_TASK_STATES))
def test_a_job_whose_task_is_live_is_kept(state: str) -> None:
    verdict = rc.judge_job(job(), inventory(state), 1, NOW, GRACE)
    assert (verdict.action, verdict.task) == (rc.KEEP, f"{DAG}/{RUN}/{TASK}")
    assert state in verdict.reason


@pytest.mark.parametrize("state", ["failed", "success", "upstream_failed", "skipped", "removed"])
def test_a_running_job_whose_task_ended_is_cancelled(state: str) -> None:
    verdict = rc.judge_job(job(), inventory(state), 1, NOW, GRACE)
    assert verdict.action == rc.CANCEL and f"its task is {state}" in verdict.reason


@pytest.mark.parametrize("job_state", ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", "CANCELLING"])
def test_a_finished_or_stopping_job_is_never_cancelled(job_state: str) -> None:
    assert rc.judge_job(job(job_state), inventory("failed"), 1, NOW, GRACE).action == rc.KEEP


@pytest.mark.parametrize("job_state", ["PENDING", "QUEUED", "RUNNING", "PAUSED"])
def test_every_unfinished_job_state_is_judged(job_state: str) -> None:
    assert rc.judge_job(job(job_state), inventory("failed"), 1, NOW, GRACE).action == rc.CANCEL


def test_a_job_younger_than_the_grace_period_is_kept_whatever_its_task() -> None:
    young = job(created=NOW - dt.timedelta(minutes=3))
    verdict = rc.judge_job(young, inventory("failed"), 1, NOW, GRACE)
    assert verdict.action == rc.KEEP and "grace period" in verdict.reason
    assert rc.judge_job(young, inventory("failed"), 1, NOW, dt.timedelta(0)).action == rc.CANCEL
    unknown_age = job(created=None)
    assert rc.judge_job(unknown_age, inventory("failed"), 1, NOW, dt.timedelta(0)).action == rc.KEEP


def test_a_task_not_started_yet_keeps_its_job_until_its_run_is_over() -> None:
    assert rc.judge_job(job(), inventory(None), 1, NOW, GRACE, run_state="running").action == rc.KEEP
    assert rc.judge_job(job(), inventory(None), 1, NOW, GRACE, run_state=None).action == rc.KEEP
    ended = rc.judge_job(job(), inventory(None), 1, NOW, GRACE, run_state="failed")
    assert ended.action == rc.CANCEL and "failed DAG run" in ended.reason


def test_a_job_of_a_deleted_run_of_a_known_dag_is_cancelled() -> None:
    other_run = inventory("success", run_id="manual__2025-06-01T00:00:00+00:00")
    verdict = rc.judge_job(job(), other_run, 1, NOW, GRACE)
    assert verdict.action == rc.CANCEL and "DAG run is gone" in verdict.reason


def test_a_job_that_matches_no_readable_dag_is_left_alone() -> None:
    other_dag = inventory("failed", dag_id="someone_elses_dag")
    assert rc.judge_job(job(), other_dag, 1, NOW, GRACE).action == rc.KEEP
    # A job labelled before the identity labels existed: its run key is all we have.
    legacy = rc.LabelledJob("projects/p/locations/l/pipelineJobs/j", "pipeline", "RUNNING", {
        vj.LABEL_RUN_KEY: "0" * 20, vj.LABEL_ATTEMPT: "1"}, OLD)  # fmt: skip
    assert rc.judge_job(legacy, inventory("failed"), 1, NOW, GRACE).action == rc.KEEP


def test_an_older_attempt_still_running_is_superseded() -> None:
    jobs = [job(attempt=1), job(attempt=2)]
    latest = rc.latest_attempts(jobs)
    assert latest == {jobs[0].run_key: 2}
    verdicts = [rc.judge_job(j, inventory("deferred"), latest[j.run_key], NOW, GRACE) for j in jobs]
    assert [v.action for v in verdicts] == [rc.CANCEL, rc.KEEP]
    assert "superseded by attempt 2" in verdicts[0].reason


def test_task_records_read_both_mapped_and_unmapped_keys() -> None:
    records = rc.task_records(DAG, {RUN: {"tune": "deferred", "tune_3": "failed", "deploy": None}})
    keys = {(r.task_id, r.map_index, r.state) for r in records}
    assert {("tune", -1, "deferred"), ("tune", 3, "failed"), ("tune_3", -1, "failed")} <= keys
    by_key = rc.Inventory.of(records).by_key
    assert by_key[vj.run_key(DAG, RUN, "tune", 3)].state == "failed"


def test_the_dag_label_is_matched_lossily_but_only_when_unambiguous() -> None:
    labels = vj.identity_labels("Aria.Text", RUN, TASK)
    assert labels[vj.LABEL_DAG] == "aria-text"
    assert (
        rc.Inventory.of(rc.task_records("Aria.Text", {RUN: {TASK: "failed"}})).dag_of(labels) == "Aria.Text"
    )
    both = rc.task_records("Aria.Text", {RUN: {TASK: "failed"}}) + rc.task_records("aria-text", {RUN: {}})
    assert rc.Inventory.of([*both, rc.TaskRecord("aria-text", RUN, "x", -1, None)]).dag_of(labels) is None


@pytest.mark.parametrize("run_id", [RUN, "scheduled__2025-06-01T00:00:00+00:00", "x" * 300, "Ünïcode run"])
def test_identity_labels_are_valid_vertex_labels(run_id: str) -> None:
    for key, value in vj.identity_labels(DAG, run_id, TASK).items():
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key), key
        assert re.fullmatch(r"[a-z0-9_-]{0,63}", value), value


# --- deployments ------------------------------------------------------------------------------------


def deployment(traffic: int = 0, aliases: tuple[str, ...] = (), created: dt.datetime = OLD) -> Any:
    return rc.Deployment(
        endpoint="projects/p/locations/europe-west4/endpoints/1",
        deployed_model_id="42",
        model_version="projects/p/locations/europe-west4/models/7@2",
        traffic=traffic,
        aliases=aliases,
        labels={vj.LABEL_TUNING_JOB: "aria-tune-x-a1", vj.LABEL_DAG: DAG, vj.LABEL_DAG_RUN: label_value(RUN)},
        create_time=created,
    )


@pytest.mark.parametrize(
    ("kwargs", "run_state", "action", "words"),
    [
        ({}, "success", rc.UNDEPLOY, "serves no traffic"),
        ({"traffic": 100}, "success", rc.KEEP, "100%"),
        ({"traffic": 10}, "success", rc.KEEP, "10%"),  # a canary share
        ({"aliases": ("production", "candidate")}, "success", rc.KEEP, "production"),
        ({"aliases": ("candidate",)}, "success", rc.UNDEPLOY, "not production"),
        ({"created": NOW - dt.timedelta(minutes=1)}, "success", rc.KEEP, "grace"),
        ({}, "running", rc.KEEP, "still working"),  # the gate is about to give it traffic, or undeploy it
    ],
)
def test_deployment_rules(kwargs: dict[str, Any], run_state: str, action: str, words: str) -> None:
    verdict = rc.judge_deployment(deployment(**kwargs), inventory(run_state), NOW, GRACE)
    assert verdict.action == action and words in verdict.reason


def test_only_versions_our_registry_made_are_ours() -> None:
    assert rc.is_our_model({vj.LABEL_TUNING_JOB: "j"})
    assert not rc.is_our_model({vj.LABEL_RUN_KEY: "k"})  # the pipeline's own upload: not a registered version
    assert rc.is_our_job({vj.LABEL_RUN_KEY: "k"}) and not rc.is_our_job({"team": "ml"})


def test_report_counts_and_lists_actions_first() -> None:
    verdicts = [
        rc.judge_job(job(), inventory("failed"), 1, NOW, GRACE),
        rc.judge_job(job(), inventory("deferred"), 1, NOW, GRACE),
        rc.judge_deployment(deployment(), inventory("success"), NOW, GRACE),
    ]
    result = rc.report(verdicts, dry_run=True, grace=GRACE, ignored=3)
    assert result["found"] == {"jobs": 2, "deployments": 1, "unlabelled_ignored": 3}
    assert (result["cancelled"], result["undeployed"], len(result["kept"])) == (1, 1, 1)
    lines = rc.summary_lines(verdicts, dry_run=True)
    assert lines[0].startswith("DRY RUN, would ") and lines[-1].startswith("keep job")


def test_every_catalog_region_is_scanned() -> None:
    regions = rc.all_regions()
    assert {"europe-west4", "us-central1"} <= set(regions) and regions == sorted(set(regions))


# --- the operator against the emulator -------------------------------------------------------------


@dataclass
class TableStates:
    """Task states as the Execution API would answer them, from a plain table."""

    dags: dict[str, dict[str, dict[str, str | None]]]
    runs: dict[tuple[str, str], str] = field(default_factory=dict)

    def of_dag(self, dag_id: str) -> dict[str, dict[str, str | None]]:
        return self.dags.get(dag_id, {})

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        return self.runs.get((dag_id, run_id))


def reconcile(states: TableStates, **kwargs: Any) -> dict[str, Any]:
    from aria_tuning.operators.reconcile import VertexReconcileOperator

    class Reconciler(VertexReconcileOperator):
        def task_states(self) -> TableStates:
            return states

    operator = Reconciler(
        task_id="reconcile",
        project_id="aria-local",
        regions=["europe-west4"],
        dag_ids=list(states.dags),
        **{"grace_minutes": 0, **kwargs},
    )
    ti = new_ti("reconcile")
    return dict(operator.execute({"ti": ti, "task_instance": ti}))  # type: ignore[arg-type]


def verdict_for(result: dict[str, Any], resource: str) -> dict[str, Any] | None:
    return next((v for v in result["actions"] + result["kept"] if v["resource"] == resource), None)


ALIVE = ("PENDING", "RUNNING")


def _job_state(name: str) -> str:
    from aria_tuning.hooks import VertexHook
    from aria_tuning.resources import resource_region

    client = VertexHook().client("pipeline", resource_region(name))
    return vj.short_state(client.get_pipeline_job(name=name).state)


@pytest.fixture
def running_job(vertex: str, datasets: dict[str, str], emulator: Emulator) -> Any:
    """A labelled job that runs for minutes, and the task instance it belongs to."""
    ti = new_ti()
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), ti)
    yield trigger.job_name, ti
    if _job_state(trigger.job_name) in ALIVE:
        emulator.force(trigger.job_name, "succeed")


def test_the_job_of_a_failed_task_is_cancelled_and_reported(running_job: Any) -> None:
    name, ti = running_job
    labels = dict(_pipeline_job(name).labels)
    assert labels[vj.LABEL_DAG] == label_value(ti.dag_id) and labels[vj.LABEL_TASK] == "tune"
    dry = reconcile(TableStates({ti.dag_id: {ti.run_id: {"tune": "failed"}}}), dry_run=True)
    assert verdict_for(dry, name)["outcome"] == "dry run: not cancelled"  # type: ignore[index]
    assert _job_state(name) in ALIVE

    result = reconcile(TableStates({ti.dag_id: {ti.run_id: {"tune": "failed"}}}))
    verdict = verdict_for(result, name)
    assert verdict is not None and verdict["action"] == "cancel" and verdict["outcome"] == "cancel requested"
    assert verdict["task"] == f"{ti.dag_id}/{ti.run_id}/tune"
    assert _job_state(name) in ("CANCELLING", "CANCELLED")


@pytest.mark.parametrize(("run_state", "action"), [("running", "keep"), ("failed", "cancel")])
def test_a_task_without_state_is_judged_by_its_dag_run(running_job: Any, run_state: str, action: str) -> None:
    name, ti = running_job
    states = TableStates({ti.dag_id: {ti.run_id: {"tune": None}}}, {(ti.dag_id, ti.run_id): run_state})
    verdict = verdict_for(reconcile(states), name)
    assert verdict is not None and verdict["action"] == action, verdict


@pytest.mark.parametrize("tasks", [{"tune": "deferred"}, {"tune": "up_for_retry"}])
def test_the_job_of_a_live_task_is_left_running(running_job: Any, tasks: dict[str, str]) -> None:
    name, ti = running_job
    result = reconcile(TableStates({ti.dag_id: {ti.run_id: tasks}}))
    assert verdict_for(result, name)["action"] == "keep"  # type: ignore[index]
    assert _job_state(name) in ALIVE


def test_the_job_of_a_deleted_run_is_cancelled_after_the_grace_period(running_job: Any) -> None:
    name, ti = running_job
    states = TableStates({ti.dag_id: {"manual__another-run": {"tune": "success"}}})
    kept = verdict_for(reconcile(states, grace_minutes=60), name)
    assert kept is not None and kept["action"] == "keep" and "grace" in kept["reason"]
    cancelled = verdict_for(reconcile(states), name)
    assert cancelled is not None and "DAG run is gone" in cancelled["reason"]
    assert _job_state(name) in ("CANCELLING", "CANCELLED")


def test_jobs_without_our_labels_or_of_unknown_dags_are_left_alone(running_job: Any) -> None:
    from google.cloud import aiplatform_v1

    name, _ = running_job
    ours = _pipeline_job(name)
    stranger = _pipelines().create_pipeline_job(
        parent="projects/aria-local/locations/europe-west4",
        pipeline_job=aiplatform_v1.PipelineJob(
            display_name="not ours",
            template_uri=ours.template_uri,
            runtime_config=ours.runtime_config,
            labels={"team": "not-aria"},
        ),
        pipeline_job_id=f"stranger-{uuid.uuid4().hex[:8]}",
    )
    result = reconcile(TableStates({}))  # no DAG readable: nothing can be matched
    assert verdict_for(result, stranger.name) is None  # not even judged
    assert verdict_for(result, name)["action"] == "keep"  # type: ignore[index]
    assert _job_state(name) in ALIVE and _job_state(stranger.name) in ALIVE


def _pipelines() -> Any:
    from aria_tuning.hooks import VertexHook

    return VertexHook().client("pipeline", "europe-west4")


def _pipeline_job(name: str) -> Any:
    return _pipelines().get_pipeline_job(name=name)


def test_idle_deployments_of_ours_are_undeployed_unless_production(
    vertex: str, datasets: dict[str, str]
) -> None:
    from aria_tuning.hooks.models import ModelRegistryHook

    from tests.aria_tuning.operators.test_registry_deploy import deploy, endpoint_state, register, tune

    parent, endpoint = f"ARIA-text-{uuid.uuid4().hex[:6]}", f"reconcile-{uuid.uuid4().hex[:6]}"
    old, new = (register(tune(datasets), parent) for _ in range(2))
    stranger = _upload_unlabelled(old["model_version"])
    for version in (old["model_version"], stranger, new["model_version"]):
        deployed = deploy(version, endpoint, traffic_percentage=100)  # each takes all traffic
    name = deployed["endpoint"]
    ids = {
        d.model.split("@")[0] + "@" + d.model_version_id: d.id for d in endpoint_state(name).deployed_models
    }
    old_resource = f"{name}/deployedModels/{ids[old['model_version']]}"
    models = ModelRegistryHook()
    models.move_alias(old["model"], old["model_version"], "production")

    result = reconcile(TableStates({}))
    assert "production" in verdict_for(result, old_resource)["reason"]  # type: ignore[index]
    assert verdict_for(result, f"{name}/deployedModels/{ids[stranger]}") is None  # not ours
    assert result["found"]["unlabelled_ignored"] >= 1

    models.move_alias(new["model"], new["model_version"], "production")
    result = reconcile(TableStates({}))
    verdict = verdict_for(result, old_resource)
    assert verdict is not None and verdict["action"] == "undeploy", verdict
    assert verdict_for(result, f"{name}/deployedModels/{ids[new['model_version']]}")["action"] == "keep"  # type: ignore[index]
    _wait_deployed(name, {ids[stranger], ids[new["model_version"]]})


def _upload_unlabelled(like_version: str) -> str:
    """A model version without our labels, made from the same artifacts as `like_version`."""
    from aria_tuning.hooks.models import ModelRegistryHook
    from aria_tuning.resources import location_of

    models = ModelRegistryHook()
    like = models.get_model(like_version)
    body = {
        "display_name": f"stranger-{uuid.uuid4().hex[:6]}",
        "artifact_uri": like.artifact_uri,
        "container_spec": like.container_spec,
        "metadata_schema_uri": like.metadata_schema_uri,
        "labels": {"team": "not-aria"},
    }
    return models.upload_version(location_of(like_version), body, None, timeout=60)


def _wait_deployed(endpoint: str, expected: set[str], timeout: float = 60) -> None:
    import time

    from tests.aria_tuning.operators.test_registry_deploy import endpoint_state

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployed = {d.id for d in endpoint_state(endpoint).deployed_models}
        if deployed == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"{endpoint} serves {deployed}, expected {expected}")


def test_a_job_that_ended_after_it_was_listed_is_reported_not_failed(
    running_job: Any, emulator: Emulator
) -> None:
    """on_kill (or a person) may stop the job between the reconciler's list and its cancel."""
    from aria_tuning.operators.reconcile import VertexReconcileOperator

    name, _ = running_job
    listed = rc.LabelledJob(name, "pipeline", "RUNNING", dict(_pipeline_job(name).labels), OLD)
    emulator.force(name, "fail", "stopped meanwhile")
    operator = VertexReconcileOperator(task_id="reconcile", project_id="aria-local", regions=["europe-west4"])
    verdict = rc.Verdict("job", name, rc.CANCEL, "its task is failed")
    assert operator._act_on_job(listed, verdict, dry_run=False).outcome == "already FAILED"
