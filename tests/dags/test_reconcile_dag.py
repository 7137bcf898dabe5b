"""The reconciler DAG: it parses, runs hourly and on demand, and its params are the documented two."""

from __future__ import annotations

import datetime as dt
from typing import Any

DAG_ID = "aria_vertex_reconcile"


def test_reconciler_dag_is_hourly_with_dry_run_and_grace_params(dagbag: Any) -> None:
    from aria_tuning.operators.reconcile import VertexReconcileOperator

    assert not dagbag.import_errors, dagbag.import_errors
    dag = dagbag.dags[DAG_ID]
    assert dag.schedule == "@hourly" and dag.catchup is False and dag.max_active_runs == 1
    assert dag.params["dry_run"] is False and dag.params["grace_minutes"] == 15
    assert dag.params.get_param("grace_minutes").schema["minimum"] == 0
    (task,) = dag.tasks
    assert isinstance(task, VertexReconcileOperator)
    assert task.dag_ids == ["aria_text_tuning"] and "europe-west4" in task.regions
    assert task.owner == "aria-ml" and task.doc_md and isinstance(task.execution_timeout, dt.timedelta)
    assert "maintenance" in dag.tags
