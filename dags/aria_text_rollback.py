"""ARIA-text rollback: give production back to an earlier version of the tuned model, in one run.

Wiring, params and docs only: the logic lives in `aria_tuning.operators.rollback`. Trigger it from
the UI form; it refuses a version that is not in the Model Registry before changing anything, and a
second run with the same form changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Param
from aria_tuning.catalog import GEMINI_TUNING_REGIONS
from aria_tuning.operators.rollback import RollbackOperator
from aria_tuning.production_history import PREVIOUS

DAG_ID = "aria_text_rollback"
PROJECT = "{{ var.value.get('aria_project', 'aria-local') }}"
VERTEX_POLL_SECONDS = float(os.environ.get("ARIA_VERTEX_POLL_SECONDS", "60"))
RETRY_DELAY = dt.timedelta(seconds=float(os.environ.get("ARIA_RETRY_DELAY_SECONDS", "300")))
# Where ARIA-text versions live: the tuning regions (TPU europe-west4, GPU us-central1, Gemini's).
REGIONS = sorted({"europe-west4", "us-central1", *GEMINI_TUNING_REGIONS})

PARAMS = {
    "tuned_model_name": Param(
        "ARIA-text",
        type="string",
        minLength=1,
        maxLength=128,
        title="Tuned model name",
        description="The parent model in the Model Registry, for example ARIA-text.",
    ),
    "version": Param(
        PREVIOUS,
        type="string",
        pattern=rf"^([0-9]+|{PREVIOUS})$",
        title="Version",
        description="The version id to restore, for example 3; or 'previous production': the version "
        "that was in production before the latest promotion.",
    ),
    "endpoint_name": Param(
        "ARIA-text-endpoint",
        type="string",
        minLength=1,
        maxLength=128,
        title="Production endpoint",
        description="The endpoint that serves users, for example ARIA-text-endpoint.",
    ),
    "region": Param(
        "europe-west4",
        type="string",
        enum=REGIONS,
        title="Region",
        description="Where the model and the endpoint are: europe-west4 for text-bison on TPU, "
        "us-central1 on GPU, the tuning region for Gemini.",
    ),
}

with DAG(
    dag_id=DAG_ID,
    description="Move the production alias and all production traffic back to an earlier ARIA-text version",
    schedule=None,
    start_date=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "aria-ml",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(hours=2),
    },
    params=PARAMS,
    render_template_as_native_obj=True,
    tags=["aria-text", "vertex-ai", "ml"],
    doc_md=__doc__,
) as dag:
    RollbackOperator(
        task_id="roll_back",
        doc_md="Checks the version is in the registry, deploys it to the production endpoint if it is "
        "not there, gives it all the traffic and the alias `production`, and undeploys every other "
        "version on the endpoint. The version it takes production from is labelled `aria-rolled-back-at`.",
        model_display_name="{{ params.tuned_model_name }}",
        version="{{ params.version }}",
        location=f"projects/{PROJECT}/locations/" + "{{ params.region }}",
        endpoint_display_name="{{ params.endpoint_name }}",
        poll_interval=min(VERTEX_POLL_SECONDS, 15.0),
    )
