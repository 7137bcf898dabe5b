"""Over gRPC the same authority checks the `authorization` metadata: a service-account key's token gets
through, a channel without one gets UNAUTHENTICATED."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.api_core import exceptions as api_exceptions
from google.auth.transport.grpc import secure_authorized_channel
from google.auth.transport.requests import Request
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.pipeline_service.transports import PipelineServiceGrpcTransport

from scripts.emulators import emulator_control
from tests.support.service_accounts import create_key
from tests.vertex_emulator.conftest import GPU_REGION, AuthEmulator


def _client(channel: grpc.Channel) -> aiplatform_v1.PipelineServiceClient:
    return aiplatform_v1.PipelineServiceClient(transport=PipelineServiceGrpcTransport(channel=channel))


def test_a_service_account_token_travels_as_grpc_metadata(auth_emulator: AuthEmulator) -> None:
    key = create_key(auth_emulator.url, name="grpc")
    parent = f"projects/t-{uuid.uuid4().hex[:12]}/locations/{GPU_REGION}"
    # Local channel credentials let google-auth attach call credentials to a plain local TCP channel.
    channel = secure_authorized_channel(
        key.credentials(),
        Request(),
        auth_emulator.grpc_target,
        ssl_credentials=grpc.local_channel_credentials(),
    )

    assert list(_client(channel).list_pipeline_jobs(parent=parent)) == []

    calls = emulator_control(auth_emulator.url, "auth/calls")["calls"]
    grpc_calls = [c for c in calls if c["surface"] == "grpc" and parent in c["path"]]
    assert [c["principal"] for c in grpc_calls] == [key.email]


def test_a_channel_without_a_token_is_unauthenticated(auth_emulator: AuthEmulator) -> None:
    parent = f"projects/t-{uuid.uuid4().hex[:12]}/locations/{GPU_REGION}"

    with pytest.raises(api_exceptions.Unauthenticated) as raised:
        _client(grpc.insecure_channel(auth_emulator.grpc_target)).list_pipeline_jobs(parent=parent)
    assert raised.value.reason == "CREDENTIALS_MISSING"
