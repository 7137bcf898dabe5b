"""Test-only DAGs wiring the four components (tune -> register -> deploy -> quality gate).

Run by tests/aria_tuning/test_dag_flow.py through `dag.test()`; the datasets are the ones the
`datasets` fixture uploads. Display names carry the run's timestamp so runs never share a model.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG
from aria_tuning.operators.deploy import DeployModelOperator
from aria_tuning.operators.quality import QualityGateOperator
from aria_tuning.operators.registry import RegisterModelOperator
from aria_tuning.operators.tuning import VertexTuningOperator

DATA = "gs://aria-datasets/components-tests"
FAST = {"poll_interval": 0.05, "max_poll_interval": 0.3}


def xcom(task: str, key: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='{task}')['{key}'] }}}}"


def flow(dag_id: str, model: str, train_file: str) -> DAG:
    palm = model.startswith("text-bison")
    fmt = "palm" if palm else "gemini"
    steps = {"train_steps": 5} if palm else {"epochs": 1}
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        tags=["aria-tests"],
    ) as dag:
        tune = VertexTuningOperator(
            task_id="tune",
            plan={"model": model, "max_train_steps": 100, **steps},
            training_data_uri=f"{DATA}/{train_file}",
            evaluation_data_uri=f"{DATA}/{fmt}_eval.jsonl",
            pipeline_root="gs://aria-pipeline-root",
            **FAST,
        )
        register = RegisterModelOperator(
            task_id="register",
            tuned_model=xcom("tune", "tuned_model"),
            tuning_job=xcom("tune", "job"),
            model_display_name=f"{dag_id}-{{{{ ts_nodash }}}}",
            base_model=model,
            dataset_version="2024-01-01",
            **steps,
        )
        deploy = DeployModelOperator(
            task_id="deploy",
            model_version=xcom("register", "model_version"),
            endpoint_display_name=f"{dag_id}-{{{{ ts_nodash }}}}",
            **FAST,
        )
        gate = QualityGateOperator(
            task_id="quality_gate",
            endpoint=xcom("deploy", "endpoint"),
            model_version=xcom("register", "model_version"),
            eval_data_uri=f"{DATA}/{fmt}_eval.jsonl",
            base_model=model,
            floor=0.8,
            max_prompts=4,
        )
        tune >> register >> deploy >> gate
    return dag


palm_flow = flow("components_flow_palm", "text-bison@001", "palm_train.jsonl")
gemini_flow = flow("components_flow_gemini", "gemini-2.5-flash", "gemini_train.jsonl")
broken_data_flow = flow("components_flow_broken_data", "text-bison@001", "palm_broken.jsonl")
