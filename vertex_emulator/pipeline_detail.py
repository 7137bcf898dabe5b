"""A pipelineJob's `jobDetail`: the ML Metadata contexts and one taskDetail per task run so far.

The root DAG execution comes first (task 1), then the pipeline's tasks in run order; a task's
`execution.metadata` carries its outputs (`output:model_resource_name`, where the SDK reads them).
"""

from __future__ import annotations

from typing import Any

from vertex_emulator import lifecycle, names
from vertex_emulator.lifecycle import Phase, rfc3339

_TASK_STATE = {
    Phase.PENDING: "PENDING",
    Phase.RUNNING: "RUNNING",
    Phase.PAUSED: "RUNNING",
    Phase.CANCELLING: "CANCELLING",
    Phase.CANCELLED: "CANCELLED",
    Phase.FAILED: "FAILED",
    Phase.SUCCEEDED: "SUCCEEDED",
}
_EXECUTION_STATE = {
    "SUCCEEDED": "COMPLETE",
    "RUNNING": "RUNNING",
    "FAILED": "FAILED",
    "CANCELLED": "CANCELLED",
    "CANCELLING": "RUNNING",
    "PENDING": "NEW",
}
#: Which task reports which output of the pipeline.
_OUTPUT_OF = {
    "upload-llm-model": "model_resource_name",
    "deploy-llm-model": "endpoint_resource_name",
}
#: Which task writes which output artifact (a GCS directory: `PipelineTaskDetail.outputs`).
_ARTIFACT_OF = {"large-language-model-tuner": "tensorboard_metrics"}


def job_detail(job_name: str, pipeline: str, tasks: tuple[str, ...], job: dict[str, Any]) -> dict[str, Any]:
    """`PipelineJob.jobDetail` of the job `job_name` running `tasks` of `pipeline` (internal `job`)."""
    parsed = names.parse(job_name, "pipelineJobs")
    store = f"{parsed.parent}/metadataStores/default"
    state, end = lifecycle.phase(job), lifecycle.end_time(job)
    outputs = job["outputs"]
    root_metadata = {f"output:{k}": v for k, v in outputs.items()} if state is Phase.SUCCEEDED else {}
    details = [
        _task(
            store,
            parsed.id,
            1,
            None,
            pipeline,
            job["createdAt"],
            job["times"].get("RUNNING"),
            end,
            _TASK_STATE[state],
            "system.DAGExecution",
            root_metadata,
            None,
        )
    ]
    for index, task_name in enumerate(tasks, start=1):
        if index > job["stepsDone"]:
            break
        if index < job["stepsDone"] or state is Phase.SUCCEEDED:
            task_state = "SUCCEEDED"
        elif state is Phase.FAILED and job["failedStep"] == task_name:
            task_state = "FAILED"
        else:
            task_state = _TASK_STATE[state]
        output = _OUTPUT_OF.get(task_name)
        metadata = {f"output:{output}": outputs[output]} if output in outputs else {}
        started = lifecycle.step_start_time(job, index)
        artifact = _ARTIFACT_OF.get(task_name)
        details.append(
            _task(
                store,
                parsed.id,
                index + 1,
                1,
                task_name,
                started,
                started,
                lifecycle.step_time(job, index) if task_state == "SUCCEEDED" else end,
                task_state,
                "system.ContainerExecution",
                metadata,
                job["failure"] if task_state == "FAILED" else None,
            )
        )
        if artifact in outputs and task_state == "SUCCEEDED":
            details[-1]["outputs"] = {
                artifact: {
                    "artifacts": [
                        {
                            "name": f"{store}/artifacts/{parsed.id}-{index + 1}-{artifact}",
                            "displayName": artifact,
                            "uri": outputs[artifact],
                            "schemaTitle": "system.Artifact",
                            "state": "LIVE",
                        }
                    ]
                }
            }
    return {
        "pipelineContext": {"name": f"{store}/contexts/{pipeline}", "displayName": pipeline},
        "pipelineRunContext": {"name": f"{store}/contexts/{parsed.id}", "displayName": parsed.id},
        "taskDetails": details,
    }


def _task(
    store: str,
    job_id: str,
    task_id: int,
    parent_id: int | None,
    task_name: str,
    created: float,
    started: float | None,
    ended: float | None,
    state: str,
    schema: str,
    metadata: dict[str, Any],
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskId": str(task_id),
        "taskName": task_name,
        "createTime": rfc3339(created),
        "state": state,
        "execution": {
            "name": f"{store}/executions/{job_id}-{task_id}",
            "displayName": task_name,
            "state": _EXECUTION_STATE[state],
            "schemaTitle": schema,
            "metadata": metadata,
        },
    }
    if parent_id is not None:
        task["parentTaskId"] = str(parent_id)
    if started is not None:
        task["startTime"] = rfc3339(started)
    if ended is not None and state in ("SUCCEEDED", "FAILED", "CANCELLED"):
        task["endTime"] = rfc3339(ended)
    if error:
        task["error"] = error
    return task
