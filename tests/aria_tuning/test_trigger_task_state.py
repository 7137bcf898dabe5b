"""The tuning trigger reads its task instance's state from Airflow before it cancels a job: here from a real
metadata DB through the Execution API.

In a triggerer, the trigger's GetTaskStates goes over a socket to its supervisor, which answers it with
`handle_get_task_states` on a client of the in-process Execution API (airflow/jobs/triggerer_job_runner.py
3.3.2, `make_client` and `_handle_request`). Here the same handler and the same client answer it in process
(`InProcessSupervisorComms`, how `dag.test()` runs triggers); the task instance is handed to the trigger
as the triggerer hands it (a `TaskInstanceDTO` of the row).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aria_tuning.triggers import VertexTuningJobTrigger

JOB = "projects/aria-local/locations/europe-west4/pipelineJobs/aria-task-state"
RUN_ID = "manual__task-state"


@pytest.fixture(scope="module")
def task_instances(airflow_db: None) -> dict[str, Any]:
    """A DAG run in the metadata DB with a task `tune` and a task `tune_each` mapped over two inputs:
    `{"tune": ti, "tune_each[0]": ti, "tune_each[1]": ti}` (ORM rows)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagbag import DBDagBag
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with DAG(f"trigger_task_state_{uuid.uuid4().hex[:8]}", schedule=None) as dag:
        EmptyOperator(task_id="tune")
        EmptyOperator.partial(task_id="tune_each").expand(doc_md=["a", "b"])
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        scheduled = DBDagBag().get_latest_version_of_dag(dag.dag_id, session=session)
        assert scheduled is not None, f"{dag.dag_id} was not written to the metadata DB"
        run = scheduled.create_dagrun(
            run_id=RUN_ID,
            run_type=DagRunType.MANUAL,
            logical_date=None,
            data_interval=None,
            run_after=dt.datetime.now(dt.UTC),
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.RUNNING,
            session=session,
        )
        tis = run.get_task_instances(session=session)
        session.expunge_all()
    return {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti for ti in tis}


@pytest.fixture(scope="module")
def execution_api(airflow_db: None) -> Iterator[None]:
    """The trigger's calls to its supervisor answered in process, by the Execution API over the DB."""
    import psutil
    import structlog
    from airflow.jobs.triggerer_job_runner import in_process_api_server
    from airflow.sdk.api.client import Client
    from airflow.sdk.execution_time.supervisor import (
        InProcessSupervisorComms,
        InProcessTestSupervisor,
        set_supervisor_comms,
    )

    # The triggerer's client (TriggerRunnerSupervisor.make_client, 3.3.2).
    client = Client(base_url=None, token="", dry_run=True, transport=in_process_api_server().transport)
    client.base_url = "http://in-process.invalid./"  # type: ignore[assignment]
    supervisor = InProcessTestSupervisor(
        id=uuid.uuid4(),
        pid=os.getpid(),
        process=psutil.Process(),
        process_log=structlog.get_logger(),
        client=client,
    )
    supervisor.comms = InProcessSupervisorComms(supervisor=supervisor)
    with set_supervisor_comms(supervisor.comms):
        yield


def set_state(ti: Any, state: str | None) -> None:
    """What the scheduler, a worker or a user's mark/clear writes to the task instance's row."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.id == ti.id)
            .values(state=state)
            .execution_options(synchronize_session=False)
        )


def trigger_of(ti: Any) -> VertexTuningJobTrigger:
    """A tuning trigger holding `ti` as the triggerer gives it one (airflow/jobs/triggerer_job_runner.py)."""
    from airflow.executors.workloads.task import TaskInstanceDTO

    trigger = VertexTuningJobTrigger(job_name=JOB, method="pipeline")
    trigger.task_instance = TaskInstanceDTO.model_validate(ti, from_attributes=True)  # type: ignore[assignment]
    return trigger


@pytest.mark.usefixtures("execution_api")
@pytest.mark.parametrize("state", ["deferred", "failed", "success", "up_for_retry", "scheduled"])
def test_the_trigger_reads_its_task_state_from_airflow(task_instances: dict[str, Any], state: str) -> None:
    set_state(task_instances["tune"], state)
    set_state(task_instances["tune_each[0]"], "running")  # the other rows of the run are not its own
    assert asyncio.run(trigger_of(task_instances["tune"])._task_state()) == state


@pytest.mark.usefixtures("execution_api")
def test_a_mapped_trigger_reads_its_own_task_state(task_instances: dict[str, Any]) -> None:
    set_state(task_instances["tune_each[0]"], "failed")
    set_state(task_instances["tune_each[1]"], "deferred")
    assert asyncio.run(trigger_of(task_instances["tune_each[0]"])._task_state()) == "failed"
