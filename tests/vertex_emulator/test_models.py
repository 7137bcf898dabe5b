"""The Model Registry: upload, versions, aliases, lists and deletes, through GAPIC REST and the SDK."""

from __future__ import annotations

import re

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, aiplatform_v1
from google.protobuf import field_mask_pb2

from tests.vertex_emulator.conftest import Gapic, GrpcApi


def upload(gapic: Gapic, parent: str, display: str, parent_model: str = "", **labels: str) -> tuple[str, str]:
    model = aiplatform_v1.Model(display_name=display, labels=labels, artifact_uri="gs://aria-models/x")
    response = gapic.models.upload_model(
        request={"parent": parent, "model": model, "parent_model": parent_model}
    ).result(timeout=10)
    return response.model, response.model_version_id


def test_upload_versions_and_aliases(gapic: Gapic, gpu_parent: str) -> None:
    name, first = upload(gapic, gpu_parent, "ARIA-text", job="j1")
    same, second = upload(gapic, gpu_parent, "ARIA-text", parent_model=name, job="j2")
    assert (same, first, second) == (name, "1", "2")

    assert gapic.models.get_model(name=name).version_id == "1"  # "default" stays on version 1
    assert gapic.models.get_model(name=f"{name}@2").labels["job"] == "j2"
    assert gapic.models.get_model(name=f"{name}@default").version_id == "1"

    merged = gapic.models.merge_version_aliases(name=f"{name}@2", version_aliases=["default", "champion"])
    assert sorted(merged.version_aliases) == ["champion", "default"]
    assert gapic.models.get_model(name=name).version_id == "2"
    assert gapic.models.get_model(name=f"{name}@champion").version_id == "2"
    assert gapic.models.get_model(name=f"{name}@1").version_aliases == []

    removed = gapic.models.merge_version_aliases(name=f"{name}@2", version_aliases=["-champion"])
    assert removed.version_aliases == ["default"]
    with pytest.raises(exceptions.NotFound):
        gapic.models.get_model(name=f"{name}@champion")
    with pytest.raises(exceptions.BadRequest, match="'default' alias cannot be removed"):
        gapic.models.merge_version_aliases(name=f"{name}@2", version_aliases=["-default"])
    with pytest.raises(exceptions.BadRequest, match="invalid version alias"):
        gapic.models.merge_version_aliases(name=f"{name}@2", version_aliases=["Not_Valid"])

    versions = gapic.models.list_model_versions(request={"name": name, "filter": 'labels.job="j2"'})
    assert [v.version_id for v in versions] == ["2"]
    assert [v.version_id for v in gapic.models.list_model_versions(name=name)] == ["1", "2"]


def test_list_filters_on_display_name_and_labels(gapic: Gapic, gpu_parent: str) -> None:
    upload(gapic, gpu_parent, "ARIA-text", team="a")
    upload(gapic, gpu_parent, "other", team="a")
    upload(gapic, gpu_parent, "ARIA-text", team="b")

    def displays(filter_expr: str) -> list[str]:
        return sorted(
            m.display_name
            for m in gapic.models.list_models(request={"parent": gpu_parent, "filter": filter_expr})
        )

    assert displays('display_name="ARIA-text"') == ["ARIA-text", "ARIA-text"]
    assert displays('labels.team="a"') == ["ARIA-text", "other"]
    assert displays('display_name="ARIA-text" AND labels.team="b"') == ["ARIA-text"]
    with pytest.raises(exceptions.BadRequest, match="unsupported filter field 'artifact_uri'"):
        displays('artifact_uri="x"')


def test_upload_errors(gapic: Gapic, gpu_parent: str) -> None:
    with pytest.raises(exceptions.NotFound):
        upload(gapic, gpu_parent, "x", parent_model=f"{gpu_parent}/models/404404")
    with pytest.raises(exceptions.BadRequest, match="display_name is required"):
        gapic.models.upload_model(parent=gpu_parent, model=aiplatform_v1.Model())
    request = {"parent": gpu_parent, "model": aiplatform_v1.Model(display_name="m"), "model_id": "fixed"}
    gapic.models.upload_model(request=request).result()
    with pytest.raises(exceptions.Conflict):
        gapic.models.upload_model(request=request)


