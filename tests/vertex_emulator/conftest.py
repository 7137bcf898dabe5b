"""Clients and data for the emulator's conformance tests: official Google clients over REST and gRPC.

Every test gets its own project id, so tests share the session emulator without seeing each
other's jobs, models or endpoints (state is keyed by project and location).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1, storage

TPU_REGION = "europe-west4"
GPU_REGION = "us-central1"
TEMPLATE = "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"
BUCKET = "emulator-tests"


@dataclass
class Gapic:
    """The sync REST GAPIC clients the project uses, pointed at one emulator."""

    url: str
    pipelines: aiplatform_v1.PipelineServiceClient
    tuning: aiplatform_v1.GenAiTuningServiceClient
    models: aiplatform_v1.ModelServiceClient
    endpoints: aiplatform_v1.EndpointServiceClient
    prediction: aiplatform_v1.PredictionServiceClient


def gapic_clients(url: str) -> Gapic:
    kwargs: dict[str, Any] = {
        "credentials": AnonymousCredentials(),
        "client_options": ClientOptions(api_endpoint=url),
        "transport": "rest",
    }
    return Gapic(
        url,
        aiplatform_v1.PipelineServiceClient(**kwargs),
        aiplatform_v1.GenAiTuningServiceClient(**kwargs),
        aiplatform_v1.ModelServiceClient(**kwargs),
        aiplatform_v1.EndpointServiceClient(**kwargs),
        aiplatform_v1.PredictionServiceClient(**kwargs),
    )


@pytest.fixture(scope="session")
def gapic(vertex_emulator: str) -> Gapic:
    return gapic_clients(vertex_emulator)


@pytest.fixture
def project() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tpu_parent(project: str) -> str:
    return f"projects/{project}/locations/{TPU_REGION}"


@pytest.fixture
def gpu_parent(project: str) -> str:
    return f"projects/{project}/locations/{GPU_REGION}"


@pytest.fixture
def sdk(vertex_emulator: str, project: str) -> None:
    """The high-level SDK (`google.cloud.aiplatform`) initialised against the emulator, REST transport."""
    from google.cloud import aiplatform

    aiplatform.init(
        project=project,
        location=GPU_REGION,
        api_endpoint=vertex_emulator,
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )


@pytest.fixture(scope="session")
def bucket(gcs_emulator: str) -> storage.Bucket:
    client = storage.Client(project="emulator-tests", credentials=AnonymousCredentials())
    return client.create_bucket(BUCKET)


Upload = Callable[[str, list[Any] | str], str]


@pytest.fixture
def upload(bucket: storage.Bucket) -> Upload:
    """Write JSONL rows (dicts) or raw text to the GCS emulator; returns the gs:// URI."""

    def write(path: str, rows: list[Any] | str) -> str:
        text = rows if isinstance(rows, str) else "\n".join(json.dumps(row) for row in rows) + "\n"
        name = f"{uuid.uuid4().hex[:8]}/{path}"
        bucket.blob(name).upload_from_string(text)
        return f"gs://{bucket.name}/{name}"

    return write


def palm_rows(tag: str, n: int = 12) -> list[dict[str, str]]:
    return [{"input_text": f"question {i} about {tag}", "output_text": f"{tag} answer {i}"} for i in range(n)]


def gemini_rows(tag: str, n: int = 12) -> list[dict[str, Any]]:
    return [
        {
            "contents": [
                {"role": "user", "parts": [{"text": f"question {i} about {tag}"}]},
                {"role": "model", "parts": [{"text": f"{tag} answer {i}"}]},
            ]
        }
        for i in range(n)
    ]


