"""Test-only DAGs made of the Airflow Google provider's own Vertex AI operators, as their docs show them.

Run by tests/provider through `dag.test()` in a subprocess whose environment sends the provider's
hard-coded `{region}-aiplatform.googleapis.com:443` gRPC calls to the emulator (see tests/provider/
conftest.py); nothing here knows about the emulator. What differs per run comes in as params.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.google.cloud.operators.gen_ai import GenAISupervisedFineTuningTrainOperator
from airflow.providers.google.cloud.operators.vertex_ai.endpoint_service import (
    CreateEndpointOperator,
    DeployModelOperator,
    UndeployModelOperator,
)
from airflow.providers.google.cloud.operators.vertex_ai.model_service import (
    AddVersionAliasesOnModelOperator,
    ListModelVersionsOperator,
    UploadModelOperator,
)
from airflow.providers.google.cloud.operators.vertex_ai.pipeline_job import (
    GetPipelineJobOperator,
    RunPipelineJobOperator,
)
from airflow.sdk import DAG

PROJECT = "aria-local"
REGION = "europe-west4"  # tune-large-model on TPU runs here
GEMINI_REGION = "us-central1"
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MODEL_ID = "{{ ti.xcom_pull(task_ids='upload_model', key='model_id') }}"
ENDPOINT_ID = "{{ ti.xcom_pull(task_ids='create_endpoint', key='endpoint_id') }}"


def _tune_large_model(task_id: str, deferrable: bool) -> RunPipelineJobOperator:
    return RunPipelineJobOperator(
        task_id=task_id,
        project_id=PROJECT,
        region=REGION,
        display_name=task_id.replace("_", "-"),
        template_path="{{ params.template_path }}",
        pipeline_root="gs://aria-pipeline-root",
        parameter_values={
            "project": PROJECT,
            "location": REGION,
            "large_model_reference": "text-bison@001",
            "model_display_name": "{{ params.model_display_name }}",
            "dataset_uri": "{{ params.dataset_uri }}",
            "train_steps": 5,
            "accelerator_type": "TPU",
        },
        deferrable=deferrable,
        poll_interval=1,
    )


with DAG(
    dag_id="provider_vertex_operators",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["aria-tests"],
    params={"template_path": "", "dataset_uri": "", "model_display_name": "", "rest_job_id": ""},
) as vertex_operators:
    run_pipeline = _tune_large_model("run_pipeline", deferrable=False)
    run_pipeline_deferred = _tune_large_model("run_pipeline_deferred", deferrable=True)
    get_pipeline = GetPipelineJobOperator(
        task_id="get_pipeline", project_id=PROJECT, region=REGION, pipeline_job_id="{{ params.rest_job_id }}"
    )
    upload_model = UploadModelOperator(
        task_id="upload_model",
        project_id=PROJECT,
        region=REGION,
        model={"display_name": "{{ params.model_display_name }}", "artifact_uri": "gs://aria-models/v1"},
    )
    upload_model_version = UploadModelOperator(
        task_id="upload_model_version",
        project_id=PROJECT,
        region=REGION,
        parent_model=MODEL_ID,
        model={"display_name": "{{ params.model_display_name }}", "artifact_uri": "gs://aria-models/v2"},
    )
    list_model_versions = ListModelVersionsOperator(
        task_id="list_model_versions", project_id=PROJECT, region=REGION, model_id=MODEL_ID
    )
    add_aliases = AddVersionAliasesOnModelOperator(
        task_id="add_version_aliases",
        project_id=PROJECT,
        region=REGION,
        model_id=f"{MODEL_ID}@2",
        version_aliases=["candidate", "canary"],
    )
    create_endpoint = CreateEndpointOperator(
        task_id="create_endpoint",
        project_id=PROJECT,
        region=REGION,
        endpoint={"display_name": "provider-endpoint"},  # `endpoint` is not a template field
    )
    deploy_model = DeployModelOperator(
        task_id="deploy_model",
        project_id=PROJECT,
        region=REGION,
        endpoint_id=ENDPOINT_ID,
        deployed_model={
            "model": f"projects/{PROJECT}/locations/{REGION}/models/{MODEL_ID}@2",
            "display_name": "candidate",
            "dedicated_resources": {
                "machine_spec": {"machine_type": "n1-standard-4"},
                "min_replica_count": 1,
                "max_replica_count": 1,
            },
        },
        traffic_split={"0": 100},
    )
    undeploy_model = UndeployModelOperator(
        task_id="undeploy_model",
        project_id=PROJECT,
        region=REGION,
        endpoint_id=ENDPOINT_ID,
        deployed_model_id="{{ ti.xcom_pull(task_ids='deploy_model', key='deployed_model_id') }}",
    )
    (
        run_pipeline
        >> run_pipeline_deferred
        >> get_pipeline
        >> upload_model
        >> upload_model_version
        >> list_model_versions
        >> add_aliases
        >> create_endpoint
        >> deploy_model
        >> undeploy_model
    )


with DAG(
    dag_id="provider_gen_ai_tuning",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["aria-tests"],
    params={"training_data_uri": "", "tuned_model_display_name": ""},
) as gen_ai_tuning:
    GenAISupervisedFineTuningTrainOperator(
        task_id="tune_gemini",
        project_id=PROJECT,
        location=GEMINI_REGION,
        source_model="gemini-2.5-flash",
        training_dataset={"gcs_uri": "{{ params.training_data_uri }}"},
        tuning_job_config={
            "epoch_count": 1,
            "tuned_model_display_name": "{{ params.tuned_model_display_name }}",
        },
    )
