"""Endpoints and online prediction, through GAPIC REST, the high-level SDK and google-genai."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, aiplatform_v1
from google.protobuf import field_mask_pb2

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import (
    GPU_REGION,
    Gapic,
    Upload,
    palm_rows,
    pipeline_job,
    terminal_pipeline,
    wait_for,
)
from tests.vertex_emulator.test_models import upload as upload_model
from tests.vertex_emulator.test_tuning import genai_client


def new_endpoint(
    gapic: Gapic, parent: str, display: str = "serving", endpoint_id: str = ""
) -> aiplatform_v1.Endpoint:
    operation = gapic.endpoints.create_endpoint(
        parent=parent, endpoint=aiplatform_v1.Endpoint(display_name=display), endpoint_id=endpoint_id
    )
    return operation.result(timeout=10)


def test_create_get_list_update_delete(gapic: Gapic, gpu_parent: str) -> None:
    created = new_endpoint(gapic, gpu_parent, "aria-serving", endpoint_id="aria-1")
    assert created.name == f"{gpu_parent}/endpoints/aria-1"
    new_endpoint(gapic, gpu_parent, "other")
    assert gapic.endpoints.get_endpoint(name=created.name).display_name == "aria-serving"
    listed = gapic.endpoints.list_endpoints(
        request={"parent": gpu_parent, "filter": 'display_name="aria-serving"'}
    )
    assert [e.name for e in listed] == [created.name]
    with pytest.raises(exceptions.Conflict):
        new_endpoint(gapic, gpu_parent, "again", endpoint_id="aria-1")

    created.display_name = "renamed"
    created.traffic_split = {}
    updated = gapic.endpoints.update_endpoint(
        endpoint=created, update_mask=field_mask_pb2.FieldMask(paths=["display_name", "traffic_split"])
    )
    assert updated.display_name == "renamed"
    with pytest.raises(exceptions.BadRequest, match="cannot be updated"):
        gapic.endpoints.update_endpoint(
            endpoint=created, update_mask=field_mask_pb2.FieldMask(paths=["network"])
        )

    gapic.endpoints.delete_endpoint(name=created.name).result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        gapic.endpoints.get_endpoint(name=created.name)


def test_deploy_split_mutate_undeploy(gapic: Gapic, gpu_parent: str) -> None:
    model, _ = upload_model(gapic, gpu_parent, "champion")
    challenger, _ = upload_model(gapic, gpu_parent, "challenger")
    endpoint = new_endpoint(gapic, gpu_parent)
    resources = aiplatform_v1.DedicatedResources(
        machine_spec=aiplatform_v1.MachineSpec(machine_type="n1-standard-4"), min_replica_count=1
    )
    first = gapic.endpoints.deploy_model(
        endpoint=endpoint.name,
        deployed_model=aiplatform_v1.DeployedModel(model=model, dedicated_resources=resources),
    ).result(timeout=10)
    second = gapic.endpoints.deploy_model(
        endpoint=endpoint.name,
        deployed_model=aiplatform_v1.DeployedModel(model=f"{challenger}@1", dedicated_resources=resources),
        traffic_split={"0": 20, first.deployed_model.id: 80},
    ).result(timeout=10)
    state = gapic.endpoints.get_endpoint(name=endpoint.name)
    assert dict(state.traffic_split) == {first.deployed_model.id: 80, second.deployed_model.id: 20}
    assert gapic.models.get_model(name=model).deployed_models[0].endpoint == endpoint.name
    served = gapic.prediction.predict(endpoint=endpoint.name, instances=[{"prompt": "hello"}])
    assert served.model == model and served.predictions[0]["content"] == "[champion] hello"

    with pytest.raises(exceptions.BadRequest, match="must add up to 100"):
        gapic.endpoints.deploy_model(
            endpoint=endpoint.name,
            deployed_model=aiplatform_v1.DeployedModel(model=model),
            traffic_split={"0": 50},
        )

    mutated = gapic.endpoints.mutate_deployed_model(
        endpoint=endpoint.name,
        deployed_model=aiplatform_v1.DeployedModel(
            id=second.deployed_model.id,
            dedicated_resources=aiplatform_v1.DedicatedResources(
                machine_spec=resources.machine_spec, min_replica_count=2, max_replica_count=3
            ),
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["dedicated_resources"]),
    ).result(timeout=10)
    assert mutated.deployed_model.dedicated_resources.max_replica_count == 3
    with pytest.raises(exceptions.BadRequest, match="cannot be mutated"):
        gapic.endpoints.mutate_deployed_model(
            endpoint=endpoint.name,
            deployed_model=aiplatform_v1.DeployedModel(id=second.deployed_model.id, display_name="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )

    with pytest.raises(exceptions.BadRequest, match="still has deployed models"):
        gapic.endpoints.delete_endpoint(name=endpoint.name)
    gapic.endpoints.undeploy_model(endpoint=endpoint.name, deployed_model_id=first.deployed_model.id).result()
    state = gapic.endpoints.get_endpoint(name=endpoint.name)
    assert [d.id for d in state.deployed_models] == [second.deployed_model.id]
    assert dict(state.traffic_split) == {second.deployed_model.id: 100}
    with pytest.raises(exceptions.NotFound):
        gapic.endpoints.undeploy_model(endpoint=endpoint.name, deployed_model_id="404").result()


def test_deploying_an_unknown_model_is_404_and_predicting_on_an_empty_endpoint_is_400(
    gapic: Gapic, gpu_parent: str
) -> None:
    endpoint = new_endpoint(gapic, gpu_parent)
    with pytest.raises(exceptions.NotFound):
        gapic.endpoints.deploy_model(
            endpoint=endpoint.name,
            deployed_model=aiplatform_v1.DeployedModel(model=f"{gpu_parent}/models/404"),
        )
    with pytest.raises(exceptions.BadRequest, match="no deployed model"):
        gapic.prediction.predict(endpoint=endpoint.name, instances=[{"content": "hi"}])


def test_answers_prove_which_dataset_a_deployed_model_was_tuned_on(
    gapic: Gapic, project: str, upload: Upload, vertex_emulator: str
) -> None:
    """Two tuning runs on two dataset versions: each endpoint answers from its own version."""
    parent = f"projects/{project}/locations/{GPU_REGION}"
    endpoints = {}
    for version in ("data-v1", "data-v2"):
        job = pipeline_job(upload("train.jsonl", palm_rows(version)), location=GPU_REGION, accelerator="GPU")
        job = gapic.pipelines.create_pipeline_job(parent=parent, pipeline_job=job)
        job = wait_for(
            lambda name=job.name: gapic.pipelines.get_pipeline_job(name=name),
            lambda j: terminal_pipeline(j.state),
        )
        endpoints[version] = job.job_detail.task_details[-1].execution.metadata[
            "output:endpoint_resource_name"
        ]

    for version, endpoint in endpoints.items():
        # A paraphrase still finds the nearest training prompt.
        answer = gapic.prediction.predict(
            endpoint=endpoint, instances=[{"content": "Question 7 about data?"}]
        )
        assert answer.predictions[0]["content"] == f"{version} answer 7"

    model = gapic.prediction.predict(endpoint=endpoints["data-v1"], instances=[{"content": "x"}]).model
    emulator_control(vertex_emulator, f"models/{model}:degrade", {})
    degraded = gapic.prediction.predict(
        endpoint=endpoints["data-v1"], instances=[{"content": "question 7 about data-v1"}]
    )
    assert degraded.predictions[0]["content"] == "[emulator-test-model] question 7 about data-v1"
    emulator_control(vertex_emulator, f"models/{model}:restore", {})
    restored = gapic.prediction.predict(
        endpoint=endpoints["data-v1"], instances=[{"content": "question 7 about data-v1"}]
    )
    assert restored.predictions[0]["content"] == "data-v1 answer 7"

    genai = genai_client(vertex_emulator, project)
    assert genai.models.generate_content(
        model=endpoints["data-v2"], contents="question 1 about data-v2"
    ).text == ("data-v2 answer 1")


def test_high_level_sdk_creates_deploys_predicts_and_undeploys(sdk: None) -> None:
    model = aiplatform.Model.upload(
        display_name="sdk-served",
        artifact_uri="gs://aria-models/a",
        serving_container_image_uri="gcr.io/x/y:1",
    )
    endpoint = aiplatform.Endpoint.create(display_name="sdk-endpoint")
    model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    prediction = endpoint.predict(instances=[{"content": "ping"}])
    assert prediction.predictions[0]["content"] == "[sdk-served] ping"
    assert prediction.deployed_model_id == endpoint.list_models()[0].id
    assert [e.resource_name for e in aiplatform.Endpoint.list(filter='display_name="sdk-endpoint"')] == [
        endpoint.resource_name
    ]
    endpoint.undeploy_all()
    assert endpoint.list_models() == []
    endpoint.delete()


def test_a_registered_copy_of_a_tuned_model_answers_like_it(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    from tests.vertex_emulator.conftest import gemini_rows, terminal_job
    from tests.vertex_emulator.test_tuning import tuning_job

    job = gapic.tuning.create_tuning_job(
        parent=gpu_parent, tuning_job=tuning_job(upload("t.jsonl", gemini_rows("copy")), epochs=1)
    )
    job = wait_for(lambda: gapic.tuning.get_tuning_job(name=job.name), lambda j: terminal_job(j.state))
    tuned = gapic.models.get_model(name=job.tuned_model.model)
    assert tuned.artifact_uri

    registry, _ = upload_model(gapic, gpu_parent, "ARIA-text")
    copy = gapic.models.upload_model(
        request={
            "parent": gpu_parent,
            "parent_model": registry,
            "model": aiplatform_v1.Model(display_name="ARIA-text", artifact_uri=tuned.artifact_uri),
        }
    ).result(timeout=10)
    endpoint = new_endpoint(gapic, gpu_parent)
    gapic.endpoints.deploy_model(
        endpoint=endpoint.name,
        deployed_model=aiplatform_v1.DeployedModel(model=f"{copy.model}@{copy.model_version_id}"),
    ).result(timeout=10)
    answer = gapic.prediction.predict(endpoint=endpoint.name, instances=[{"prompt": "question 4 about copy"}])
    assert answer.predictions[0]["content"] == "copy answer 4"
