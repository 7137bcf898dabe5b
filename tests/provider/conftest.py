"""The Airflow Google provider's operators against a Vertex AI emulator of their own, reached unchanged.

The provider hard-codes `{region}-aiplatform.googleapis.com:443` and the client libraries' default
transports. Nothing of that is patched: the DAGs run (`dag.test()`, tests/provider/run_dag.py) in a
subprocess whose environment alone points them at the emulator:

- gRPC (every Vertex hook, the aiplatform SDK behind RunPipelineJobOperator, the deferrable trigger):
  gRPC core tunnels through the HTTP CONNECT proxy named by `grpc_proxy` and trusts the roots in
  `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` (grpc/grpc, doc/environment_variables.md). The proxy
  (vertex_emulator.connect_proxy) sends `*.googleapis.com:443` to the emulator's TLS gRPC port,
  whose certificate names `*.googleapis.com`. google-api-core builds the channel with
  `grpc.compute_engine_channel_credentials` (grpc_helpers.py, `_create_composite_credentials`),
  i.e. TLS with gRPC's default roots: the file above.
- REST (google-genai, behind GenAISupervisedFineTuningTrainOperator): `GOOGLE_VERTEX_BASE_URL`
  (google/genai/_base_url.py, `get_base_url`) is the emulator's REST URL.
- Credentials: `google_cloud_default` holds a service-account `keyfile_dict` whose token_uri is the
  emulator's `/token` (tests/support/service_accounts.py), and the emulator requires a valid token
  (`--require-auth`), so the provider's own credential path runs too.

Only `grpc_proxy` is set, never `http(s)_proxy`: HTTP clients (GCS, the token endpoint) stay direct.
Each run gets its own AIRFLOW_HOME with a copy of the session's migrated metadata DB, so the proxy
environment and the runs' rows never reach the rest of the test session.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.emulators import start_vertex_emulator
from scripts.processes import Server, free_port, serve
from tests.support import airflow as airflow_support
from tests.support.service_accounts import ServiceAccountKey, create_key
from vertex_emulator import tls

REPO = Path(__file__).resolve().parents[2]
PROJECT = "aria-local"
REGION = "europe-west4"
GEMINI_REGION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
TEMPLATE_URI = "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"
#: The names the gRPC certificate must cover: what the provider dials, and loopback for direct checks.
CERT_HOSTS = ("*.googleapis.com", "localhost", "127.0.0.1")
#: Proxy settings gRPC core and HTTP clients read (checked case-insensitively): all replaced.
PROXY_VARIABLES = frozenset({"grpc_proxy", "https_proxy", "http_proxy", "no_grpc_proxy", "no_proxy"})
#: A DAG run waits at most this long; the Gemini one includes the provider hook's fixed 60 s sleep.
RUN_TIMEOUT_SECONDS = 300.0
BUCKET = "aria-datasets"


@dataclass(frozen=True)
class ProviderStack:
    """The provider's emulator (TLS gRPC, auth required), its CONNECT proxy and the certificate."""

    vertex: Server
    proxy: Server
    cert: Path

    @property
    def url(self) -> str:
        return self.vertex.url

    def environment(self, home: Path, connection: Mapping[str, Any]) -> dict[str, str]:
        """The whole environment of a provider run with AIRFLOW_HOME `home`."""
        env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
        bundle = {
            "name": "aria-tests-provider",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(REPO / "tests" / "provider" / "dags")},
        }
        env.update(
            {
                "grpc_proxy": self.proxy.url,
                "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(self.cert),
                "GOOGLE_VERTEX_BASE_URL": self.url,
                # google-auth: never probe the GCE metadata server, never read a developer's gcloud ADC.
                "NO_GCE_CHECK": "true",
                "CLOUDSDK_CONFIG": str(home / "gcloud"),
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
                airflow_support.CONN_ENV: json.dumps(
                    {"conn_type": "google_cloud_platform", "extra": dict(connection)}
                ),
            }
        )
        return env


