"""Compiled pipeline specs (KFP v2 IR `PipelineSpec` JSON): build the one Vertex stores, read one sent.

A PipelineJob carries its compiled spec in `pipelineSpec`: the one fetched for a `templateUri`,
or the one the SDK read from a local file (`aiplatform.PipelineJob(template_path="x.json")`).
`read` checks what Vertex checks before it accepts a spec (schema version, pipeline name, the
root DAG's tasks, their components and executors, no dependency cycles) and returns the plan
the emulator runs: the root DAG's tasks in dependency order and the pipeline's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vertex_emulator.exceptions import InvalidArgument

#: KFP v2 parameter types (pipeline_spec.proto, ParameterType.ParameterTypeEnum).
_EMPTY: dict[str, Any] = {
    "STRING": "",
    "NUMBER_INTEGER": 0,
    "NUMBER_DOUBLE": 0.0,
    "BOOLEAN": False,
    "LIST": [],
    "STRUCT": {},
}
#: Pre-2.1 specs name parameter types `type: INT|DOUBLE|STRING` (the SDK reads either).
_LEGACY_TYPES = {"INT": "NUMBER_INTEGER", "DOUBLE": "NUMBER_DOUBLE", "STRING": "STRING"}
SCHEMA_VERSION = "2.1.0"


@dataclass(frozen=True)
class Parameter:
    type: str  # a key of _EMPTY
    default: Any = None  # None: required

    def accepts(self, value: Any) -> bool:
        if self.type == "STRING":
            return isinstance(value, str)
        if self.type == "BOOLEAN":
            return isinstance(value, bool)
        if self.type == "LIST":
            return isinstance(value, list)
        if self.type == "STRUCT":
            return isinstance(value, dict)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and (self.type != "NUMBER_INTEGER" or float(value).is_integer())


@dataclass(frozen=True)
class Task:
    """A task of a pipeline's root DAG: the parameters it takes and the task it runs after."""

    name: str
    inputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    name: str  # pipelineInfo.name
    tasks: tuple[str, ...]  # root DAG tasks in dependency order
    parameters: dict[str, Parameter]


def build(
    name: str, parameters: Mapping[str, Parameter], tasks: tuple[Task, ...], sdk_version: str
) -> dict[str, Any]:
    """The compiled spec of a pipeline, in the shape `kfp compile` writes and Vertex stores."""

    def component(task: Task) -> dict[str, Any]:
        return {
            "executorLabel": f"exec-{task.name}",
            "inputDefinitions": {"parameters": {p: _definition(parameters[p], False) for p in task.inputs}},
        }

    return {
        "components": {f"comp-{t.name}": component(t) for t in tasks},
        "deploymentSpec": {
            "executors": {
                f"exec-{t.name}": {
                    "container": {
                        # Stand-in images: the emulator runs these tasks itself.
                        "image": f"vertex-emulator/{name}/{t.name}:{sdk_version}",
                        "command": ["python3", "-m", f"launcher.{t.name.replace('-', '_')}"],
                        "args": ["--executor_input", "{{$}}"],
                    }
                }
                for t in tasks
            }
        },
        "pipelineInfo": {"name": name},
        "root": {
            "dag": {
                "tasks": {
                    t.name: {
                        "cachingOptions": {"enableCache": True},
                        "componentRef": {"name": f"comp-{t.name}"},
                        **({"dependentTasks": list(t.after)} if t.after else {}),
                        "inputs": {"parameters": {p: {"componentInputParameter": p} for p in t.inputs}},
                        "taskInfo": {"name": t.name},
                    }
                    for t in tasks
                }
            },
            "inputDefinitions": {
                "parameters": {p: _definition(parameter, True) for p, parameter in parameters.items()}
            },
        },
        "schemaVersion": SCHEMA_VERSION,
        "sdkVersion": sdk_version,
    }


def _definition(parameter: Parameter, with_default: bool) -> dict[str, Any]:
    definition: dict[str, Any] = {"parameterType": parameter.type}
    if parameter.default is not None:
        if with_default:
            definition["defaultValue"] = parameter.default
        definition["isOptional"] = True
    return definition


