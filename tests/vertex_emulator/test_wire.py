"""The wire contract: strict proto parsing (400 INVALID_ARGUMENT) and Google's error envelope.

Clients never send unknown fields, so these requests go through google-auth's AuthorizedSession,
the HTTP session the GAPIC REST transports themselves use.
"""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession

TEMPLATE = "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"


@pytest.fixture(scope="module")
def session() -> AuthorizedSession:
    return AuthorizedSession(AnonymousCredentials())


def envelope(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "status"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "pipelineJobs",
            {"displayName": "x", "templateUri": TEMPLATE, "colour": "red"},
            'no field named "colour"',
        ),
        ("pipelineJobs", {"displayName": 42, "runtimeConfig": {"gcsOutputDirectory": []}}, "Invalid"),
        ("pipelineJobs?pipelineJobId=x&bogus=1", {"displayName": "x"}, 'Unknown name "bogus"'),
        (
            "tuningJobs",
            {"baseModel": "gemini-2.0-flash-001", "supervisedTuningSpec": {"epochs": 3}},
            "epochs",
        ),
        ("endpoints", {"displayName": "e", "trafficSplit": {"1": "lots"}}, "trafficSplit"),
        ("models:upload", {"model": {"displayName": "m", "versionAliases": "one"}}, "versionAliases"),
    ],
)
def test_unknown_fields_and_wrong_types_are_400(
    session: AuthorizedSession, vertex_emulator: str, gpu_parent: str, path: str, body: object, message: str
) -> None:
    response = session.post(f"{vertex_emulator}/v1/{gpu_parent}/{path}", json=body)
    assert response.status_code == 400
    error = envelope(response)
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400
    assert message in str(error["message"])


def test_malformed_json_is_400(session: AuthorizedSession, vertex_emulator: str, gpu_parent: str) -> None:
    response = session.post(
        f"{vertex_emulator}/v1/{gpu_parent}/endpoints",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert envelope(response)["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/projects/p/locations/l/pipelineJobs/missing", "NOT_FOUND"),
        ("GET", "/v1/projects/p/locations/l/trainingPipelines", "NOT_FOUND"),
        ("GET", "/v2/projects/p/locations/l/pipelineJobs", "NOT_FOUND"),
        ("PUT", "/v1/projects/p/locations/l/endpoints/1", "NOT_FOUND"),
    ],
)
def test_unknown_resources_and_methods_are_404(
    session: AuthorizedSession, vertex_emulator: str, method: str, path: str, status: str
) -> None:
    response = session.request(method, f"{vertex_emulator}{path}")
    assert response.status_code == 404
    assert envelope(response)["status"] == status


def test_v1beta1_answers_with_v1beta1_types(
    session: AuthorizedSession, vertex_emulator: str, gpu_parent: str
) -> None:
    created = session.post(f"{vertex_emulator}/v1beta1/{gpu_parent}/endpoints", json={"displayName": "beta"})
    assert created.status_code == 200
    assert (
        created.json()["response"]["@type"] == "type.googleapis.com/google.cloud.aiplatform.v1beta1.Endpoint"
    )
    listed = session.get(f"{vertex_emulator}/v1beta1/{gpu_parent}/endpoints").json()
    assert [e["displayName"] for e in listed["endpoints"]] == ["beta"]


def test_integer_enums_when_the_client_asks_for_them(
    session: AuthorizedSession, vertex_emulator: str, gpu_parent: str
) -> None:
    body = {
        "baseModel": "gemini-2.0-flash-001",
        "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/t.jsonl"},
    }
    named = session.post(f"{vertex_emulator}/v1/{gpu_parent}/tuningJobs", json=body).json()
    numbered = session.get(f"{vertex_emulator}/v1/{named['name']}?$alt=json;enum-encoding=int").json()
    assert named["state"] == "JOB_STATE_PENDING"
    assert isinstance(numbered["state"], int)


def test_fields_system_parameter_selects_paths(
    session: AuthorizedSession, vertex_emulator: str, gpu_parent: str
) -> None:
    session.post(
        f"{vertex_emulator}/v1/{gpu_parent}/endpoints", json={"displayName": "masked", "labels": {"a": "b"}}
    )
    listed = session.get(
        f"{vertex_emulator}/v1/{gpu_parent}/endpoints?fields=endpoints(display_name,labels)"
    ).json()
    assert listed == {"endpoints": [{"displayName": "masked", "labels": {"a": "b"}}]}
    broken = session.get(f"{vertex_emulator}/v1/{gpu_parent}/endpoints?fields=endpoints(name")
    assert broken.status_code == 400
