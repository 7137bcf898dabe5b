"""Baseline for the parse-cost benchmark: the ARIA-text flow written with the Google provider's operators.

Never deployed (it lives in bench/, outside dags/). Same shape as dags/aria_text_tuning.py: GCS sensors ->
prepare -> tune (RunPipelineJobOperator on tune-large-model) -> upload model -> create endpoint -> deploy
-> quality gate. Imports are what a DAG author writes following the provider's documentation: operator
classes at module level, which is what makes the provider expensive to parse.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.google.cloud.operators.gen_ai import GenAISupervisedFineTuningTrainOperator
from airflow.providers.google.cloud.operators.vertex_ai.endpoint_service import (
    CreateEndpointOperator,
    DeployModelOperator,
)
from airflow.providers.google.cloud.operators.vertex_ai.model_service import UploadModelOperator
from airflow.providers.google.cloud.operators.vertex_ai.pipeline_job import RunPipelineJobOperator
from airflow.providers.google.cloud.sensors.gcs import (
    GCSObjectsWithPrefixExistenceSensor,
    GCSUploadSessionCompleteSensor,
)
from airflow.sdk import DAG, Param, task

PROJECT = "{{ var.value.get('aria_project', 'aria-local') }}"
REGION = "europe-west4"
BUCKET = "{{ var.value.get('aria_data_bucket', 'aria-datasets') }}"
PREFIX = "raw/v={{ ds }}/"
TEMPLATE = "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"

with DAG(
    dag_id="aria_text_tuning_provider_baseline",
    schedule="@weekly",
    catchup=False,
    max_active_runs=1,
    tags=["aria", "benchmark-baseline"],
    default_args={"owner": "aria", "retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "base_model": Param("text-bison@001", type="string"),
        "accelerator": Param("TPU", enum=["TPU", "GPU"]),
        "epochs": Param(4, type="integer", minimum=1, maximum=20),
        "learning_rate_multiplier": Param(1.0, type="number"),
        "tuned_model_name": Param("ARIA-text", type="string"),
        "endpoint_name": Param("aria-text", type="string"),
    },
) as dag:
    files_present = GCSObjectsWithPrefixExistenceSensor(
        task_id="wait_for_dataset", bucket=BUCKET, prefix=PREFIX, deferrable=True
    )
    upload_done = GCSUploadSessionCompleteSensor(
        task_id="wait_for_upload_complete",
        bucket=BUCKET,
        prefix=PREFIX,
        inactivity_period=60,
        deferrable=True,
    )

    @task
    def prepare(ds: str | None = None) -> dict:
        from aria_tuning.dataprep import prepare_dataset_version  # type: ignore[attr-defined]

        return prepare_dataset_version(f"gs://aria-datasets/raw/v={ds}/")

    prepared = prepare()
    tune = RunPipelineJobOperator(
        task_id="tune",
        project_id=PROJECT,
        region=REGION,
        display_name="ARIA-text",
        template_path=TEMPLATE,
        parameter_values={
            "project": PROJECT,
            "location": REGION,
            "large_model_reference": "{{ params.base_model }}",
            "model_display_name": "{{ params.tuned_model_name }}",
            "train_steps": "{{ ti.xcom_pull('prepare')['plan']['train_steps'] }}",
            "dataset_uri": "{{ ti.xcom_pull('prepare')['train_uri'] }}",
            "learning_rate_multiplier": "{{ params.learning_rate_multiplier }}",
        },
        pipeline_root="gs://aria-pipeline-root",
    )
    tune_gemini = GenAISupervisedFineTuningTrainOperator(
        task_id="tune_gemini",
        project_id=PROJECT,
        location="us-central1",
        source_model="gemini-2.5-flash",
        training_dataset={"gcs_uri": "{{ ti.xcom_pull('prepare')['train_uri'] }}"},
        tuning_job_config={},
    )
    register = UploadModelOperator(
        task_id="register",
        project_id=PROJECT,
        region=REGION,
        model={"display_name": "ARIA-text", "artifact_uri": "gs://aria-pipeline-root/model"},
    )
    endpoint = CreateEndpointOperator(
        task_id="create_endpoint", project_id=PROJECT, region=REGION, endpoint={"display_name": "aria-text"}
    )
    deploy = DeployModelOperator(
        task_id="deploy",
        project_id=PROJECT,
        region=REGION,
        endpoint_id="{{ ti.xcom_pull('create_endpoint')['name'] }}",
        deployed_model={"model": "{{ ti.xcom_pull('register')['model'] }}"},
        traffic_split={"0": 100},
    )

    @task
    def quality_gate() -> None:
        from aria_tuning.quality import run_quality_gate  # type: ignore[import-not-found]

        run_quality_gate()

    files_present >> upload_done >> prepared >> [tune, tune_gemini]
    [tune, tune_gemini] >> register >> endpoint >> deploy >> quality_gate()
