"""Tuning runs on Vertex AI: tune-large-model pipeline jobs and Gemini tuning jobs, sync and async.

Find the jobs of one run key, submit (re-attaching when a create already landed), read, cancel.
"""

from __future__ import annotations

from typing import Any

from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import TuningMethod
from aria_tuning.errors import VertexAlreadyExists
from aria_tuning.hooks.base import AsyncVertexHook, VertexHook, translated
from aria_tuning.resources import resource_region


def _service(method: TuningMethod | str) -> str:
    return "pipeline" if TuningMethod(method) is TuningMethod.PIPELINE else "tuning"


def _as_dict(job: Any) -> dict[str, Any]:
    return dict(type(job).to_dict(job, use_integers_for_enums=False))


class TuningJobHook(VertexHook):
    """Synchronous calls on pipeline jobs and tuning jobs (what the tuning operator's execute needs)."""

    def find_jobs(self, parent: str, method: TuningMethod, key: str) -> list[vj.ExistingJob]:
        """Every job started for run `key` under `parent`, with its attempt number and short state."""
        client = self.client(_service(method), resource_region(parent))
        request = {"parent": parent, "filter": f'labels.{vj.LABEL_RUN_KEY}="{key}"'}
        lister = client.list_pipeline_jobs if method is TuningMethod.PIPELINE else client.list_tuning_jobs
        with translated(parent, "listing our jobs"):
            jobs = list(lister(request=request, retry=self.retry()))
        # Never trust a filter we did not write the server of: keep only jobs carrying our key.
        return vj.existing_jobs(
            ((job.name, dict(job.labels), vj.short_state(job.state)) for job in jobs), key
        )

    def list_ours(self, parent: str, method: TuningMethod) -> list[Any]:
        """Every job under `parent` that carries a run-key label, of any run: the reconciler's inventory."""
        client = self.client(_service(method), resource_region(parent))
        request = {"parent": parent, "filter": f"labels.{vj.LABEL_RUN_KEY}:*"}
        lister = client.list_pipeline_jobs if method is TuningMethod.PIPELINE else client.list_tuning_jobs
        with translated(parent, "listing our jobs"):
            jobs = list(lister(request=request, retry=self.retry()))
        return [job for job in jobs if dict(job.labels).get(vj.LABEL_RUN_KEY)]

    def cancel_job(self, name: str, method: TuningMethod) -> None:
        """Ask Vertex to cancel a job (it goes CANCELLING, then CANCELLED); repeating the ask is harmless."""
        client = self.client(_service(method), resource_region(name))
        cancel = client.cancel_pipeline_job if method is TuningMethod.PIPELINE else client.cancel_tuning_job
        with translated(name, "cancelling the job"):
            cancel(name=name, retry=self.retry())

    def create_pipeline_job(self, parent: str, job_id: str, body: dict[str, Any]) -> str:
        """Create pipeline job `job_id`; an earlier create of the same id that landed is re-attached."""
        from google.cloud import aiplatform_v1

        client = self.client("pipeline", resource_region(parent))
        name = f"{parent}/pipelineJobs/{job_id}"
        try:
            # The id is ours, so retrying a create whose reply was lost is safe: the repeat gets 409.
            with translated(parent, f"creating pipeline job {job_id}"):
                job = client.create_pipeline_job(
                    parent=parent,
                    pipeline_job=aiplatform_v1.PipelineJob(body),
                    pipeline_job_id=job_id,
                    retry=self.retry(),
                )
        except VertexAlreadyExists:
            # An earlier call (a retried one, or a try that died before deferring) created it: ours.
            self.log.info("%s already exists: re-attaching", name)
            return name
        return str(job.name)

    def create_tuning_job(self, parent: str, body: dict[str, Any]) -> str:
        """Create a Gemini tuning job. Not retried: Vertex picks its id, so a repeat is a second paid run."""
        from google.cloud import aiplatform_v1

        client = self.client("tuning", resource_region(parent))
        with translated(parent, f"creating tuning job for {body.get('base_model')}"):
            job = client.create_tuning_job(
                parent=parent, tuning_job=aiplatform_v1.TuningJob(body), retry=self.retry(idempotent=False)
            )
        return str(job.name)

    def get_job(self, name: str, method: TuningMethod) -> dict[str, Any]:
        """The whole job as a dict (proto field names, enum names)."""
        client = self.client(_service(method), resource_region(name))
        get = client.get_pipeline_job if method is TuningMethod.PIPELINE else client.get_tuning_job
        with translated(
            name, f"reading the {'pipeline' if method is TuningMethod.PIPELINE else 'tuning'} job"
        ):
            return _as_dict(get(name=name, retry=self.retry()))


class TuningJobAsyncHook(AsyncVertexHook):
    """One wait on one job from the triggerer: one async client for the whole wait."""

    def __init__(self, job_name: str, method: TuningMethod | str, **kwargs: Any) -> None:
        super().__init__(_service(method), resource_region(job_name), **kwargs)
        self.job_name = job_name
        self.method = TuningMethod(method)

    @property
    def is_pipeline(self) -> bool:
        return self.method is TuningMethod.PIPELINE

    async def get(self, fields: str | None = None) -> Any:
        """The job proto; `fields` asks for only those (the `X-Goog-FieldMask` system parameter)."""
        metadata = (("x-goog-fieldmask", fields),) if fields else ()
        get = self.aio.get_pipeline_job if self.is_pipeline else self.aio.get_tuning_job
        with translated(self.job_name, "polling the job"):
            return await get(name=self.job_name, metadata=metadata)

    async def cancel(self) -> None:
        cancel = self.aio.cancel_pipeline_job if self.is_pipeline else self.aio.cancel_tuning_job
        with translated(self.job_name, "cancelling the job"):
            await cancel(name=self.job_name)