@pytest.fixture(scope="module")
def provider_stack(gcs_emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderStack]:
    directory = tmp_path_factory.mktemp("provider-stack")
    cert = tls.self_signed(directory / "tls", hosts=CERT_HOSTS)
    grpc_port = free_port()
    tls_args = ("--grpc-tls-cert", str(cert.cert), "--grpc-tls-key", str(cert.key))
    vertex = start_vertex_emulator(
        directory,
        gcs_url=gcs_emulator,
        # Operations take a moment, as on Vertex, so the hooks poll them over gRPC too.
        extra_args=("--grpc-port", str(grpc_port), *tls_args, "--require-auth", "--operation-seconds", "0.2"),
        name="vertex-provider",
    )
    try:
        proxy = serve(
            "connect-proxy",
            lambda port: [
                *(sys.executable, "-m", "vertex_emulator.connect_proxy"),
                *("--port", str(port), "--upstream", f"127.0.0.1:{grpc_port}"),
            ],
            "/",  # answered 405 (not a CONNECT): enough to know it listens
            directory,
        )
    except BaseException:
        vertex.stop()
        raise
    try:
        yield ProviderStack(vertex, proxy, cert.cert)
    finally:
        proxy.stop()
        vertex.stop()


@dataclass
class ProviderRun:
    """One finished `dag.test()` of tests/provider/dags: task states and XComs, and its log."""

    result: dict[str, Any]
    log: Path

    def task(self, task_id: str) -> dict[str, Any]:
        task = self.result["tasks"][task_id]
        assert task["state"] == "success", f"{task_id} is {task['state']}\n{self.log_tail()}"
        return dict(task["xcom"])

    def log_tail(self, lines: int = 60) -> str:
        return f"--- {self.log} ---\n" + "\n".join(self.log.read_text().splitlines()[-lines:])