def read(spec: Mapping[str, Any]) -> Plan:
    """The plan of a submitted spec, or a 400 naming the first thing Vertex would refuse."""
    for required in ("schemaVersion", "pipelineInfo", "root"):
        if not spec.get(required):
            raise InvalidArgument(f"pipeline_job.pipeline_spec.{required} is required")
    name = (spec.get("pipelineInfo") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("pipeline_job.pipeline_spec.pipelineInfo.name is required")
    root = _object(spec["root"], "root")
    tasks = _object(_object(root.get("dag"), "root.dag").get("tasks"), "root.dag.tasks")
    if not tasks:
        raise InvalidArgument("pipeline_job.pipeline_spec.root.dag.tasks is empty: nothing to run")
    components = _object(spec.get("components", {}), "components")
    deployment = _object(spec.get("deploymentSpec", {}), "deploymentSpec")
    executors = _object(deployment.get("executors", {}), "deploymentSpec.executors")
    after: dict[str, list[str]] = {}
    for task_name, value in tasks.items():
        where = f"pipeline_job.pipeline_spec.root.dag.tasks[{task_name!r}]"
        task = _object(value, f"root.dag.tasks[{task_name!r}]")
        ref = (task.get("componentRef") or {}).get("name")
        if ref not in components:
            raise InvalidArgument(f"{where}.componentRef.name {ref!r} is not in pipeline_spec.components")
        label = (components[ref] or {}).get("executorLabel")
        if label is not None and label not in executors:
            raise InvalidArgument(
                f"pipeline_spec.components[{ref!r}].executorLabel {label!r} is not in "
                "pipeline_spec.deploymentSpec.executors"
            )
        after[task_name] = list(task.get("dependentTasks") or [])
        unknown = sorted(set(after[task_name]) - set(tasks))
        if unknown:
            raise InvalidArgument(f"{where}.dependentTasks names unknown tasks {unknown}")
    return Plan(name, _in_order(after), _parameters(root))


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        raise InvalidArgument(f"pipeline_job.pipeline_spec.{where} is required")
    if not isinstance(value, dict):
        raise InvalidArgument(f"pipeline_job.pipeline_spec.{where} must be an object")
    return value


def _in_order(after: dict[str, list[str]]) -> tuple[str, ...]:
    """Tasks so that each comes after the tasks it depends on (spec order among the ready ones)."""
    done: list[str] = []
    waiting = dict(after)
    while waiting:
        ready = [t for t, deps in waiting.items() if all(d in done for d in deps)]
        if not ready:
            raise InvalidArgument(
                f"pipeline_job.pipeline_spec.root.dag has a dependency cycle among {sorted(waiting)}"
            )
        done.append(ready[0])
        del waiting[ready[0]]
    return tuple(done)


def _parameters(root: Mapping[str, Any]) -> dict[str, Parameter]:
    definitions = (root.get("inputDefinitions") or {}).get("parameters") or {}
    parameters = {}
    for name, definition in definitions.items():
        kind = definition.get("parameterType") or _LEGACY_TYPES.get(definition.get("type", ""), "")
        if kind not in _EMPTY:
            raise InvalidArgument(
                f"pipeline_job.pipeline_spec.root.inputDefinitions.parameters[{name!r}] has unknown "
                f"type {kind or definition!r}"
            )
        default = definition.get("defaultValue")
        if default is None and definition.get("isOptional"):
            default = _EMPTY[kind]
        parameters[name] = Parameter(kind, default)
    return parameters


def check_parameters(
    pipeline: str, parameters: Mapping[str, Parameter], values: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """(values with defaults filled in, the first problem or None), as the pipeline reports it."""
    for name in values:
        if name not in parameters:
            return values, (
                f"The pipeline parameter {name} is not found in the pipeline job input definitions of "
                f"{pipeline}; known parameters: {sorted(parameters)}"
            )
    resolved = {}
    for name, parameter in parameters.items():
        if name not in values:
            if parameter.default is None:
                return values, f"The pipeline parameter {name} of {pipeline} is required but was not given"
            resolved[name] = parameter.default
            continue
        value = values[name]
        if name == "enable_checkpoint_selection" and isinstance(value, bool):
            value = "true" if value else "false"  # the SDK passes a bool; tune-large-model takes a string
        if not parameter.accepts(value):
            return values, (
                f"The pipeline parameter {name} of {pipeline} expects {parameter.type}, "
                f"got {type(value).__name__} {value!r}"
            )
        resolved[name] = int(value) if parameter.type == "NUMBER_INTEGER" else value
    return resolved, None
