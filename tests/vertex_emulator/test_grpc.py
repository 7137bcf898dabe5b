"""The emulator over gRPC: GAPIC clients on their grpc and grpc_asyncio transports, one backend with REST."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1, aiplatform_v1beta1
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2

from scripts.emulators import emulator_control
from tests.support.emulator_settings import EmulatorSettings
from tests.vertex_emulator.conftest import (
    Gapic,
    GrpcApi,
    GrpcApiFactory,
    Upload,
    gemini_rows,
    palm_rows,
    pipeline_job,
    terminal_job,
    terminal_pipeline,
    wait_for,
)
from tests.vertex_emulator.test_tuning import tuning_job

CANCELLED_PIPELINE = aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED


def test_pipeline_job_create_get_list_cancel(grpc_api: GrpcApi, tpu_parent: str, upload: Upload) -> None:
    dataset = upload("train.jsonl", palm_rows("grpc"))
    created = grpc_api.pipelines.create_pipeline_job(
        parent=tpu_parent,
        pipeline_job=pipeline_job(dataset, train_steps=100_000),
        pipeline_job_id="over-grpc",
    )
    assert created.name == f"{tpu_parent}/pipelineJobs/over-grpc"
    assert created.state == aiplatform_v1.PipelineState.PIPELINE_STATE_PENDING
    assert grpc_api.pipelines.get_pipeline_job(name=created.name).display_name == "tune"
    listed = grpc_api.pipelines.list_pipeline_jobs(parent=tpu_parent)
    assert [job.name for job in listed.pipeline_jobs] == [created.name]

    grpc_api.pipelines.cancel_pipeline_job(name=created.name)
    job = wait_for(
        lambda: grpc_api.pipelines.get_pipeline_job(name=created.name), lambda j: terminal_pipeline(j.state)
    )
    assert job.state == CANCELLED_PIPELINE


def test_tuning_job_create_get_list_cancel(grpc_api: GrpcApi, gpu_parent: str, upload: Upload) -> None:
    train = upload("train.jsonl", gemini_rows("grpc-tune"))
    created = grpc_api.tuning.create_tuning_job(
        parent=gpu_parent, tuning_job=tuning_job(train, epochs=100, run="grpc")
    )
    assert created.name.startswith(f"{gpu_parent}/tuningJobs/")
    assert grpc_api.tuning.get_tuning_job(name=created.name).labels["run"] == "grpc"
    listed = grpc_api.tuning.list_tuning_jobs(request={"parent": gpu_parent, "filter": 'labels.run="grpc"'})
    assert [job.name for job in listed.tuning_jobs] == [created.name]

    grpc_api.tuning.cancel_tuning_job(name=created.name)
    job = wait_for(lambda: grpc_api.tuning.get_tuning_job(name=created.name), lambda j: terminal_job(j.state))
    assert job.state == aiplatform_v1.JobState.JOB_STATE_CANCELLED


def test_what_one_transport_creates_the_other_sees(
    grpc_api_factory: GrpcApiFactory, gapic: Gapic, vertex_emulator: str, tpu_parent: str, upload: Upload
) -> None:
    api = grpc_api_factory("grpc")
    dataset = upload("train.jsonl", palm_rows("both"))
    over_grpc = api.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=pipeline_job(dataset), pipeline_job_id="made-over-grpc"
    )
    over_rest = gapic.pipelines.create_pipeline_job(
        parent=tpu_parent, pipeline_job=pipeline_job(dataset), pipeline_job_id="made-over-rest"
    )

    assert gapic.pipelines.get_pipeline_job(name=over_grpc.name).create_time == over_grpc.create_time
    assert api.pipelines.get_pipeline_job(name=over_rest.name).create_time == over_rest.create_time
    names = {over_grpc.name, over_rest.name}
    assert {job.name for job in gapic.pipelines.list_pipeline_jobs(parent=tpu_parent)} == names
    assert {job.name for job in api.pipelines.list_pipeline_jobs(parent=tpu_parent)} == names
    # Counted under the REST route either way: the control plane governs both transports.
    counts = emulator_control(vertex_emulator, "stats")["by_method"]
    assert counts["POST /v1/{parent=projects/*/locations/*}/pipelineJobs"] >= 2


@pytest.fixture
def slow_operations(emulator_settings: EmulatorSettings) -> None:
    """Operations of the session emulator take 0.3 s, so clients poll them (restored afterwards)."""
    emulator_settings.set(operationSeconds=0.3)


def test_upload_model_and_poll_its_operation_over_grpc(
    grpc_api: GrpcApi, gpu_parent: str, vertex_emulator: str, slow_operations: None
) -> None:
    model = aiplatform_v1.Model(display_name="grpc-model", artifact_uri="gs://aria-models/x")
    operation = grpc_api.models.upload_model(parent=gpu_parent, model=model)
    assert not operation.operation.done
    polls = _get_operation_calls(vertex_emulator)

    uploaded = grpc_api.result(operation)

    assert isinstance(uploaded, aiplatform_v1.UploadModelResponse)
    assert _get_operation_calls(vertex_emulator) > polls
    assert grpc_api.models.get_model(name=uploaded.model).display_name == "grpc-model"
    second = grpc_api.result(
        grpc_api.models.upload_model(
            request={"parent": gpu_parent, "model": model, "parent_model": uploaded.model}
        )
    )
    assert second.model_version_id == "2"
    versions = grpc_api.models.list_model_versions(name=uploaded.model)
    assert [v.version_id for v in versions.models] == ["1", "2"]
    merged = grpc_api.models.merge_version_aliases(name=f"{uploaded.model}@2", version_aliases=["champion"])
    assert list(merged.version_aliases) == ["champion"]

    name = operation.operation.name
    assert grpc_api.models.get_operation(request=operations_pb2.GetOperationRequest(name=name)).done
    raw = grpc_api.models.wait_operation(request=operations_pb2.WaitOperationRequest(name=name))
    # The GAPIC mixin's WaitOperation stub declares no response_deserializer: it hands back the bytes.
    assert operations_pb2.Operation.FromString(raw).done
    listed = grpc_api.models.list_operations(
        request=operations_pb2.ListOperationsRequest(name=uploaded.model)
    )
    assert name in {op.name for op in listed.operations}


def _get_operation_calls(url: str) -> int:
    """GetOperation calls so far, under any operation parent (counted by REST route)."""
    counts = emulator_control(url, "stats")["by_method"]
    return sum(
        n for route, n in counts.items() if route.startswith("GET /v1/") and route.endswith("/operations/*}")
    )


def new_model(api: GrpcApi, parent: str, display: str) -> str:
    model = aiplatform_v1.Model(display_name=display, artifact_uri="gs://aria-models/x")
    return str(api.result(api.models.upload_model(parent=parent, model=model)).model)


def new_endpoint(api: GrpcApi, parent: str, display: str) -> aiplatform_v1.Endpoint:
    endpoint = aiplatform_v1.Endpoint(display_name=display)
    return api.result(api.endpoints.create_endpoint(parent=parent, endpoint=endpoint))


def test_endpoint_create_deploy_split_undeploy(grpc_api: GrpcApi, gpu_parent: str) -> None:
    model = new_model(grpc_api, gpu_parent, "champion")
    endpoint = new_endpoint(grpc_api, gpu_parent, "grpc-serving")
    resources = aiplatform_v1.DedicatedResources(
        machine_spec=aiplatform_v1.MachineSpec(machine_type="n1-standard-4"), min_replica_count=1
    )
    first = grpc_api.result(
        grpc_api.endpoints.deploy_model(
            endpoint=endpoint.name,
            deployed_model=aiplatform_v1.DeployedModel(model=model, dedicated_resources=resources),
        )
    ).deployed_model
    second = grpc_api.result(
        grpc_api.endpoints.deploy_model(
            endpoint=endpoint.name,
            deployed_model=aiplatform_v1.DeployedModel(model=model, dedicated_resources=resources),
            traffic_split={"0": 10, first.id: 90},
        )
    ).deployed_model
    state = grpc_api.endpoints.get_endpoint(name=endpoint.name)
    assert dict(state.traffic_split) == {first.id: 90, second.id: 10}

    state.traffic_split = {first.id: 50, second.id: 50}
    updated = grpc_api.endpoints.update_endpoint(
        endpoint=state, update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"])
    )
    assert dict(updated.traffic_split) == {first.id: 50, second.id: 50}

    grpc_api.result(
        grpc_api.endpoints.undeploy_model(
            endpoint=endpoint.name, deployed_model_id=first.id, traffic_split={second.id: 100}
        )
    )
    state = grpc_api.endpoints.get_endpoint(name=endpoint.name)
    assert [d.id for d in state.deployed_models] == [second.id]
    assert dict(state.traffic_split) == {second.id: 100}
    listed = grpc_api.endpoints.list_endpoints(parent=gpu_parent)
    assert [e.name for e in listed.endpoints] == [endpoint.name]


def test_predict_and_generate_content(grpc_api: GrpcApi, gpu_parent: str) -> None:
    model = new_model(grpc_api, gpu_parent, "served")
    endpoint = new_endpoint(grpc_api, gpu_parent, "e")
    grpc_api.result(
        grpc_api.endpoints.deploy_model(
            endpoint=endpoint.name, deployed_model=aiplatform_v1.DeployedModel(model=model)
        )
    )

    served = grpc_api.prediction.predict(endpoint=endpoint.name, instances=[{"prompt": "hello"}])
    assert served.model == model and served.predictions[0]["content"] == "[served] hello"
    answer = grpc_api.prediction.generate_content(
        model=endpoint.name,
        contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="hi there")])],
    )
    assert answer.candidates[0].content.parts[0].text == "[served] hi there"
    # The same RPC on a publisher model: the request's resource picks the other route of the table.
    base = grpc_api.prediction.generate_content(
        model=f"{gpu_parent}/publishers/google/models/gemini-2.0-flash-001",
        contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="hi there")])],
    )
    assert base.model_version == "gemini-2.0-flash-001" and base.candidates[0].content.parts[0].text


def test_x_goog_fieldmask_returns_a_partial_response(
    grpc_api: GrpcApi, tpu_parent: str, upload: Upload
) -> None:
    dataset = upload("train.jsonl", palm_rows("mask"))
    created = grpc_api.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=pipeline_job(dataset))

    partial = grpc_api.pipelines.get_pipeline_job(
        name=created.name, metadata=[("x-goog-fieldmask", "name,state")]
    )

    unspecified = aiplatform_v1.PipelineState.PIPELINE_STATE_UNSPECIFIED
    assert partial.name == created.name and partial.state != unspecified  # kept (the job moves on)
    assert partial.display_name == "" and not partial.runtime_config.parameter_values
    assert grpc_api.pipelines.get_pipeline_job(name=created.name).display_name == "tune"
    with pytest.raises(exceptions.InvalidArgument, match="invalid field selector"):
        grpc_api.pipelines.create_pipeline_job(
            parent=tpu_parent, pipeline_job=pipeline_job(dataset), metadata=[("x-goog-fieldmask", "name,(")]
        )
    assert len(grpc_api.pipelines.list_pipeline_jobs(parent=tpu_parent).pipeline_jobs) == 1  # none created


def test_v1beta1_services_share_the_backend(
    grpc_api_factory: GrpcApiFactory, gapic: Gapic, tpu_parent: str, upload: Upload
) -> None:
    beta = grpc_api_factory("grpc", version=aiplatform_v1beta1)
    dataset = upload("train.jsonl", palm_rows("beta"))
    job = gapic.pipelines.create_pipeline_job(parent=tpu_parent, pipeline_job=pipeline_job(dataset))

    fetched = beta.pipelines.get_pipeline_job(name=job.name)

    assert isinstance(fetched, aiplatform_v1beta1.PipelineJob)
    assert fetched.name == job.name and fetched.template_uri == job.template_uri