def test_delete_version_and_model(gapic: Gapic, gpu_parent: str) -> None:
    name, _ = upload(gapic, gpu_parent, "to-delete")
    upload(gapic, gpu_parent, "to-delete", parent_model=name)
    with pytest.raises(exceptions.BadRequest, match="default version"):
        gapic.models.delete_model_version(name=f"{name}@1")
    gapic.models.delete_model_version(name=f"{name}@2").result(timeout=10)
    assert [v.version_id for v in gapic.models.list_model_versions(name=name)] == ["1"]
    gapic.models.delete_model(name=name).result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        gapic.models.get_model(name=name)


def test_deployed_model_cannot_be_deleted(gapic: Gapic, gpu_parent: str) -> None:
    name, _ = upload(gapic, gpu_parent, "busy")
    endpoint = gapic.endpoints.create_endpoint(
        parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name="e")
    ).result()
    gapic.endpoints.deploy_model(
        endpoint=endpoint.name,
        deployed_model=aiplatform_v1.DeployedModel(model=name),
        traffic_split={"0": 100},
    ).result()
    with pytest.raises(exceptions.BadRequest, match="undeploy it first"):
        gapic.models.delete_model(name=name)


def test_high_level_sdk_uploads_versions_and_lists(sdk: None) -> None:
    first = aiplatform.Model.upload(
        display_name="sdk-model",
        artifact_uri="gs://aria-models/a",
        serving_container_image_uri="gcr.io/x/y:1",
    )
    second = aiplatform.Model.upload(
        display_name="sdk-model",
        parent_model=first.resource_name,
        artifact_uri="gs://aria-models/b",
        serving_container_image_uri="gcr.io/x/y:1",
        version_aliases=["candidate"],
        is_default_version=False,
    )
    assert (first.version_id, second.version_id) == ("1", "2")
    assert aiplatform.Model(f"{first.resource_name}@candidate").version_id == "2"
    assert [m.resource_name for m in aiplatform.Model.list(filter='display_name="sdk-model"')] == [
        first.resource_name
    ]
    versions = aiplatform.models.ModelRegistry(first.resource_name).list_versions()
    assert [v.version_id for v in versions] == ["1", "2"]