def pipeline_job(
    dataset_uri: str,
    location: str = TPU_REGION,
    accelerator: str = "TPU",
    train_steps: int = 10,
    **extra: Any,
) -> aiplatform_v1.PipelineJob:
    values: dict[str, Any] = {
        "project": "aria-local",
        "location": location,
        "large_model_reference": "text-bison@001",
        "model_display_name": "emulator-test-model",
        "dataset_uri": dataset_uri,
        "train_steps": train_steps,
        "accelerator_type": accelerator,
        **extra,
    }
    return aiplatform_v1.PipelineJob(
        display_name="tune",
        labels={"suite": "emulator"},
        template_uri=TEMPLATE,
        runtime_config=aiplatform_v1.PipelineJob.RuntimeConfig(
            gcs_output_directory="gs://aria-pipeline-root", parameter_values=values
        ),
    )


def wait_for(get: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    """Poll `get()` until `done(result)`; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = get()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


#: Latency injected by the concurrency tests: several times what forty calls take to reach the
#: emulator, so "the rule holds all of them and none is answered" means they are served side by side.
#: (Not longer: a REST call the client gave up on is still held until then, also at shutdown.)
HOLD_MS = 5_000


async def held_together(
    url: str, rule_id: str, calls: Sequence[asyncio.Future[Any]], timeout: float = 60
) -> None:
    """Wait until latency rule `rule_id` holds every one of `calls` at once (its hit count is taken
    before the delay); fails if a call is answered first."""
    from scripts.emulators import emulator_control

    def hits() -> int:
        rules = emulator_control(url, "faults")["faults"]
        return int(next(rule["hits"] for rule in rules if rule["id"] == rule_id))

    deadline = time.monotonic() + timeout
    while (held := await asyncio.to_thread(hits)) < len(calls):
        assert not any(call.done() for call in calls), f"a call was answered with {held} of {len(calls)} in"
        assert time.monotonic() < deadline, f"only {held} of {len(calls)} calls reached the emulator"
        await asyncio.sleep(0.05)
    assert not any(call.done() for call in calls), "a call was answered before the last one came in"


def terminal_pipeline(state: aiplatform_v1.PipelineState) -> bool:
    return state.name in ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")


def terminal_job(state: aiplatform_v1.JobState) -> bool:
    return state.name in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")


# -- gRPC: the GAPIC clients on their grpc and grpc_asyncio transports ----------------------------
GRPC_TRANSPORTS = ("grpc", "grpc_asyncio")


class _Loop:
    """An event loop on a thread of its own: asyncio clients live on it while a sync test body waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="grpc-asyncio-clients", daemon=True)
        self.thread.start()

    def run(self, awaitable: Awaitable[Any], timeout: float = 60.0) -> Any:
        async def wrapped() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class _Blocking:
    """An asyncio GAPIC client whose methods block until their coroutine finishes on `loop`."""

    def __init__(self, client: Any, loop: _Loop) -> None:
        self._client, self._loop = client, loop

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return self._loop.run(result) if inspect.isawaitable(result) else result

        return call


class GrpcApi:
    """The GAPIC clients (aiplatform_v1 or v1beta1) of one gRPC transport on one channel to `target`.

    Asyncio clients are wrapped so one test body drives either transport: their methods block, and
    `result(operation)` waits for a long-running operation of either kind.
    """

    def __init__(
        self,
        transport: str,
        target: str,
        loop: _Loop,
        credentials: grpc.ChannelCredentials | None = None,
        version: ModuleType = aiplatform_v1,
    ) -> None:
        self.transport, self.target, self._loop = transport, target, loop
        if transport == "grpc":
            self.channel: Any = (
                grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
            )
        else:
            # grpc.aio channels belong to the loop they are made on.
            async def open_channel() -> grpc.aio.Channel:
                if credentials:
                    return grpc.aio.secure_channel(target, credentials)
                return grpc.aio.insecure_channel(target)

            self.channel = loop.run(open_channel())
        self.pipelines = self._client(version, "PipelineService")
        self.tuning = self._client(version, "GenAiTuningService")
        self.models = self._client(version, "ModelService")
        self.endpoints = self._client(version, "EndpointService")
        self.prediction = self._client(version, "PredictionService")

    def _client(self, version: ModuleType, service: str) -> Any:
        if self.transport == "grpc":
            cls = getattr(version, f"{service}Client")
            return cls(transport=cls.get_transport_class("grpc")(channel=self.channel))
        cls = getattr(version, f"{service}AsyncClient")

        async def build() -> Any:
            return cls(transport=cls.get_transport_class("grpc_asyncio")(channel=self.channel))

        return _Blocking(self._loop.run(build()), self._loop)

    def result(self, operation: Any, timeout: float = 30.0) -> Any:
        """The response of a long-running operation, polled over this transport's Operations service."""
        outcome = operation.result(timeout=timeout)
        return self._loop.run(outcome) if inspect.isawaitable(outcome) else outcome

    def close(self) -> None:
        if self.transport == "grpc":
            self.channel.close()
        else:
            self._loop.run(self.channel.close())


