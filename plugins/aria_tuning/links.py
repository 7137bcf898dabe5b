"""Extra links from a task to the Vertex AI console: the tuning run, the registered model, the endpoint.

The operator pushes the finished URL to XCom under the link's key (`persist`; an empty one until it is
known, `VertexBaseOperator.reserve_links`). At the end of each try and deferral the task runner reads it
back through `get_link` and stores it under the same key, which is what the API server shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey


class VertexConsoleLink(BaseOperatorLink):
    """A console URL stored in XCom under `key`."""

    name: ClassVar[str] = "Vertex AI"
    key: ClassVar[str] = "vertex_console_url"

    @property
    def xcom_key(self) -> str:
        return self.key

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value: Any = XCom.get_value(key=self.key, ti_key=ti_key)
        return value if isinstance(value, str) and value.startswith("https://") else ""

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        context["ti"].xcom_push(key=cls.key, value=url)


class VertexTuningJobLink(VertexConsoleLink):
    name = "Vertex AI tuning run"
    key = "vertex_tuning_job_url"


class VertexModelLink(VertexConsoleLink):
    name = "Vertex AI Model Registry"
    key = "vertex_model_url"


class VertexEndpointLink(VertexConsoleLink):
    name = "Vertex AI endpoint"
    key = "vertex_endpoint_url"


class EvaluationReportLink(VertexConsoleLink):
    """The run's evaluation report (self-contained HTML in GCS), opened in the browser."""

    name = "Evaluation report"
    key = "evaluation_report_url"