def test_update_model_changes_model_fields_on_every_version(gapic: Gapic, gpu_parent: str) -> None:
    name, _ = upload(gapic, gpu_parent, "before", stage="dev")
    upload(gapic, gpu_parent, "before", parent_model=name, stage="dev")
    model = aiplatform_v1.Model(
        name=name, display_name="after", description="tuned twice", labels={"team": "nlp"}
    )
    mask = field_mask_pb2.FieldMask(paths=["display_name", "description", "labels"])

    updated = gapic.models.update_model(model=model, update_mask=mask)

    assert (updated.display_name, updated.description) == ("after", "tuned twice")
    # "Both the model labels and the version labels are merged when a model is returned."
    assert dict(updated.labels) == {"stage": "dev", "team": "nlp"}
    for version in gapic.models.list_model_versions(name=name):
        assert (version.display_name, version.labels["team"]) == ("after", "nlp")
    assert updated.update_time > updated.create_time
    same = gapic.models.update_model(
        model=aiplatform_v1.Model(name=f"{name}@-", description="via @-"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
    )
    assert same.description == "via @-"


def test_update_model_changes_version_fields_on_one_version(gapic: Gapic, gpu_parent: str) -> None:
    name, _ = upload(gapic, gpu_parent, "versioned", stage="dev")
    upload(gapic, gpu_parent, "versioned", parent_model=name, stage="dev")
    model = aiplatform_v1.Model(name=f"{name}@2", version_description="second try", labels={"stage": "rc"})

    updated = gapic.models.update_model(
        model=model, update_mask=field_mask_pb2.FieldMask(paths=["version_description", "labels"])
    )

    assert (updated.version_id, updated.version_description, dict(updated.labels)) == (
        "2",
        "second try",
        {"stage": "rc"},
    )
    first = gapic.models.get_model(name=f"{name}@1")
    assert (first.version_description, dict(first.labels)) == ("", {"stage": "dev"})


@pytest.mark.parametrize(
    ("version", "paths", "error", "status", "message"),
    [
        ("@1", ["display_name"], exceptions.BadRequest, "FAILED_PRECONDITION", "names a model version"),
        ("", ["version_description"], exceptions.BadRequest, "FAILED_PRECONDITION", "fields of a version"),
        ("@-", ["version_description"], exceptions.BadRequest, "FAILED_PRECONDITION", "fields of a version"),
        ("@1", ["description", "version_description"], exceptions.BadRequest, "INVALID_ARGUMENT", "both"),
        (
            "",
            ["artifact_uri"],
            exceptions.BadRequest,
            "INVALID_ARGUMENT",
            "['artifactUri'] cannot be updated",
        ),
        ("@1", ["version_aliases"], exceptions.BadRequest, "INVALID_ARGUMENT", ":mergeVersionAliases"),
        ("", [], exceptions.BadRequest, "INVALID_ARGUMENT", "update_mask is required"),
        ("@7", ["labels"], exceptions.NotFound, "NOT_FOUND", "not found"),
    ],
)
def test_update_model_refuses_what_vertex_refuses(
    gapic: Gapic,
    gpu_parent: str,
    version: str,
    paths: list[str],
    error: type[Exception],
    status: str,
    message: str,
) -> None:
    name, _ = upload(gapic, gpu_parent, "strict")
    model = aiplatform_v1.Model(name=f"{name}{version}", display_name="x", version_description="y")
    with pytest.raises(error, match=re.escape(message)) as raised:
        gapic.models.update_model(model=model, update_mask=field_mask_pb2.FieldMask(paths=paths))
    assert raised.value.response.json()["error"]["status"] == status  # type: ignore[attr-defined]


def test_high_level_sdk_updates_a_model(sdk: None) -> None:
    model = aiplatform.Model.upload(
        display_name="sdk-update",
        artifact_uri="gs://aria-models/a",
        serving_container_image_uri="gcr.io/x/y:1",
        labels={"stage": "dev"},
    )
    model.update(display_name="sdk-updated", description="now described", labels={"stage": "prod"})
    again = aiplatform.Model(model.resource_name)
    assert (again.display_name, again.description, again.labels) == (
        "sdk-updated",
        "now described",
        {"stage": "prod"},
    )
    with pytest.raises(exceptions.BadRequest, match=re.escape("model.labels key 'Stage'")):
        again.update(labels={"Stage": "prod"})


def test_update_model_and_filters_over_grpc(grpc_api: GrpcApi, gpu_parent: str) -> None:
    uploaded = grpc_api.result(
        grpc_api.models.upload_model(
            parent=gpu_parent, model=aiplatform_v1.Model(display_name="grpc-model", labels={"stage": "dev"})
        )
    )
    model = aiplatform_v1.Model(name=uploaded.model, description="over gRPC", labels={"stage": "prod"})
    updated = grpc_api.models.update_model(
        model=model, update_mask=field_mask_pb2.FieldMask(paths=["description", "labels"])
    )
    assert (updated.description, dict(updated.labels)) == ("over gRPC", {"stage": "prod"})
    listed = grpc_api.models.list_models(
        request={"parent": gpu_parent, "filter": 'labels.stage=prod OR display_name="none"'}
    )
    assert [m.name for m in listed.models] == [uploaded.model]
    with pytest.raises(exceptions.InvalidArgument, match=re.escape("model.labels key 'Stage'")):
        grpc_api.models.update_model(
            model=aiplatform_v1.Model(name=uploaded.model, labels={"Stage": "x"}),
            update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
        )
    with pytest.raises(exceptions.FailedPrecondition, match="names a model version"):
        grpc_api.models.update_model(
            model=aiplatform_v1.Model(name=f"{uploaded.model}@1", display_name="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