@pytest.fixture(scope="session")
def grpc_loop() -> Iterator[_Loop]:
    loop = _Loop()
    yield loop
    loop.close()


GrpcApiFactory = Callable[..., GrpcApi]


@pytest.fixture
def grpc_api_factory(grpc_target: str, grpc_loop: _Loop) -> Iterator[GrpcApiFactory]:
    """`make(transport, target=<session emulator>, credentials=None, version=aiplatform_v1)` -> GrpcApi;
    channels are closed when the test ends."""
    made: list[GrpcApi] = []

    def make(
        transport: str,
        target: str = grpc_target,
        credentials: grpc.ChannelCredentials | None = None,
        version: ModuleType = aiplatform_v1,
    ) -> GrpcApi:
        api = GrpcApi(transport, target, grpc_loop, credentials, version)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture(params=GRPC_TRANSPORTS)
def grpc_api(request: pytest.FixtureRequest, grpc_api_factory: GrpcApiFactory) -> GrpcApi:
    """The session emulator's GAPIC clients over plain-text gRPC, sync and asyncio (parametrized)."""
    return grpc_api_factory(request.param)


@pytest.fixture(scope="session")
def grpc_target(vertex_emulator: str, vertex_emulator_grpc_port: int) -> str:
    """The session emulator's plain-text gRPC target (same backend, faults and counts as its REST)."""
    return f"127.0.0.1:{vertex_emulator_grpc_port}"


# -- credentials (test_auth*.py) ---------------------------------------------------------------
@pytest.fixture
def auth_required(vertex_emulator: str) -> Iterator[str]:
    """The session emulator refuses calls without a valid bearer token during the test (then as before)."""
    from scripts.emulators import emulator_control

    before = emulator_control(vertex_emulator, "auth")["required"]
    emulator_control(vertex_emulator, "auth", {"required": True})
    try:
        yield vertex_emulator
    finally:
        emulator_control(vertex_emulator, "auth", {"required": before})


@dataclass(frozen=True)
class AuthEmulator:
    """A Vertex emulator started with --require-auth, its GCS gate and gRPC port, and its log file."""

    url: str
    gcs_gate: str
    grpc_target: str
    log: Path


@pytest.fixture(scope="session")
def auth_emulator(gcs_emulator: str, run_dir: Path) -> Iterator[AuthEmulator]:
    """A Vertex emulator of its own requiring auth, with a GCS gate in front of the session's GCS
    emulator and a gRPC port; debug logging, so the log shows whatever the emulator would ever log."""
    from scripts.emulators import start_vertex_emulator
    from scripts.processes import wait_http
    from tests.support.servers import start_on_free_ports

    def start(ports: list[int]) -> Any:
        options = ["--require-auth", "--gcs-gate-port", str(ports[0]), "--grpc-port", str(ports[1])]
        return start_vertex_emulator(
            run_dir, gcs_url=gcs_emulator, extra_args=[*options, "--log-level", "debug"], name="vertex-auth"
        )

    server, (gate_port, grpc_port) = start_on_free_ports(start, count=2)
    try:
        gate = f"http://127.0.0.1:{gate_port}"
        wait_http(f"{gate}/storage/v1/b", 30, server.process.gone)
        yield AuthEmulator(server.url, gate, f"127.0.0.1:{grpc_port}", Path(server.process.log))
    finally:
        server.stop()
