"""What every ARIA operator shares: the GCP connection, impersonation and the Vertex hook."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from aria_tuning.hooks import VertexHook


class VertexBaseOperator(BaseOperator):
    """Base of the four operators; `hook` is built once per task run, on first use."""

    def __init__(
        self,
        *,
        gcp_conn_id: str = "google_cloud_default",
        impersonation_chain: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gcp_conn_id = gcp_conn_id
        self.impersonation_chain = impersonation_chain

    @cached_property
    def hook(self) -> VertexHook:
        return VertexHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
