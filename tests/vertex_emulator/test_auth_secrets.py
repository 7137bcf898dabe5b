"""No token, key or secret ever leaves the emulator: not in its log, not in a control-plane answer, not in
its state directory; the control plane shows principals only."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import requests
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.auth.transport.grpc import secure_authorized_channel
from google.auth.transport.requests import Request
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.pipeline_service.transports import PipelineServiceGrpcTransport
from google.oauth2 import credentials as user_credentials

from scripts.emulators import emulator_control
from tests.support.service_accounts import CLOUD_PLATFORM, ServiceAccountKey, create_key, key_info
from tests.vertex_emulator.conftest import GPU_REGION, AuthEmulator

CONTROL_ANSWERS = ["health", "counts", "stats", "auth", "auth/calls", "serviceAccounts", "settings", "faults"]


def _secret_parts(key: ServiceAccountKey) -> list[str]:
    """Lines of the private key long enough to be unmistakable if they ever leaked."""
    return [line for line in key.info["private_key"].splitlines() if len(line) > 40][:3]


def _forged_assertion(key: ServiceAccountKey) -> str:
    now = int(time.time())
    other = key_info("http://unused", key.email, "aria-local")  # same account, another private key
    claims = {"iss": key.email, "aud": "https://oauth2.googleapis.com/token", "scope": CLOUD_PLATFORM}
    signer = crypt.RSASigner.from_service_account_info(other)
    return google_jwt.encode(signer, {**claims, "iat": now, "exp": now + 3600}).decode()


def _use_every_credential(emulator: AuthEmulator, key: ServiceAccountKey) -> list[str]:
    """Exercise each surface with each kind of credential, good and bad; returns every secret used."""
    parent = f"projects/t-{uuid.uuid4().hex[:12]}/locations/{GPU_REGION}"
    api = f"{emulator.url}/v1/{parent}/pipelineJobs"
    credentials = key.credentials()
    credentials.refresh(Request())  # an opaque token from /token
    self_signed = key.credentials().with_always_use_jwt_access(True)
    self_signed.refresh(Request())  # the JWT GAPIC clients send
    target = create_key(emulator.url, name="target")
    iam = f"{emulator.url}/v1/projects/-/serviceAccounts/{target.email}:generateAccessToken"
    bearer = {"Authorization": f"Bearer {credentials.token}"}
    impersonated = requests.post(iam, json={"scope": [CLOUD_PLATFORM]}, headers=bearer).json()["accessToken"]
    forged_token, forged_assertion = f"ya29.{secrets.token_urlsafe(32)}", _forged_assertion(key)

    for token in (credentials.token, self_signed.token, impersonated):
        assert requests.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert requests.get(api, headers={"Authorization": f"Bearer {forged_token}"}).status_code == 401
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": forged_assertion}
    assert requests.post(f"{emulator.url}/token", data=grant).status_code == 400
    gate = f"{emulator.gcs_gate}/storage/v1/b/no-such-bucket-{uuid.uuid4().hex[:6]}"
    assert requests.get(gate, headers=bearer).status_code == 404  # through the gate, answered upstream
    assert requests.get(gate, headers={"Authorization": f"Bearer {forged_token}"}).status_code == 401
    local = grpc.local_channel_credentials()
    channel = secure_authorized_channel(
        user_credentials.Credentials(token=credentials.token), Request(), emulator.grpc_target, local
    )
    client = aiplatform_v1.PipelineServiceClient(transport=PipelineServiceGrpcTransport(channel=channel))
    assert list(client.list_pipeline_jobs(parent=parent)) == []
    return [credentials.token, self_signed.token, impersonated, forged_token, forged_assertion]


def _control_answers(url: str) -> str:
    return "\n".join(str(emulator_control(url, route)) for route in CONTROL_ANSWERS)


def test_no_token_or_key_appears_in_the_log_or_the_control_plane(auth_emulator: AuthEmulator) -> None:
    key = create_key(auth_emulator.url, name="secrets")
    used = _use_every_credential(auth_emulator, key) + _secret_parts(key)

    answers = _control_answers(auth_emulator.url)
    log = auth_emulator.log.read_text(errors="replace")
    assert key.email in answers  # the principals are there ...
    assert all(len(secret) > 20 for secret in used)
    leaked = [secret[:16] for secret in used if secret in answers or secret in log]
    assert leaked == []  # ... and nothing they authenticated with
    surfaces = {c["surface"] for c in emulator_control(auth_emulator.url, "auth/calls")["calls"]}
    assert {"rest", "grpc", "gcs", "iam"} <= surfaces


def test_tokens_are_kept_as_digests_and_survive_a_restart(
    vertex_emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    emulator = vertex_emulator_factory(state_dir=state, extra_args=("--require-auth",))
    key = create_key(emulator.url, name="restart")
    credentials = key.credentials()
    credentials.refresh(Request())
    token = str(credentials.token)
    url = f"{emulator.url}/v1/projects/t-{uuid.uuid4().hex[:12]}/locations/{GPU_REGION}/pipelineJobs"

    emulator.restart()

    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    stored = "\n".join(path.read_text() for path in state.rglob("*.json"))
    assert key.email in stored  # the account and its public key are kept ...
    assert token not in stored  # ... the token only as a SHA-256 digest
    assert all(part not in stored for part in _secret_parts(key))
