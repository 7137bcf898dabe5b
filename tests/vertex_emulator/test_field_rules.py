"""Labels and display names are checked by Google's rules on every resource that has them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.protobuf import field_mask_pb2

from tests.vertex_emulator.conftest import Gapic, pipeline_job
from tests.vertex_emulator.test_tuning import tuning_job

BAD_LABELS = [
    ({"BAD KEY": "x"}, "key 'BAD KEY' must start with a lowercase letter"),
    ({"bad key": "x"}, "key 'bad key' may contain only lowercase letters, digits, '_' and '-'"),
    ({"1st": "x"}, "key '1st' must start with a lowercase letter or an international character"),
    ({"_private": "x"}, "key '_private' must start with a lowercase letter"),
    ({"": "x"}, "key '' must be 1 to 63 characters long"),
    ({"k" * 64: "x"}, "must be 1 to 63 characters long"),
    ({"env": "Prod"}, "['env'] value 'Prod' may contain only lowercase letters"),
    ({"env": "a.b"}, "['env'] value 'a.b' may contain only"),
    ({"env": "v" * 64}, "is longer than 63 characters"),
    ({f"k{i}": "v" for i in range(65)}, "has 65 labels; at most 64 are allowed"),
]
GOOD_LABELS: list[dict[str, str]] = [
    {"k" * 63: "v" * 63},
    {"env": ""},
    {"team_a-1": "nlp-2_x"},
    {"ключ": "значение", "日本": "東京"},  # international characters are allowed
    {f"k{i}": str(i) for i in range(64)},
]


def create_pipeline(gapic: Gapic, parent: str, labels: dict[str, str], display: str = "tune") -> Any:
    job = pipeline_job("gs://emulator-tests/none.jsonl")
    job.labels, job.display_name = labels, display
    return gapic.pipelines.create_pipeline_job(parent=parent, pipeline_job=job)


def create_tuning(gapic: Gapic, parent: str, labels: dict[str, str], display: str = "tuned") -> Any:
    job = tuning_job("gs://emulator-tests/t.jsonl", **labels)
    job.tuned_model_display_name = display
    return gapic.tuning.create_tuning_job(parent=parent, tuning_job=job)


def create_model(gapic: Gapic, parent: str, labels: dict[str, str], display: str = "model") -> Any:
    model = aiplatform_v1.Model(display_name=display, labels=labels)
    return gapic.models.upload_model(parent=parent, model=model).result(timeout=10)


def update_model(gapic: Gapic, parent: str, labels: dict[str, str], display: str = "model") -> Any:
    name = create_model(gapic, parent, {}).model
    model = aiplatform_v1.Model(name=name, display_name=display, labels=labels)
    return gapic.models.update_model(
        model=model, update_mask=field_mask_pb2.FieldMask(paths=["labels", "display_name"])
    )


def create_endpoint(gapic: Gapic, parent: str, labels: dict[str, str], display: str = "serving") -> Any:
    endpoint = aiplatform_v1.Endpoint(display_name=display, labels=labels)
    return gapic.endpoints.create_endpoint(parent=parent, endpoint=endpoint).result(timeout=10)


def update_endpoint(gapic: Gapic, parent: str, labels: dict[str, str], display: str = "serving") -> Any:
    endpoint = create_endpoint(gapic, parent, {})
    endpoint.labels, endpoint.display_name = labels, display
    return gapic.endpoints.update_endpoint(
        endpoint=endpoint, update_mask=field_mask_pb2.FieldMask(paths=["labels", "display_name"])
    )


Create = Callable[..., Any]
RESOURCES: dict[str, tuple[Create, str, str]] = {
    # name: (how to make one, the labels field, the display-name field) as errors name them
    "pipeline_job": (create_pipeline, "pipeline_job.labels", "pipeline_job.display_name"),
    "tuning_job": (create_tuning, "tuning_job.labels", "tuning_job.tuned_model_display_name"),
    "model_upload": (create_model, "model.labels", "model.display_name"),
    "model_update": (update_model, "model.labels", "model.display_name"),
    "endpoint_create": (create_endpoint, "endpoint.labels", "endpoint.display_name"),
    "endpoint_update": (update_endpoint, "endpoint.labels", "endpoint.display_name"),
}


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(("labels", "message"), BAD_LABELS, ids=[m for _, m in BAD_LABELS])
def test_bad_labels_are_400_naming_field_and_value(
    gapic: Gapic, gpu_parent: str, resource: str, labels: dict[str, str], message: str
) -> None:
    create, field, _ = RESOURCES[resource]
    with pytest.raises(exceptions.BadRequest, match=re.escape(f"{field}")) as raised:
        create(gapic, gpu_parent, labels)
    error = raised.value.response.json()["error"]  # type: ignore[attr-defined]
    assert error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]
    assert len(error["message"]) < 300  # long values are cut, not echoed in full


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    "labels", GOOD_LABELS, ids=["63-chars", "empty-value", "dash-underscore", "intl", "64"]
)
def test_labels_within_the_rules_are_accepted(
    gapic: Gapic, gpu_parent: str, resource: str, labels: dict[str, str]
) -> None:
    create, _, _ = RESOURCES[resource]
    create(gapic, gpu_parent, labels)


@pytest.mark.parametrize("resource", RESOURCES)
def test_display_names_over_128_characters_are_400(gapic: Gapic, gpu_parent: str, resource: str) -> None:
    create, _, field = RESOURCES[resource]
    create(gapic, gpu_parent, {}, "d" * 128)  # the limit itself is fine
    with pytest.raises(exceptions.BadRequest) as raised:
        create(gapic, gpu_parent, {}, "d" * 3_000_000)  # the 3 MB endpoint display name
    message = raised.value.response.json()["error"]["message"]  # type: ignore[attr-defined]
    assert f"{field} 'dddd" in message and "(3000000 characters) is longer than 128 characters" in message
    assert len(message) < 300


@pytest.mark.parametrize("resource", ["model_upload", "model_update", "endpoint_create", "endpoint_update"])
def test_a_required_display_name_cannot_be_empty(gapic: Gapic, gpu_parent: str, resource: str) -> None:
    create, _, field = RESOURCES[resource]
    with pytest.raises(exceptions.BadRequest, match=re.escape(f"{field} is required")):
        create(gapic, gpu_parent, {}, "")
