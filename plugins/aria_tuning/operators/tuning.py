"""The tuning operator: one deferrable operator for both Vertex tuning methods, never two paid runs.

The catalog picks the method: PIPELINE runs the tune-large-model template as a PipelineJob,
TUNING_JOB creates a Gemini tuningJob. The job's identity comes from (dag_id, run_id, task_id,
map_index): execute() first looks for it and re-attaches; only a FAILED/CANCELLED/EXPIRED job is
replaced, by a new attempt whose number is recorded in the job id and labels.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import TuningMethod
from aria_tuning.errors import AriaTuningError, VertexError, VertexJobFailed
from aria_tuning.hooks.jobs import TuningJobHook
from aria_tuning.links import VertexTuningJobLink
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.resources import job_console_url
from aria_tuning.triggers import VertexTuningJobTrigger


class VertexTuningOperator(VertexBaseOperator):
    """Tune the plan's base model on Vertex AI and wait for it in the triggerer (always deferrable).

    `plan` is data prep's plan as one value (`TuningPlan.to_dict()`, one XCom): model, method,
    accelerator, region, steps or epochs, adapter size, limit. It is validated once, here, before
    any Vertex call. Returns `{job, state, method, tuned_model, endpoint, duration_seconds, console_url}`.
    """

    template_fields: Sequence[str] = (
        "plan",
        "training_data_uri",
        "evaluation_data_uri",
        "learning_rate_multiplier",
        "project_id",
        "tuned_model_display_name",
        "pipeline_root",
        "labels",
        "service_account",
        "kms_key_name",
        "impersonation_chain",
    )
    # Only the run itself: the model and endpoint the run makes are deleted once the version is
    # registered (clean_up_tuning_outputs), so links to them would lead nowhere.
    operator_extra_links = (VertexTuningJobLink(),)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        plan: dict[str, Any] | str,
        training_data_uri: str,
        evaluation_data_uri: str | None = None,
        learning_rate_multiplier: float | str = 1.0,
        project_id: str | None = None,
        tuned_model_display_name: str = "ARIA-text",
        pipeline_root: str | None = None,
        labels: dict[str, str] | None = None,
        service_account: str | None = None,
        kms_key_name: str | None = None,
        poll_interval: float = 60.0,
        max_poll_interval: float = 600.0,
        transient_error_budget: int = 20,
        cancel_on_kill: bool = True,
        retry_failed_jobs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.training_data_uri = training_data_uri
        self.evaluation_data_uri = evaluation_data_uri
        self.learning_rate_multiplier = learning_rate_multiplier
        self.project_id = project_id
        self.tuned_model_display_name = tuned_model_display_name
        self.pipeline_root = pipeline_root
        self.labels = labels
        self.service_account = service_account
        self.kms_key_name = kms_key_name
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.transient_error_budget = transient_error_budget
        self.cancel_on_kill = cancel_on_kill
        self.retry_failed_jobs = retry_failed_jobs

    @property
    def jobs(self) -> TuningJobHook:
        return self.hook(TuningJobHook)

    def validate(self) -> vj.TuningRequest:
        """Every check that needs no Vertex call; raises ConfigurationError/CatalogError/PlanError."""
        return vj.validate_tuning_request(
            plan=self.plan,  # type: ignore[arg-type]  # a mapping once rendered; checked inside
            project=self.project_id or self.jobs.project_id,
            training_data_uri=self.training_data_uri,
            evaluation_data_uri=self.evaluation_data_uri,
            learning_rate_multiplier=self.learning_rate_multiplier,
            tuned_model_display_name=self.tuned_model_display_name,
            pipeline_root=self.pipeline_root,
            labels=self.labels,
            service_account=self.service_account,
            kms_key_name=self.kms_key_name,
        )

    def execute(self, context: Context) -> dict[str, Any] | None:
        self.reserve_links(context)  # every link has a value before a deferral reads them back
        try:
            request = self.validate()
        except AriaTuningError as exc:
            raise fail_without_retry(exc) from exc  # no Vertex call was made; a retry would fail alike
        if warning := request.model.retirement_warning():
            self.log.warning(warning)
        ti = context["ti"]
        key = vj.run_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1)
        # Our identity labels win over the caller's: the reconciler matches a job to its task by them.
        identity = vj.identity_labels(ti.dag_id, ti.run_id, ti.task_id)
        request = dataclasses.replace(request, labels={**request.labels, **identity})
        parent = f"projects/{request.project}/locations/{request.region}"

        decision = vj.decide(self.jobs.find_jobs(parent, request.method, key))
        if decision.action == "attach":
            assert decision.job_name is not None
            name = decision.job_name
            self.log.info("Re-attaching to %s (%s) instead of starting a new run", name, decision.state)
        else:
            if decision.job_name:
                self.log.warning(
                    "%s ended %s; submitting attempt %d", decision.job_name, decision.state, decision.attempt
                )
            name = self._submit(parent, request, key, decision.attempt, ti.task_id)
        VertexTuningJobLink.persist(context, job_console_url(name, request.method))

        if decision.action == "attach" and decision.state == vj.SUCCEEDED:
            job = self.jobs.get_job(name, request.method)
            return self._result(context, {"status": "success", **vj.job_summary(job, request.method)})
        self.defer(
            trigger=VertexTuningJobTrigger(
                job_name=name,
                method=str(request.method),
                cancel_on_kill=self.cancel_on_kill,
                # The plan's duration estimate (text-bison; None for Gemini): finish-aware polling.
                expected_seconds=self.plan.get("eta_seconds"),  # type: ignore[union-attr]  # validated
                # For the progress the trigger logs: the plan's range, and its steps (pipeline).
                expected_range_seconds=_eta_range(self.plan),  # type: ignore[arg-type]
                train_steps=self.plan.get("train_steps"),  # type: ignore[union-attr]
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                transient_error_budget=self.transient_error_budget,
                **self.hook_kwargs(),
            ),
            method_name="execute_complete",
        )
        return None  # not reached: defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        return self._result(context, event)

    def _submit(self, parent: str, request: vj.TuningRequest, key: str, attempt: int, task_id: str) -> str:
        if request.method is TuningMethod.PIPELINE:
            job_id = vj.job_id(task_id, key, attempt)
            name = self.jobs.create_pipeline_job(parent, job_id, vj.pipeline_job_body(request, key, attempt))
        else:
            # No client-chosen id: a failed create fails the task; its retry finds a job that did land
            # through the run-key label.
            name = self.jobs.create_tuning_job(parent, vj.tuning_job_body(request, key, attempt))
        self.log.info(
            "Submitted %s (attempt %d, %s, method %s)", name, attempt, request.model.name, request.method
        )
        return name

    def _result(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        job, state, method = event.get("job") or "", event.get("state") or "UNKNOWN", event.get("method")
        if event.get("status") != "success":
            message = f"tuning ended {state}: {event.get('message')}"
            failed = VertexJobFailed(message, resource=job, state=state)
            if self.retry_failed_jobs:
                raise failed  # the retry resubmits under a new attempt id
            # A run Vertex ended FAILED/EXPIRED/CANCELLED mostly fails again the same way (data, quota,
            # permissions, a user's cancel): an automatic retry would pay for a second doomed TPU run.
            raise fail_without_retry(failed) from failed
        if not event.get("tuned_model"):
            raise VertexError("the job succeeded but names no tuned model", resource=job)
        result = {
            "job": job,
            "state": state,
            "method": method,
            "tuned_model": event["tuned_model"],
            "endpoint": event.get("endpoint"),
            "duration_seconds": _duration(
                event.get("start_time") or event.get("create_time"), event.get("end_time")
            ),
            "console_url": job_console_url(job, str(method)),
        }
        # Fields one by one and the console URL last, alone: the UI turns URLs in a log line into
        # links, and one inside a printed dict took the dict's closing quote with it.
        self.log.info(
            "Tuning finished: job %s, state %s, method %s, tuned model %s, endpoint %s, %s s",
            job,
            state,
            method,
            result["tuned_model"],
            result["endpoint"] or "none",
            result["duration_seconds"],
        )
        self.log.info("Tuning run in the Vertex AI console: %s", result["console_url"])
        return result


def _eta_range(plan: dict[str, Any]) -> list[float] | None:
    low, high = plan.get("eta_low_seconds"), plan.get("eta_high_seconds")
    return [float(low), float(high)] if low and high else None


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    seconds = (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    return round(seconds, 3)
