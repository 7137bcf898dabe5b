"""The provider's Vertex AI pipeline hook and trigger, pointed at the emulator. Benchmark use only.

The provider hard-codes `{region}-aiplatform.googleapis.com:443` in `PipelineJobHook._get_api_endpoint`
and builds a gRPC client. The least invasive way in is to override the one factory method the async hook
calls on every poll, `get_pipeline_service_client`, keeping everything the provider does there
(a new client per poll, credentials from the sync hook, its client info) and changing only the endpoint
and the transport (`rest_asyncio`: the emulator speaks REST, and our trigger uses the same transport, so
the comparison is transport for transport). The trigger subclass only swaps in that hook; its polling
loop, logging and event are the provider's own code.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.providers.google.cloud.hooks.vertex_ai.pipeline_job import PipelineJobAsyncHook
from airflow.providers.google.cloud.triggers.vertex_ai import RunPipelineJobTrigger
from airflow.providers.google.common.consts import CLIENT_INFO


class EmulatedPipelineJobAsyncHook(PipelineJobAsyncHook):
    def __init__(self, api_endpoint: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_endpoint = api_endpoint

    async def get_pipeline_service_client(self, region: str | None = None) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.cloud.aiplatform_v1 import PipelineServiceAsyncClient

        sync_hook = await self.get_sync_hook()
        return PipelineServiceAsyncClient(
            credentials=sync_hook.get_credentials(),
            client_info=CLIENT_INFO,
            transport="rest_asyncio",
            client_options=ClientOptions(api_endpoint=self.api_endpoint),
        )


class EmulatedRunPipelineJobTrigger(RunPipelineJobTrigger):
    def __init__(self, *, api_endpoint: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_endpoint = api_endpoint

    @cached_property
    def async_hook(self) -> PipelineJobAsyncHook:  # type: ignore[override]
        return EmulatedPipelineJobAsyncHook(
            api_endpoint=self.api_endpoint,
            gcp_conn_id=self.conn_id,
            impersonation_chain=self.impersonation_chain,
        )
