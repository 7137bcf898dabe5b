"""What every ARIA operator shares: the GCP connection, impersonation and the Vertex hook."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from aria_tuning.hooks import VertexHook


def fail_without_retry(error: Exception) -> Exception:
    """An exception that fails the task at once, skipping its remaining retries; raise it `from error`.

    For failures that a retry would only repeat (bad parameters, a tuning job Vertex ran to FAILED):
    retrying those costs time or, worse, a second paid TPU run. Clearing the task still runs it again.
    """
    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # Airflow 3.1 keeps it in airflow.exceptions only
        from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]
    return AirflowFailException(f"{type(error).__name__}: {error}")


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
