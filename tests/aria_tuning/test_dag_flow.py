"""The components wired in small DAGs and run through `dag.test()` against the emulators."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.processes import emulator_control


def states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str) -> Any:
    [ti] = [ti for ti in dag_run.get_task_instances() if ti.task_id == task_id]
    return ti.xcom_pull(task_ids=task_id)


@pytest.mark.parametrize("dag_name", ["palm_flow", "gemini_flow"])
def test_flow_succeeds_for_both_methods(vertex: str, datasets: dict[str, str], dag_name: str) -> None:
    from tests.aria_tuning.dags import components_flow

    dag_run = getattr(components_flow, dag_name).test()
    assert states(dag_run) == dict.fromkeys(["tune", "register", "deploy", "quality_gate"], "success")
    tuned, registered, gate = xcom(dag_run, "tune"), xcom(dag_run, "register"), xcom(dag_run, "quality_gate")
    assert tuned["state"] == "SUCCEEDED" and registered["created"]
    assert gate["passed"] and gate["model_version"] == registered["model_version"]


def test_a_failed_job_fails_the_task_with_vertex_message_and_registers_nothing(
    vertex: str, datasets: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.aria_tuning.dags import components_flow

    models_before = emulator_control(vertex, "counts")["modelVersions"]
    dag_run = components_flow.broken_data_flow.test()
    assert states(dag_run) == {
        "tune": "failed",
        **dict.fromkeys(["register", "deploy", "quality_gate"], "upstream_failed"),
    }
    assert emulator_control(vertex, "counts")["modelVersions"] == models_before
    output = capsys.readouterr().out
    assert "VertexJobFailed" in output and "palm_broken.jsonl:2" in output
