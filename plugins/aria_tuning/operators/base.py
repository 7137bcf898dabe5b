"""What every ARIA operator shares: the GCP connection, impersonation, its hooks, failing without retry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from airflow.sdk import BaseOperator, Context

from aria_tuning.hooks.base import VertexHook
from aria_tuning.links import VertexConsoleLink

H = TypeVar("H", bound=VertexHook)


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
    """Base of the operators; each hook is built once per task run, on first use."""

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

    def hook(self, kind: type[H]) -> H:
        """The task's hook of class `kind` (one instance per class and task run)."""
        hooks: dict[type[VertexHook], VertexHook] = self.__dict__.setdefault("_aria_hooks", {})
        if kind not in hooks:
            hooks[kind] = kind(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        return hooks[kind]  # type: ignore[return-value]

    def reserve_links(self, context: Context) -> None:
        """Give each console link of the task an empty URL until it knows the real one.

        After every try and every deferral the task runner reads each extra link back through its
        `get_link` to store it for the UI (airflow/sdk/execution_time/task_runner.py, `finalize`); a key
        never pushed is a 404 that the Task SDK's client logs as "[error] XCom not found"
        (airflow/sdk/api/client.py, `XComOperations.get`): noise that looks like a failure, twice per
        deferral of the tuning task, whose model and endpoint exist only at its end. An empty URL
        renders as a disabled link.
        """
        for link in self.operator_extra_links:
            if isinstance(link, VertexConsoleLink):
                link.persist(context, "")

    def hook_kwargs(self) -> dict[str, Any]:
        """The connection arguments a trigger needs to build the same hooks in the triggerer."""
        return {"gcp_conn_id": self.gcp_conn_id, "impersonation_chain": self.impersonation_chain}