class RunningDag:
    """A `python -m tests.provider.run_dag` subprocess; `finish()` waits for it and reads its result."""

    def __init__(self, dag_id: str, conf: Mapping[str, Any], env: Mapping[str, str], home: Path) -> None:
        self.dag_id = dag_id
        self.out = home / "result.json"
        self.log = home / "run.log"
        argv = [sys.executable, "-m", "tests.provider.run_dag", dag_id, "--conf", json.dumps(conf)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*argv, "--out", str(self.out)],
                cwd=REPO,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def finish(self, deadline: float) -> ProviderRun:
        try:
            self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise TimeoutError(f"{self.dag_id} did not finish in time (log: {self.log})") from exc
        if not self.out.exists():
            tail = "\n".join(self.log.read_text().splitlines()[-60:])
            raise RuntimeError(f"{self.dag_id} exited {self.process.returncode} without a result:\n{tail}")
        return ProviderRun(json.loads(self.out.read_text()), self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _airflow_home(base: Path, name: str) -> Path:
    """A fresh AIRFLOW_HOME whose metadata DB is a copy of the session's migrated one."""
    airflow_support.migrate_database()
    home = base / name
    home.mkdir()
    source = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(source) as src, sqlite3.connect(home / "airflow.db") as dst:
        src.backup(dst)
    return home


@dataclass(frozen=True)
class RestApi:
    """Our own REST clients (GAPIC, transport="rest") on the provider stack, as another account."""

    pipelines: Any
    models: Any
    endpoints: Any
    tuning: Any


@pytest.fixture(scope="module")
def rest_api(provider_stack: ProviderStack) -> RestApi:
    from google.api_core.client_options import ClientOptions
    from google.cloud import aiplatform_v1

    credentials = create_key(provider_stack.url, name="rest-client").credentials()
    options = ClientOptions(api_endpoint=provider_stack.url)

    def client(cls: Any) -> Any:
        return cls(transport="rest", credentials=credentials, client_options=options)

    return RestApi(
        client(aiplatform_v1.PipelineServiceClient),
        client(aiplatform_v1.ModelServiceClient),
        client(aiplatform_v1.EndpointServiceClient),
        client(aiplatform_v1.GenAiTuningServiceClient),
    )


def _upload(name: str, rows: list[dict[str, Any]]) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    for bucket in (BUCKET, "aria-pipeline-root"):
        if client.lookup_bucket(bucket) is None:
            client.create_bucket(bucket)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    client.bucket(BUCKET).blob(name).upload_from_string(text, content_type="application/jsonl")
    return f"gs://{BUCKET}/{name}"


def _examples(tag: str) -> list[tuple[str, str]]:
    return [(f"¿Dónde está el pedido {n} ({tag})?", f"El pedido {n} llega mañana.") for n in range(12)]


def _rest_pipeline_job(rest: RestApi, dataset_uri: str, job_id: str) -> Any:
    """A tune-large-model job submitted by `templateUri` over REST (what our own hooks do)."""
    from google.cloud import aiplatform_v1

    values = {
        "project": PROJECT,
        "location": REGION,
        "large_model_reference": "text-bison@001",
        "model_display_name": f"{job_id}-model",
        "dataset_uri": dataset_uri,
        "train_steps": 5,
        "accelerator_type": "TPU",
    }
    job = aiplatform_v1.PipelineJob(
        display_name=job_id,
        template_uri=TEMPLATE_URI,
        runtime_config=aiplatform_v1.PipelineJob.RuntimeConfig(
            gcs_output_directory="gs://aria-pipeline-root", parameter_values=values
        ),
    )
    return rest.pipelines.create_pipeline_job(parent=PARENT, pipeline_job=job, pipeline_job_id=job_id)


@dataclass
class ProviderRuns:
    """What the module's two DAG runs left, and what they were given."""

    vertex: ProviderRun
    gen_ai: ProviderRun
    rest_job: Any  # aiplatform_v1.PipelineJob created over REST before the runs
    account: ServiceAccountKey  # the connection's service account
    conf: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def provider_runs(
    provider_stack: ProviderStack, rest_api: RestApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderRuns]:
    """Both provider DAGs, run side by side (the Gemini hook sleeps 60 s between polls)."""
    from google.cloud import aiplatform_v1

    base = tmp_path_factory.mktemp("provider-runs")
    tag = uuid.uuid4().hex[:8]
    palm = _upload(
        f"provider/{tag}/palm.jsonl", [{"input_text": q, "output_text": a} for q, a in _examples(tag)]
    )
    gemini = _upload(
        f"provider/{tag}/gemini.jsonl",
        [
            {
                "contents": [
                    {"role": "user", "parts": [{"text": q}]},
                    {"role": "model", "parts": [{"text": a}]},
                ]
            }
            for q, a in _examples(tag)
        ],
    )
    rest_job = _rest_pipeline_job(rest_api, palm, f"made-over-rest-{tag}")
    # The compiled tune-large-model spec Vertex stored for the template URI, as a local file: the
    # provider's template_path then goes through the SDK's local-file path (an inline pipelineSpec).
    template = base / "tune-large-model.json"
    template.write_text(json.dumps(json.loads(aiplatform_v1.PipelineJob.to_json(rest_job))["pipelineSpec"]))

    account = create_key(provider_stack.url, name="provider")
    connection = {"keyfile_dict": account.info, "project": PROJECT}
    conf = {
        "provider_vertex_operators": {
            "template_path": str(template),
            "dataset_uri": palm,
            "model_display_name": f"provider-{tag}",
            "rest_job_id": rest_job.name.rpartition("/")[2],
        },
        "provider_gen_ai_tuning": {"training_data_uri": gemini, "tuned_model_display_name": f"gemini-{tag}"},
    }
    running = []
    try:
        for dag_id, params in conf.items():
            home = _airflow_home(base, dag_id)
            running.append(RunningDag(dag_id, params, provider_stack.environment(home, connection), home))
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        vertex, gen_ai = (dag.finish(deadline) for dag in running)
        yield ProviderRuns(vertex, gen_ai, rest_job, account, conf)
    finally:
        for dag in running:
            dag.stop()
