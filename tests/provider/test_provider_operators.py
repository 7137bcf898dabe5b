"""The Airflow Google provider's Vertex AI operators, unchanged, judge the emulator (see conftest.py).

Each test reads what the provider's operators returned and pushed (XComs of a `dag.test()` run) and
checks it against what the emulator holds, read back with our own REST clients.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.provider.conftest import GEMINI_REGION, PARENT, ProviderRuns, ProviderStack, RestApi

SUCCEEDED = aiplatform_v1.PipelineState.PIPELINE_STATE_SUCCEEDED


def _state(value: Any) -> aiplatform_v1.PipelineState:
    """A PipelineState from either dict form the provider returns (enum name, or number)."""
    if isinstance(value, str):
        return aiplatform_v1.PipelineState.__members__[value]
    return aiplatform_v1.PipelineState(value)


@pytest.mark.parametrize("task_id", ["run_pipeline", "run_pipeline_deferred"])
def test_a_job_the_provider_runs_over_grpc_is_seen_over_rest(
    provider_runs: ProviderRuns, rest_api: RestApi, task_id: str
) -> None:
    xcom = provider_runs.vertex.task(task_id)
    job = rest_api.pipelines.get_pipeline_job(name=f"{PARENT}/pipelineJobs/{xcom['pipeline_job_id']}")

    assert job.state == SUCCEEDED
    assert job.display_name == task_id.replace("_", "-")
    assert job.pipeline_spec["pipelineInfo"]["name"] == "tune-large-model"
    params = provider_runs.conf["provider_vertex_operators"]
    assert job.runtime_config.parameter_values["dataset_uri"] == params["dataset_uri"]
    # What the operator returned (sync: the SDK's camelCase dict; deferred: the trigger's event).
    returned = xcom["return_value"]
    assert returned["name"] == job.name
    assert _state(returned["state"]) == SUCCEEDED
    # The tuned model the template registered, where the SDK reads it (the root task's execution).
    [root] = [task for task in job.job_detail.task_details if task.task_name == "tune-large-model"]
    tuned = rest_api.models.get_model(name=root.execution.metadata["output:model_resource_name"])
    assert tuned.display_name == params["model_display_name"]


def test_a_job_created_over_rest_is_seen_by_get_pipeline_job_operator(
    provider_runs: ProviderRuns, rest_api: RestApi
) -> None:
    got = provider_runs.vertex.task("get_pipeline")["return_value"]
    now = rest_api.pipelines.get_pipeline_job(name=provider_runs.rest_job.name)

    assert got["name"] == provider_runs.rest_job.name
    assert got["display_name"] == provider_runs.rest_job.display_name
    assert got["create_time"] == provider_runs.rest_job.create_time.rfc3339()
    assert got["pipeline_spec"]["pipelineInfo"]["name"] == "tune-large-model"
    assert _state(got["state"]) == now.state == SUCCEEDED


def test_upload_model_versions_and_aliases(provider_runs: ProviderRuns, rest_api: RestApi) -> None:
    run = provider_runs.vertex
    model_id = str(run.task("upload_model")["model_id"])
    model = f"{PARENT}/models/{model_id}"
    assert run.task("upload_model")["return_value"] == {"model": model, "model_version_id": "1"}
    second = run.task("upload_model_version")
    assert second["return_value"] == {"model": model, "model_version_id": "2"}
    assert str(second["model_id"]) == model_id

    listed = run.task("list_model_versions")["return_value"]
    assert [(m["name"], m["version_id"]) for m in listed] == [(model, "1"), (model, "2")]
    aliased = run.task("add_version_aliases")["return_value"]
    assert (aliased["version_id"], aliased["version_aliases"]) == ("2", ["candidate", "canary"])

    assert rest_api.models.get_model(name=f"{model}@candidate").version_id == "2"
    assert rest_api.models.get_model(name=f"{model}@canary").version_id == "2"
    assert list(rest_api.models.get_model(name=f"{model}@1").version_aliases) == ["default"]


def test_create_endpoint_deploy_and_undeploy(provider_runs: ProviderRuns, rest_api: RestApi) -> None:
    run = provider_runs.vertex
    created = run.task("create_endpoint")
    endpoint = f"{PARENT}/endpoints/{created['endpoint_id']}"
    assert created["return_value"]["name"] == endpoint
    assert created["return_value"]["display_name"] == "provider-endpoint"

    deployed = run.task("deploy_model")
    model_id = str(run.task("upload_model")["model_id"])
    returned = deployed["return_value"]["deployed_model"]
    assert returned["id"] == str(deployed["deployed_model_id"])
    assert (returned["model"], returned["model_version_id"]) == (f"{PARENT}/models/{model_id}", "2")
    assert returned["dedicated_resources"]["machine_spec"]["machine_type"] == "n1-standard-4"

    run.task("undeploy_model")  # succeeded
    now = rest_api.endpoints.get_endpoint(name=endpoint)
    assert now.display_name == "provider-endpoint"
    assert list(now.deployed_models) == [] and dict(now.traffic_split) == {}


def test_gen_ai_supervised_fine_tuning(provider_runs: ProviderRuns, rest_api: RestApi) -> None:
    xcom = provider_runs.gen_ai.task("tune_gemini")
    tuned_model, tuned_endpoint = xcom["tuned_model_name"], xcom["tuned_model_endpoint_name"]
    assert xcom["return_value"] == {
        "tuned_model_name": tuned_model,
        "tuned_model_endpoint_name": tuned_endpoint,
    }
    params = provider_runs.conf["provider_gen_ai_tuning"]
    parent = f"projects/aria-local/locations/{GEMINI_REGION}"
    jobs = rest_api.tuning.list_tuning_jobs(parent=parent)
    [job] = [j for j in jobs if j.tuned_model_display_name == params["tuned_model_display_name"]]
    assert job.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED
    assert job.base_model == "gemini-2.5-flash"
    assert job.supervised_tuning_spec.training_dataset_uri == params["training_data_uri"]
    assert (job.tuned_model.model, job.tuned_model.endpoint) == (tuned_model, tuned_endpoint)
    assert rest_api.models.get_model(name=tuned_model).display_name == params["tuned_model_display_name"]
    assert rest_api.endpoints.get_endpoint(name=tuned_endpoint).deployed_models


#: The calls each provider operator makes, as the emulator logs them (method, REST path pattern).
PROVIDER_GRPC_CALLS = {
    ("POST", rf"/v1/{PARENT}/pipelineJobs"),  # RunPipelineJobOperator (aiplatform SDK)
    ("GET", rf"/v1/{PARENT}/pipelineJobs/[^/]+"),  # the SDK's wait, the trigger, GetPipelineJobOperator
    ("POST", rf"/v1/{PARENT}/models:upload"),
    ("GET", rf"/v1/{PARENT}/models/\d+:listVersions"),
    ("POST", rf"/v1/{PARENT}/models/\d+@2:mergeVersionAliases"),
    ("POST", rf"/v1/{PARENT}/endpoints"),
    ("POST", rf"/v1/{PARENT}/endpoints/\d+:deployModel"),
    ("POST", rf"/v1/{PARENT}/endpoints/\d+:undeployModel"),
    ("GET", rf"/v1/{PARENT}/(models|endpoints)/[^/]+/operations/[^/]+"),  # long-running operations
}


def _matches(call: dict[str, str], pattern: tuple[str, str]) -> bool:
    return call["method"] == pattern[0] and re.fullmatch(pattern[1], call["path"]) is not None


def test_every_call_went_over_grpc_through_the_proxy_with_the_connection_token(
    provider_runs: ProviderRuns, provider_stack: ProviderStack
) -> None:
    calls = emulator_control(provider_stack.url, "auth/calls")["calls"]
    mine = provider_runs.account.email
    grpc_calls = [c for c in calls if c["surface"] == "grpc"]
    # Only the provider speaks gRPC here, and the emulator required a token on every call.
    assert {c["principal"] for c in grpc_calls} == {mine}
    for pattern in PROVIDER_GRPC_CALLS:
        assert any(_matches(c, pattern) for c in grpc_calls), f"no gRPC call {pattern}"
    # google-genai speaks REST (v1beta1; our own REST clients use v1), with the same connection's token.
    gen_ai = [c for c in calls if c["surface"] == "rest" and c["path"].startswith("/v1beta1/")]
    assert {c["principal"] for c in gen_ai} == {mine}
    assert ("POST", f"/v1beta1/projects/aria-local/locations/{GEMINI_REGION}/tuningJobs") in {
        (c["method"], c["path"]) for c in gen_ai
    }

    # Every gRPC connection was a tunnel to the regional endpoint the provider hard-codes; none refused.
    proxy_log = provider_stack.proxy.process.log_tail(lines=10_000).splitlines()
    tunnels = {line.split()[1] for line in proxy_log if line.startswith("tunnel ")}
    assert tunnels == {"europe-west4-aiplatform.googleapis.com:443"}
    assert [line for line in proxy_log if line.startswith("refused: CONNECT")] == []
