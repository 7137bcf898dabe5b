"""Run one DAG of tests/provider/dags with `dag.test()` and write what it left as JSON.

    python -m tests.provider.run_dag DAG_ID --conf '{"param": "value"}' --out result.json

The result holds each task's state and every XCom it pushed (by key). Meant to run in a subprocess
whose environment points the provider at the emulator (see tests/provider/conftest.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: The XCom keys the provider's operators push (besides their links, which the tests leave alone).
XCOM_KEYS = (
    "return_value",
    "pipeline_job_id",
    "model_id",
    "endpoint_id",
    "deployed_model_id",
    "tuned_model_name",
    "tuned_model_endpoint_name",
)


def run(dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk import DAG

    from tests.provider.dags import provider_operators

    [dag] = [d for d in vars(provider_operators).values() if isinstance(d, DAG) and d.dag_id == dag_id]
    dag_run = dag.test(run_conf=conf)
    tasks: dict[str, Any] = {}
    for ti in dag_run.get_task_instances():
        pushed = {key: ti.xcom_pull(task_ids=ti.task_id, key=key) for key in XCOM_KEYS}
        tasks[ti.task_id] = {
            "state": str(ti.state),
            "xcom": {key: value for key, value in pushed.items() if value is not None},
        }
    return {"dag_id": dag_id, "state": str(dag_run.state), "tasks": tasks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.provider.run_dag", description=__doc__)
    parser.add_argument("dag_id")
    parser.add_argument("--conf", default="{}", help="the run's params, as JSON")
    parser.add_argument("--out", type=Path, required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)
    result = run(args.dag_id, json.loads(args.conf))
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
