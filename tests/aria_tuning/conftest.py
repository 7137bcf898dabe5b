"""Fixtures for the Airflow components: an Airflow DB, the emulators, small datasets, a direct runner."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from scripts.emulators import emulator_control
from tests.support import airflow as airflow_support

BUCKET = "aria-datasets"
PIPELINE_ROOT = "gs://aria-pipeline-root"

# Eleven PaLM examples (the template needs at least ten) and their Gemini twins.
QA = [
    (f"¿Cuál es el estado del pedido {n}?", f"El pedido {n} está en camino y llega el día {n + 2}.")
    for n in range(11)
]


def _palm(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        json.dumps({"input_text": q, "output_text": a}, ensure_ascii=False) + "\n" for q, a in pairs
    )


def _gemini(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        json.dumps(
            {
                "contents": [
                    {"role": "user", "parts": [{"text": q}]},
                    {"role": "model", "parts": [{"text": a}]},
                ]
            },
            ensure_ascii=False,
        )
        + "\n"
        for q, a in pairs
    )


@pytest.fixture(scope="session")
def airflow_db() -> None:
    airflow_support.migrate_database()


@pytest.fixture
def vertex(vertex_emulator: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Vertex emulator URL, with `google_cloud_default` pointing at it for this test."""
    airflow_support.use_emulators(vertex_emulator, monkeypatch)
    return vertex_emulator


TRANSPORTS = ("grpc", "rest")


@pytest.fixture(params=TRANSPORTS)
def transport(
    request: pytest.FixtureRequest,
    vertex: str,
    vertex_emulator_grpc_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The test's `google_cloud_default` talks gRPC (production's default) or REST to the same emulator."""
    extra = (
        airflow_support.grpc_connection_extra(f"127.0.0.1:{vertex_emulator_grpc_port}")
        if request.param == "grpc"
        else airflow_support.connection_extra(vertex)
    )
    monkeypatch.setenv(airflow_support.CONN_ENV, airflow_support.connection_json(extra))
    return str(request.param)


@pytest.fixture(scope="session")
def datasets(gcs_emulator: str) -> dict[str, str]:
    """URIs of small train/eval files in both formats; `*_wrong` answers nothing like the eval split."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=airflow_support.PROJECT, credentials=AnonymousCredentials())
    for name in (BUCKET, PIPELINE_ROOT[len("gs://") :]):
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)
    wrong = [(q, "Lo siento, no entiendo la pregunta.") for q, _ in QA]
    files = {
        "palm_train": _palm(QA),
        "palm_eval": _palm(QA[:4]),
        "palm_wrong": _palm(wrong),
        "palm_broken": _palm(QA[:1]) + '{"input_text": "sin respuesta"}\n' + _palm(QA[1:]),
        "gemini_train": _gemini(QA),
        "gemini_eval": _gemini(QA[:4]),
        "gemini_wrong": _gemini(wrong),
    }
    uris = {}
    for key, text in files.items():
        blob = f"components-tests/{key}.jsonl"
        client.bucket(BUCKET).blob(blob).upload_from_string(text, content_type="application/jsonl")
        uris[key] = f"gs://{BUCKET}/{blob}"
    return uris


class Emulator:
    """The emulator's control plane, for steering jobs and injecting faults."""

    def __init__(self, url: str) -> None:
        self.url = url

    def force(self, job: str, verb: str, message: str | None = None) -> Any:
        return emulator_control(self.url, f"jobs/{job}:{verb}", {"message": message} if message else {})

    def fault(self, **rule: Any) -> Any:
        return emulator_control(self.url, "faults", rule)

    def fault_rules(self) -> list[dict[str, Any]]:
        return list(emulator_control(self.url, "faults")["faults"])

    def clear_faults(self) -> None:
        emulator_control(self.url, "faults", method="DELETE")

    def inspect(self, name: str) -> Any:
        return emulator_control(self.url, f"inspect/{name}")

    def calls(self, name: str, method: str = "GET") -> int:
        """How many API calls (REST and gRPC) the emulator has served on `name` (a resource name, or
        `name:verb`): the request log that tests wait on instead of sleeping."""
        served = emulator_control(self.url, "auth/calls")["calls"]
        return sum(1 for call in served if call["method"] == method and call["path"].endswith(name))

    async def served(self, name: str, at_least: int, method: str = "GET", timeout: float = 30.0) -> int:
        """Wait (in an event loop) until the emulator has served `at_least` calls on `name`."""
        deadline = time.monotonic() + timeout
        while (count := await asyncio.to_thread(self.calls, name, method)) < at_least:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{count} {method} calls on {name} after {timeout:.0f}s, waited for {at_least}"
                )
            await asyncio.sleep(0.02)
        return count


