"""Impersonation: google-auth's impersonated credentials against the emulated IAM Credentials
`generateAccessToken`, directly and through the Airflow provider's `impersonation_chain`."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth import iam, impersonated_credentials
from google.auth.credentials import Credentials
from google.auth.transport.requests import Request
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from tests.support.service_accounts import CLOUD_PLATFORM, create_key
from tests.vertex_emulator.conftest import GPU_REGION


def _principal_of_a_call(url: str, credentials: Credentials, project: str) -> str:
    """Call Vertex with `credentials`; the principal the emulator recorded for that call."""
    parent = f"projects/{project}/locations/{GPU_REGION}"
    client = aiplatform_v1.PipelineServiceClient(
        credentials=credentials, transport="rest", client_options=ClientOptions(api_endpoint=url)
    )
    assert list(client.list_pipeline_jobs(parent=parent)) == []
    calls = emulator_control(url, "auth/calls")["calls"]
    return [c["principal"] for c in calls if c["path"] == f"/v1/{parent}/pipelineJobs"][-1]


def _generate_access_token_url(url: str, email: str) -> str:
    return f"{url}/v1/projects/-/serviceAccounts/{email}:generateAccessToken"


def _delegations(url: str, target: str) -> list[dict[str, object]]:
    return [d for d in emulator_control(url, "auth")["delegations"] if d["target"] == target]


def test_impersonated_credentials_act_as_the_target_account(auth_required: str, project: str) -> None:
    source, target = create_key(auth_required, name="source"), create_key(auth_required, name="target")
    credentials = impersonated_credentials.Credentials(
        source_credentials=source.credentials(),
        target_principal=target.email,
        target_scopes=[CLOUD_PLATFORM],
        # google-auth's documented redirect of the IAM call (impersonated_credentials.py).
        iam_endpoint_override=_generate_access_token_url(auth_required, target.email),
    )

    assert _principal_of_a_call(auth_required, credentials, project) == target.email
    assert _delegations(auth_required, target.email) == [
        {"caller": source.email, "target": target.email, "delegates": []}
    ]


def test_only_token_creators_may_impersonate_and_delegates_chain(auth_required: str, project: str) -> None:
    source = create_key(auth_required, name="source")
    delegate = create_key(auth_required, name="delegate", token_creators=[source.email])
    target = create_key(auth_required, name="target", token_creators=[delegate.email])

    def impersonating(delegates: list[str]) -> impersonated_credentials.Credentials:
        return impersonated_credentials.Credentials(
            source_credentials=source.credentials(),
            target_principal=target.email,
            delegates=delegates,
            target_scopes=[CLOUD_PLATFORM],
            iam_endpoint_override=_generate_access_token_url(auth_required, target.email),
        )

    with pytest.raises(auth_exceptions.RefreshError, match="IAM_PERMISSION_DENIED"):
        _principal_of_a_call(auth_required, impersonating([]), project)
    chained = impersonating([f"projects/-/serviceAccounts/{delegate.email}"])
    assert _principal_of_a_call(auth_required, chained, project) == target.email
    assert _delegations(auth_required, target.email) == [
        {"caller": source.email, "target": target.email, "delegates": [delegate.email]}
    ]


def test_the_providers_impersonation_chain_once_the_iam_host_is_redirected(
    auth_required: str, monkeypatch: pytest.MonkeyPatch, project: str
) -> None:
    """The provider builds impersonated credentials without `iam_endpoint_override`
    (cloud/utils/credentials_provider.py, get_credentials_and_project), so they call
    https://iamcredentials.googleapis.com, a URL google-auth reads from `iam._IAM_ENDPOINT` at call
    time; only redirecting that constant brings the provider's unchanged code to the emulator."""
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

    monkeypatch.setattr(
        iam, "_IAM_ENDPOINT", f"{auth_required}/v1/projects/-/serviceAccounts/{{}}:generateAccessToken"
    )
    source = create_key(auth_required, name="source")
    delegate = create_key(auth_required, name="delegate", token_creators=[source.email])
    target = create_key(auth_required, name="target", token_creators=[delegate.email])
    conn_id = f"gcp_imp_{uuid.uuid4().hex[:8]}"
    extra = {"project": "aria-local", "keyfile_dict": json.dumps(source.info)}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "google_cloud_platform", "extra": extra})
    )

    hook = GoogleBaseHook(gcp_conn_id=conn_id, impersonation_chain=[delegate.email, target.email])
    credentials = hook.get_credentials()

    assert isinstance(credentials, impersonated_credentials.Credentials)
    assert _principal_of_a_call(auth_required, credentials, project) == target.email
    assert _delegations(auth_required, target.email) == [
        {"caller": source.email, "target": target.email, "delegates": [delegate.email]}
    ]


def test_generate_access_token_needs_a_caller_and_a_known_target(auth_required: str) -> None:
    source_credentials = create_key(auth_required, name="source").credentials()
    source_credentials.refresh(Request())
    url = _generate_access_token_url(auth_required, "nobody@aria-local.iam.gserviceaccount.com")
    body = {"scope": [CLOUD_PLATFORM]}

    assert requests.post(url, json=body).status_code == 401
    unknown = requests.post(url, json=body, headers={"Authorization": f"Bearer {source_credentials.token}"})
    assert unknown.status_code == 404 and "Gaia id not found" in unknown.json()["error"]["message"]
