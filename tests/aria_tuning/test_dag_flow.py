"""The components wired in small DAGs and run through `dag.test()` against the emulators."""

from __future__ import annotations

from typing import Any

import pytest
from aria_tuning import resources

from tests.aria_tuning.conftest import jobs_for
from tests.support.airflow import PROJECT


def states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str) -> Any:
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def models_of(dag_run: Any) -> list[str]:
    """The models the registry holds with this DAG run's labels: what its tuning job or `register` made.

    Asked by label, not by counting the emulator: it is the session's, and a long job another test left
    running there uploads its tuned model whenever it ends, maybe during this test (seen once in a
    random-order run: 242 model versions after the run, 241 before, from someone else's job).
    """
    from aria_tuning import vertex_jobs as vj
    from aria_tuning.hooks import VertexHook
    from aria_tuning.reconcile import all_regions
    from aria_tuning.resources import label_value

    labels = {vj.LABEL_DAG: dag_run.dag_id, vj.LABEL_DAG_RUN: dag_run.run_id}
    flt = " AND ".join(f'labels.{k}="{label_value(v)}"' for k, v in labels.items())
    hook = VertexHook()
    return sorted(
        model.name
        for region in all_regions()  # every region the catalog can tune in, as the reconciler scans
        for model in hook.client("model", region).list_models(
            request={"parent": f"projects/{PROJECT}/locations/{region}", "filter": flt}
        )
    )


def rendered_links(dag: Any, dag_run: Any, task_id: str) -> dict[str, str]:
    """A task's extra links as the API server renders them: serialized task, XCom table."""
    from airflow.serialization.serialized_objects import DagSerialization

    task = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).get_task(task_id)
    ti = dag_run.get_task_instance(task_id)
    return {name: task.get_extra_links(ti, name) for name in task.extra_links}


@pytest.mark.parametrize("dag_name", ["palm_flow", "gemini_flow"])
def test_flow_succeeds_for_both_methods(vertex: str, datasets: dict[str, str], dag_name: str) -> None:
    from tests.aria_tuning.dags import components_flow

    dag = getattr(components_flow, dag_name)
    dag_run = dag.test()
    assert states(dag_run) == dict.fromkeys(["tune", "register", "deploy", "quality_gate"], "success")
    tuned, registered, gate = xcom(dag_run, "tune"), xcom(dag_run, "register"), xcom(dag_run, "quality_gate")
    assert tuned["state"] == "SUCCEEDED" and registered["created"]
    assert gate["passed"] and gate["model_version"] == registered["model_version"]
    # In the registry, with this run's labels: the tuning run's own model and the registered one (this
    # DAG has no clean-up task; in aria_text_tuning it deletes the tuning run's model and endpoint).
    assert models_of(dag_run) == sorted([tuned["tuned_model"].split("@")[0], registered["model"]])

    # The links the UI shows, each pointing at the console page of what a run keeps: the tuning run's
    # own model and endpoint are not kept (aria_text_tuning deletes them), so `tune` links the run.
    assert rendered_links(dag, dag_run, "tune") == {"Vertex AI tuning run": tuned["console_url"]}
    assert rendered_links(dag, dag_run, "register") == {
        "Vertex AI Model Registry": resources.model_console_url(registered["model_version"])
    }
    deployed = xcom(dag_run, "deploy")
    assert rendered_links(dag, dag_run, "deploy") == {
        "Vertex AI endpoint": resources.endpoint_console_url(deployed["endpoint"])
    }


def test_a_failed_job_fails_the_task_with_vertex_message_and_registers_nothing(
    vertex: str, datasets: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.aria_tuning.dags import components_flow

    dag_run = components_flow.broken_data_flow.test()
    assert states(dag_run) == {
        "tune": "failed",
        **dict.fromkeys(["register", "deploy", "quality_gate"], "upstream_failed"),
    }
    [job] = jobs_for(vertex, dag_run.get_task_instance("tune"), "europe-west4")  # a PaLM run
    assert job.state.name == "PIPELINE_STATE_FAILED"
    assert models_of(dag_run) == []
    output = capsys.readouterr().out
    assert "VertexJobFailed" in output and "palm_broken.jsonl:2" in output