@pytest.fixture
def emulator(vertex: str) -> Emulator:
    control = Emulator(vertex)
    yield control
    control.clear_faults()


@dataclass
class TaskInstance:
    """Just what the operators read from `context["ti"]` (identity) and write (XCom)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1
    xcoms: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def new_ti(task_id: str = "tune") -> TaskInstance:
    return TaskInstance(
        dag_id=f"components_{uuid.uuid4().hex[:8]}", run_id="manual__2024-01-01", task_id=task_id
    )


def roundtrip(trigger: Any) -> Any:
    """What the triggerer does: rebuild the trigger from `serialize()` (class path and kwargs)."""
    from airflow.sdk._shared.module_loading import import_string

    path, kwargs = trigger.serialize()
    return import_string(path)(**kwargs)


async def first_event(trigger: Any) -> Any:
    """The first event's payload: a dict from our triggers, a datetime from the provider's DateTimeTrigger."""
    async for event in trigger.run():
        return dict(event.payload) if isinstance(event.payload, dict) else event.payload
    raise AssertionError("the trigger ended without an event")


def run_direct(operator: Any, ti: TaskInstance, before_trigger: Callable[[Any], None] | None = None) -> Any:
    """execute() -> (triggerer) -> the resume method, as the worker and triggerer would, in-process."""
    from airflow.sdk.exceptions import TaskDeferred

    context: Any = {"ti": ti, "task_instance": ti}
    method, kwargs = operator.execute, {}
    while True:
        try:
            return method(context, **kwargs)
        except TaskDeferred as deferred:
            if before_trigger is not None:
                before_trigger(deferred.trigger)
            event = asyncio.run(first_event(roundtrip(deferred.trigger)))
            method, kwargs = (
                getattr(operator, deferred.method_name),
                {**(deferred.kwargs or {}), "event": event},
            )


FAST = {"poll_interval": 0.05, "max_poll_interval": 0.3}
#: Steps that keep an emulated job running for minutes (tests then steer it through the control plane).
LONG_STEPS = 30_000


#: Operator arguments that travel inside the plan (data prep's one value) rather than on their own.
PLAN_KEYS = {
    "base_model": "model",
    "train_steps": "train_steps",
    "epochs": "epochs",
    "max_train_steps": "max_train_steps",
    "accelerator": "accelerator",
    "region": "region",
    "adapter_size": "adapter_size",
}


def as_plan(arguments: dict[str, Any]) -> dict[str, Any]:
    """`{base_model, train_steps, ...}` as the tuning operator takes them: one `plan` value."""
    plan = {PLAN_KEYS[k]: v for k, v in arguments.items() if k in PLAN_KEYS}
    return {**{k: v for k, v in arguments.items() if k not in PLAN_KEYS}, "plan": plan}


def tuning_operator(datasets: dict[str, str], model: str = "text-bison@001", **overrides: Any) -> Any:
    from aria_tuning.operators.tuning import VertexTuningOperator

    palm = model.startswith("text-bison")
    kwargs: dict[str, Any] = {
        "task_id": "tune",
        "base_model": model,
        "training_data_uri": datasets["palm_train" if palm else "gemini_train"],
        "evaluation_data_uri": datasets["palm_eval" if palm else "gemini_eval"],
        "train_steps": 5 if palm else None,
        "epochs": None if palm else 1,
        "max_train_steps": LONG_STEPS,
        "pipeline_root": PIPELINE_ROOT,
        **FAST,
        **overrides,
    }
    return VertexTuningOperator(**as_plan(kwargs))


def submit(operator: Any, ti: TaskInstance) -> Any:
    """Run execute() up to its deferral; returns the trigger it deferred on."""
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti, "task_instance": ti})
    return deferred.value.trigger


def jobs_for(vertex_url: str, ti: TaskInstance, region: str, pipeline: bool = True) -> list[Any]:
    """Every job the emulator holds for this task instance's run key (found by label, like the operator)."""
    from aria_tuning import vertex_jobs as vj
    from aria_tuning.hooks import VertexHook

    key = vj.run_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
    client = VertexHook().client("pipeline" if pipeline else "tuning", region)
    request = {
        "parent": f"projects/{airflow_support.PROJECT}/locations/{region}",
        "filter": f'labels.{vj.LABEL_RUN_KEY}="{key}"',
    }
    if pipeline:
        return list(client.list_pipeline_jobs(request=request))
    return list(client.list_tuning_jobs(request=request))
