"""Credentials as Google checks them over REST: 401s, the token endpoint, service-account keys."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import crypt
from google.auth import exceptions as auth_exceptions
from google.auth import jwt as google_jwt
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import aiplatform_v1
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from scripts.emulators import emulator_control
from tests.support.service_accounts import CLOUD_PLATFORM, ServiceAccountKey, create_key, key_info
from tests.vertex_emulator.conftest import GPU_REGION

MISSING = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _pipelines(url: str, credentials: Credentials) -> aiplatform_v1.PipelineServiceClient:
    return aiplatform_v1.PipelineServiceClient(
        credentials=credentials, transport="rest", client_options=ClientOptions(api_endpoint=url)
    )


def _calls(url: str, path: str) -> list[dict[str, str]]:
    return [call for call in emulator_control(url, "auth/calls")["calls"] if call["path"] == path]


@pytest.fixture
def key(vertex_emulator: str) -> ServiceAccountKey:
    return create_key(vertex_emulator)


def test_a_call_without_a_token_gets_googles_401(auth_required: str, project: str) -> None:
    answer = requests.get(f"{auth_required}/v1/projects/{project}/locations/{GPU_REGION}/pipelineJobs")

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="https://accounts.google.com/"'
    error = answer.json()["error"]
    assert (error["code"], error["status"], error["message"]) == (401, "UNAUTHENTICATED", MISSING)
    assert error["details"][0]["reason"] == "CREDENTIALS_MISSING"


def test_the_control_plane_needs_no_token(auth_required: str) -> None:
    assert emulator_control(auth_required, "health")["status"] == "ok"
    assert emulator_control(auth_required, "auth")["required"] is True


def test_a_service_account_key_works_unchanged_with_the_rest_gapic_client(
    auth_required: str, key: ServiceAccountKey, project: str
) -> None:
    parent = f"projects/{project}/locations/{GPU_REGION}"
    client = _pipelines(auth_required, key.credentials())

    assert list(client.list_pipeline_jobs(parent=parent)) == []
    # The GAPIC client sends a self-signed JWT (always_use_jwt_access); the emulator names its signer.
    path = f"/v1/{parent}/pipelineJobs"
    assert [(c["surface"], c["principal"]) for c in _calls(auth_required, path)] == [("rest", key.email)]
    assert emulator_control(auth_required, "counts")["principals"][key.email] >= 1


def test_anonymous_credentials_are_refused(auth_required: str, project: str) -> None:
    client = _pipelines(auth_required, AnonymousCredentials())

    # google-auth's AuthorizedSession answers a 401 by refreshing the credentials and retrying, and
    # anonymous credentials cannot refresh: what a client gets from Google itself.
    with pytest.raises(auth_exceptions.InvalidOperation, match="Anonymous credentials cannot be refreshed"):
        client.list_pipeline_jobs(parent=f"projects/{project}/locations/{GPU_REGION}")


def test_a_key_the_emulator_does_not_know_is_unauthenticated(auth_required: str, project: str) -> None:
    forged = key_info(auth_required, "forger@aria-local.iam.gserviceaccount.com", "aria-local")
    credentials = service_account.Credentials.from_service_account_info(forged, scopes=[CLOUD_PLATFORM])

    # A self-signed JWT refreshes locally, so the retry is refused too and api_core raises (over REST
    # it maps HTTP 401 to Unauthorized; gRPC's UNAUTHENTICATED is its subclass Unauthenticated).
    with pytest.raises(api_exceptions.Unauthorized) as raised:
        _pipelines(auth_required, credentials).list_pipeline_jobs(
            parent=f"projects/{project}/locations/{GPU_REGION}"
        )
    assert raised.value.reason == "ACCESS_TOKEN_TYPE_UNSUPPORTED"


def test_a_token_without_the_cloud_platform_scope_is_permission_denied(
    auth_required: str, key: ServiceAccountKey, project: str
) -> None:
    credentials = key.credentials(scopes=["https://www.googleapis.com/auth/devstorage.read_only"])

    with pytest.raises(api_exceptions.Forbidden, match="insufficient authentication scopes"):
        _pipelines(auth_required, credentials).list_pipeline_jobs(
            parent=f"projects/{project}/locations/{GPU_REGION}"
        )


def test_the_token_endpoint_exchanges_the_jwt_bearer_grant(
    auth_required: str, key: ServiceAccountKey, project: str
) -> None:
    credentials = key.credentials()
    credentials.refresh(Request())  # google-auth's own JWT signing and POST to the key's token_uri

    token, expiry = credentials.token, credentials.expiry
    assert token is not None and expiry is not None
    assert token.count(".") < 2  # an opaque access token, not a JWT
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # google-auth's expiry is naive UTC
    assert 3500 < (expiry - now).total_seconds() <= 3600
    bearer = user_credentials.Credentials(token=credentials.token)
    parent = f"projects/{project}/locations/{GPU_REGION}"
    assert list(_pipelines(auth_required, bearer).list_pipeline_jobs(parent=parent)) == []
    assert _calls(auth_required, f"/v1/{parent}/pipelineJobs")[-1]["principal"] == key.email


def test_an_expired_token_is_refused_and_a_refreshing_client_recovers(
    auth_required: str, key: ServiceAccountKey, project: str
) -> None:
    credentials = key.credentials()
    credentials.refresh(Request())
    old_token = credentials.token
    url = f"{auth_required}/v1/projects/{project}/locations/{GPU_REGION}/pipelineJobs"

    assert emulator_control(auth_required, "auth:expireTokens", {"principal": key.email}) == {"expired": 1}
    answer = requests.get(url, headers={"Authorization": f"Bearer {old_token}"})
    assert answer.status_code == 401
    assert answer.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    # google-auth still believes the token valid for an hour: the 401 makes it refresh and retry.
    assert AuthorizedSession(credentials).get(url).status_code == 200
    assert credentials.token != old_token


def _assertion(key: ServiceAccountKey, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": key.email,
        "aud": "https://oauth2.googleapis.com/token",
        "scope": CLOUD_PLATFORM,
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    signer = crypt.RSASigner.from_service_account_info(key.info)
    return google_jwt.encode(signer, {k: v for k, v in payload.items() if v is not None}).decode()


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"iat": int(time.time()) - 7300, "exp": int(time.time()) - 3700}, "invalid_grant", "short-lived"),
        ({"exp": int(time.time()) + 7200}, "invalid_grant", "short-lived"),
        ({"aud": "https://example.com/token"}, "invalid_grant", "Failed audience check"),
        ({"iss": "nobody@aria-local.iam.gserviceaccount.com"}, "invalid_grant", "account not found"),
        ({"scope": None}, "invalid_scope", "Invalid OAuth scope"),
        ({"sub": "someone@example.com"}, "unauthorized_client", "Client is unauthorized"),
    ],
    ids=["expired", "too-long-lived", "wrong-audience", "unknown-account", "no-scope", "delegation"],
)
def test_the_token_endpoint_refuses_bad_assertions_like_google(
    vertex_emulator: str, key: ServiceAccountKey, claims: dict[str, Any], error: str, description: str
) -> None:
    form = {"grant_type": JWT_BEARER, "assertion": _assertion(key, **claims)}
    answer = requests.post(f"{vertex_emulator}/token", data=form)

    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert description in answer.json()["error_description"]


def test_a_grant_assertion_is_not_an_access_token(
    auth_required: str, key: ServiceAccountKey, project: str
) -> None:
    url = f"{auth_required}/v1/projects/{project}/locations/{GPU_REGION}/pipelineJobs"
    self_signed = key.credentials().with_always_use_jwt_access(True)
    self_signed.refresh(Request())

    assert requests.get(url, headers={"Authorization": f"Bearer {self_signed.token}"}).status_code == 200
    # Signed by the same key, but addressed to the token endpoint: Google refuses it on an API.
    assertion = requests.get(url, headers={"Authorization": f"Bearer {_assertion(key)}"})
    assert assertion.status_code == 401


def test_a_forged_assertion_signed_with_another_key_is_refused(
    vertex_emulator: str, key: ServiceAccountKey
) -> None:
    # Same account, same key id, another private key: what a stolen key id without the key gives.
    forged = key_info(vertex_emulator, key.email, "aria-local")
    forged["private_key_id"] = key.info["private_key_id"]
    credentials = service_account.Credentials.from_service_account_info(forged, scopes=[CLOUD_PLATFORM])

    with pytest.raises(auth_exceptions.RefreshError, match="invalid_grant: Invalid JWT Signature"):
        credentials.refresh(Request())


@pytest.mark.parametrize(
    ("form", "error"),
    [({"grant_type": "password"}, "unsupported_grant_type"), ({"grant_type": JWT_BEARER}, "invalid_request")],
)
def test_the_token_endpoint_refuses_other_grants(
    vertex_emulator: str, form: dict[str, str], error: str
) -> None:
    answer = requests.post(f"{vertex_emulator}/token", data=form)

    assert (answer.status_code, answer.json()["error"]) == (400, error)


def test_auth_is_switched_at_run_time(vertex_emulator: str, project: str) -> None:
    url = f"{vertex_emulator}/v1/projects/{project}/locations/{GPU_REGION}/pipelineJobs"
    before = emulator_control(vertex_emulator, "auth")["required"]
    try:
        emulator_control(vertex_emulator, "auth", {"required": False})
        assert requests.get(url).status_code == 200
        assert requests.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 200
        emulator_control(vertex_emulator, "auth", {"required": True})
        assert requests.get(url).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    finally:
        emulator_control(vertex_emulator, "auth", {"required": before})
    principals = [call["principal"] for call in _calls(vertex_emulator, url[len(vertex_emulator) :])]
    assert principals == ["anonymous", "anonymous"]  # refused calls are not served, so not logged


@pytest.mark.parametrize(
    "spec",
    [
        {"email": "not-an-email", "keyId": "k", "publicKeyPem": "x"},
        {"email": "a@b.iam.gserviceaccount.com", "publicKeyPem": "x"},
        {"email": "a@b.iam.gserviceaccount.com", "keyId": "k", "publicKeyPem": "not a PEM"},
        {"required": "yes"},
    ],
    ids=["bad-email", "no-key-id", "bad-pem", "bad-required"],
)
def test_bad_auth_control_requests_are_refused(vertex_emulator: str, spec: dict[str, Any]) -> None:
    route = "auth" if "required" in spec else "serviceAccounts"
    answer = requests.post(f"{vertex_emulator}/_emulator/{route}", json=spec)

    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
