"""aria_vertex_reconcile: hourly, stop paying for Vertex work that no live Airflow task stands behind.

Wiring, params and docs only: the rules are `aria_tuning.reconcile`, the calls the reconcile operator's.
Nothing here reads a Variable, a connection or the network at parse time.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Param
from aria_tuning.operators.reconcile import VertexReconcileOperator

DAG_ID = "aria_vertex_reconcile"
#: The DAGs whose tuning tasks label their Vertex jobs (a job's `aria-dag` label is matched to these).
TUNING_DAG_IDS = ["aria_text_tuning"]

# "none": manual runs only (the fault suite triggers it itself).
_schedule = os.environ.get("ARIA_RECONCILE_SCHEDULE", "@hourly")
SCHEDULE = None if _schedule.lower() in ("", "none") else _schedule
PROJECT = "{{ var.value.get('aria_project', 'aria-local') }}"

with DAG(
    dag_id=DAG_ID,
    description="Cancel Vertex jobs whose task is gone or finished; undeploy idle non-production models",
    schedule=SCHEDULE,
    start_date=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=50),
    default_args={
        "owner": "aria-ml",
        "retries": 1,
        "retry_delay": dt.timedelta(minutes=5),
        "execution_timeout": dt.timedelta(minutes=30),
    },
    params={
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Report what would be cancelled or undeployed; change nothing.",
        ),
        "grace_minutes": Param(
            15,
            type="integer",
            minimum=0,
            maximum=1440,
            title="Grace period (minutes)",
            description="Leave alone anything created or deployed more recently than this.",
        ),
    },
    render_template_as_native_obj=True,
    tags=["aria-text", "vertex-ai", "maintenance"],
    doc_md=__doc__
    + """
### What it does
Lists the pipeline jobs and tuning jobs that carry the label `aria-run-key` (every region of the
catalog), and the deployed models whose model version carries `aria-tuning-job`. For each job still
running whose task instance (matched by the labels `aria-dag`, `aria-dag-run`, `aria-task` and
confirmed by the run key) is no longer running, deferred, queued or up for retry, or whose DAG run is
gone, it cancels the job. It undeploys a deployed model that serves no traffic and does not hold the
`production` alias. Everything younger than `grace_minutes` is left alone; so is anything without
our labels. The report (task log and XCom) lists each resource, the decision and why.
""",
):
    VertexReconcileOperator(
        task_id="reconcile",
        doc_md="Lists our labelled jobs and deployments, judges each against its task's state, acts.",
        project_id=PROJECT,
        dag_ids=TUNING_DAG_IDS,
        dry_run="{{ params.dry_run }}",
        grace_minutes="{{ params.grace_minutes }}",
    )
