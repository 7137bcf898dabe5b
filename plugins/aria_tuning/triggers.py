"""Triggers that wait on Vertex AI in the triggerer: a tuning job (pipeline run or tuningJob) and LROs.

One async client per trigger; polls with capped exponential backoff and jitter; transient API
errors (429, 5xx, deadline exceeded, broken connections) are ridden out up to a bounded budget.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from aria_tuning import run_progress
from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import TuningMethod
from aria_tuning.hooks.base import is_transient, vertex_message
from aria_tuning.hooks.jobs import TuningJobAsyncHook
from aria_tuning.hooks.operations import OperationAsyncHook
from aria_tuning.poll_schedule import finish_aware_delay
from aria_tuning.resources import resource_region

#: Airflow >= 3.3 calls `BaseTrigger.on_kill` for every trigger a triggerer stops running because it is
#: no longer assigned to it: a user's mark/clear (the trigger row is gone), but also a reassignment to
#: another triggerer after this one missed its heartbeat (airflow/jobs/triggerer_job_runner.py 3.3.2:
#: `update_triggers` puts every running id not in `ids_for_triggerer` into `cancelling_triggers`, and
#: `cancel_triggers` cancels them all with `_USER_ACTION_CANCEL_MSG`, which `run_trigger` answers with
#: `on_kill()`; apache/airflow#73454 is open). Older versions (3.1, 3.2) only cancel the coroutine, for
#: user actions and triggerer restarts alike. Either way the Vertex job is cancelled only once the API
#: server says the task instance has left the deferred state (`_user_acted`).
TRIGGER_HAS_ON_KILL = "on_kill" in BaseTrigger.__dict__


async def delivering_cancellation(request: Coroutine[Any, Any, Any]) -> Any:
    """Await `request` so that a cancellation of the caller always reaches the caller, message and all.

    Python 3.11's `asyncio.wait_for` drops a cancellation that arrives in the loop pass in which the
    awaited call completes: it returns the result instead (CPython gh-86296, fixed in 3.12 by
    rebuilding it on `asyncio.timeout`). google-auth awaits every async REST request with it
    (`google/auth/aio/transport/sessions.py`, `timeout_guard`), so a triggerer's "cancelled by user
    action" landing as a poll's reply arrives was lost: the trigger went on polling and the job it
    should have cancelled went on billing. Shielded, the request's own task may swallow the
    cancellation; the caller's await raises it. The request is then cancelled too, its outcome dropped.
    """
    inner = asyncio.ensure_future(request)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.cancel()
        inner.add_done_callback(_drop_outcome)
        raise


def _drop_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at garbage collection


class _VertexPollingTrigger(BaseTrigger):
    """Shared polling machinery: client lifecycle, backoff with jitter, transient-error budget."""

    def __init__(
        self,
        *,
        gcp_conn_id: str = "google_cloud_default",
        impersonation_chain: str | Sequence[str] | None = None,
        poll_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        transient_error_budget: int = 10,
    ) -> None:
        super().__init__()
        self.gcp_conn_id = gcp_conn_id
        self.impersonation_chain = impersonation_chain
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max(max_poll_interval, poll_interval))
        self.transient_error_budget = int(transient_error_budget)
        self._delay = self.poll_interval

    def _common_kwargs(self) -> dict[str, Any]:
        return {
            "gcp_conn_id": self.gcp_conn_id,
            "impersonation_chain": self.impersonation_chain,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "transient_error_budget": self.transient_error_budget,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self._kwargs()

    def _kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _hook_kwargs(self) -> dict[str, Any]:
        return {"gcp_conn_id": self.gcp_conn_id, "impersonation_chain": self.impersonation_chain}

    def _backoff(self, grow: bool) -> float:
        """Sleep before the next poll: `grow` doubles the delay (capped); jitter spreads load."""
        self._delay = min(self.max_poll_interval, self._delay * 2) if grow else self.poll_interval
        return random.uniform(self._delay / 2, self._delay)

    async def _call(self, what: str, call: Any) -> Any:
        """Await `call()` and retry transient failures, at most `transient_error_budget` in a row."""
        failures = 0
        while True:
            try:
                return await delivering_cancellation(call())
            except Exception as exc:
                if not is_transient(exc) or failures >= self.transient_error_budget:
                    raise
                failures += 1
                delay = random.uniform(0, min(self.max_poll_interval, self.poll_interval * 2**failures))
                self.log.warning(
                    "%s: transient error %d/%d (%s); retrying in %.1fs",
                    what,
                    failures,
                    self.transient_error_budget,
                    vertex_message(exc),
                    delay,
                )
                await asyncio.sleep(delay)


class VertexTuningJobTrigger(_VertexPollingTrigger):
    """Waits for a tune-large-model pipeline run or a Gemini tuningJob to end.

    Yields one event: `{"status": "success" | "error", **job_summary}`. SUCCEEDED is success;
    FAILED/EXPIRED carry Vertex's error message; CANCELLED says so; PAUSED keeps waiting.
    `expected_seconds` (the plan's duration estimate) makes the polling finish-aware
    (`aria_tuning.poll_schedule`): sparse mid-run, every `poll_interval` from just before the end.
    While the job runs, each poll logs its progress (`aria_tuning.run_progress`): tasks done, the
    estimated step (`train_steps`), and when the plan (`expected_seconds`, `expected_range_seconds`)
    expects it to end.
    """

    def __init__(
        self,
        *,
        job_name: str,
        method: str,
        cancel_on_kill: bool = True,
        expected_seconds: float | None = None,
        expected_range_seconds: Sequence[float] | None = None,
        train_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.method = str(TuningMethod(method))
        self.cancel_on_kill = bool(cancel_on_kill)
        self.expected_seconds = float(expected_seconds) if expected_seconds else None
        self.expected_range_seconds = (
            [float(s) for s in expected_range_seconds] if expected_range_seconds else None
        )
        self.train_steps = int(train_steps) if train_steps else None
        self._started_at = time.time()

    def _kwargs(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "method": self.method,
            "cancel_on_kill": self.cancel_on_kill,
            "expected_seconds": self.expected_seconds,
            "expected_range_seconds": self.expected_range_seconds,
            "train_steps": self.train_steps,
            **self._common_kwargs(),
        }

    @property
    def _is_pipeline(self) -> bool:
        return TuningMethod(self.method) is TuningMethod.PIPELINE

    def _hook(self) -> TuningJobAsyncHook:
        return TuningJobAsyncHook(self.job_name, self.method, **self._hook_kwargs())

    async def _get_job(self, hook: TuningJobAsyncHook, full: bool = False) -> Any:
        # Polls ask only for what they read (the `X-Goog-FieldMask` system parameter): parsing the
        # whole PipelineJob (its pipelineSpec and task details) is most of a poll's CPU. The final
        # read is a full one, for the outputs.
        return await self._call(self.job_name, lambda: hook.get(None if full else self._poll_mask))

    @property
    def _poll_mask(self) -> str:
        # createTime/startTime: how long the job has run, for the finish-aware schedule.
        if self._is_pipeline:
            return (
                "name,state,error,createTime,startTime,"
                "jobDetail.taskDetails.taskName,jobDetail.taskDetails.state,"
                "jobDetail.taskDetails.startTime,jobDetail.taskDetails.parentTaskId"
            )
        return "name,state,error,createTime,startTime"

    def _progress(self, job: Any) -> dict[str, str]:
        # Read straight from the proto: converting the whole job to a dict on every poll is the
        # most expensive thing a poll could do.
        if not self._is_pipeline:
            return {}
        return {d.task_name: vj.short_state(d.state) for d in job.job_detail.task_details}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        await hook.open()
        try:
            state, progress = "", dict[str, str]()
            while True:
                try:
                    job = await self._get_job(hook)
                except Exception as exc:
                    yield self._error(f"polling failed: {vertex_message(exc)}", state or "UNKNOWN")
                    return
                new_state = vj.short_state(job.state)
                changed = new_state != state
                if changed:
                    self.log.info("%s: state %s -> %s", self.job_name, state or "(start)", new_state)
                    state = new_state
                    if state == vj.PAUSED:
                        self.log.warning(
                            "%s is PAUSED: not a success; waiting for it to resume", self.job_name
                        )
                current = self._progress(job)
                for task, task_state in current.items():
                    if progress.get(task) != task_state:
                        self.log.info("%s: pipeline task %s is %s", self.job_name, task, task_state)
                progress = current
                if state == "RUNNING":
                    self.log.info("%s: %s", self.job_name, self._progress_line(job))
                if state in vj.TERMINAL:
                    try:
                        job = await self._get_job(hook, full=True)
                    except Exception as exc:
                        yield self._error(f"reading the finished job failed: {vertex_message(exc)}", state)
                        return
                    as_dict = type(job).to_dict(job, use_integers_for_enums=False)
                    yield TriggerEvent(self._final(vj.job_summary(as_dict, self.method)))
                    return
                await asyncio.sleep(self._next_sleep(job, grow=not changed))
        except asyncio.CancelledError:
            if self.cancel_on_kill and not TRIGGER_HAS_ON_KILL and await self._user_acted():
                await self._cancel(hook)
            raise
        finally:
            await hook.close()

    def _progress_line(self, job: Any) -> str:
        """How far the running job is, from what this poll read and what the plan expected."""
        import datetime as dt

        now = dt.datetime.now(dt.UTC)
        since = job.start_time or job.create_time
        tasks, running_since = [], None
        if self._is_pipeline:
            # The root DAG execution (the pipeline itself, no parent) is not one of its tasks.
            details = [d for d in job.job_detail.task_details if d.parent_task_id]
            tasks = [(d.task_name, vj.short_state(d.state)) for d in details]
            running = [d for d in details if vj.short_state(d.state) == "RUNNING"]
            running_since = running[-1].start_time if running and running[-1].start_time else None
        return run_progress.progress_line(
            started=since if since else dt.datetime.fromtimestamp(self._started_at, dt.UTC),
            now=now,
            tasks=tasks,
            running_task_started=running_since,
            train_steps=self.train_steps,
            expected_seconds=self.expected_seconds,
            expected_range_seconds=self.expected_range_seconds,
        )

    def _next_sleep(self, job: Any, grow: bool) -> float:
        """The backoff's sleep; finish-aware when the plan knows the run's expected duration."""
        if self.expected_seconds is None:
            return self._backoff(grow)
        # Vertex's own clock says how long the job has run, also after a triggerer restart or a
        # re-attach; before it starts (queued), since its creation, which only polls earlier.
        since = job.start_time or job.create_time
        elapsed = time.time() - (since.timestamp() if since else self._started_at)
        return finish_aware_delay(
            elapsed, self.expected_seconds, self.poll_interval, self.max_poll_interval, random.random()
        )

    def _final(self, summary: dict[str, Any]) -> dict[str, Any]:
        state = summary["state"]
        if state == vj.SUCCEEDED:
            return {"status": "success", **summary}
        if state == vj.CANCELLED:
            vertex_said = summary["message"]
            summary["message"] = (
                f"the job was cancelled (Vertex: {vertex_said})" if vertex_said else "the job was cancelled"
            )
        else:
            summary["message"] = summary["message"] or f"the job ended {state} without an error message"
        return {"status": "error", **summary}

    def _error(self, message: str, state: str) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": "error",
                "job": self.job_name,
                "state": state,
                "method": self.method,
                "message": message,
            }
        )

    async def on_kill(self) -> None:
        """Cancel the Vertex job if a user marked the deferred task failed/success or cleared it.

        Not if the task is still deferred: then this triggerer lost the trigger to another one (a
        missed heartbeat, a stalled process) and the job is healthy and being polled there.
        """
        if not self.cancel_on_kill:
            return
        if not await self._user_acted():
            self.log.info(
                "Not cancelling %s: its task is still deferred (the trigger moved to another triggerer)",
                self.job_name,
            )
            return
        hook = self._hook()
        await hook.open()
        try:
            await self._cancel(hook)
        finally:
            await hook.close()

    async def _cancel(self, hook: TuningJobAsyncHook) -> None:
        self.log.info("Cancelling %s because the deferred task was stopped by a user", self.job_name)
        await self._call(self.job_name, hook.cancel)
        self.log.info("Cancellation of %s requested", self.job_name)

    async def _user_acted(self) -> bool:
        """True when the task instance is no longer deferred: a user acted on it.

        A trigger stopped while its task is still DEFERRED was restarted, reassigned or shut down.
        When the state cannot be read, nothing is cancelled (the reconciler catches real orphans).
        """
        try:
            state = await self._task_state()
        except Exception:  # any failure to read means "not known to be a user's action"
            self.log.warning("Could not read the task state; not cancelling %s", self.job_name, exc_info=True)
            return False
        if state is None:
            self.log.warning("No task instance on this trigger; not cancelling %s", self.job_name)
            return False
        return state != "deferred"

    async def _task_state(self) -> str | None:
        """The deferred task instance's state as the API server has it now (None: no task instance)."""
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        ti = self.task_instance
        if ti is None:
            return None
        states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
            dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
        )
        # The Execution API keys a mapped task instance `<task_id>_<map_index>` (get_task_instance_states in
        # airflow/api_fastapi/execution_api/routes/task_instances.py, 3.3); an unmapped one by its task_id.
        mapped = ti.map_index is not None and ti.map_index >= 0
        return str(states[ti.run_id][f"{ti.task_id}_{ti.map_index}" if mapped else ti.task_id])


class VertexOperationTrigger(_VertexPollingTrigger):
    """Waits for long-running operations (deploy, undeploy) of one Vertex service to finish.

    Yields `{"status": "success", "operations": [...]}` or, on the first failed one,
    `{"status": "error", "operations": [...], "operation": name, "message": ...}`.
    """

    def __init__(self, *, operation_names: Sequence[str], service: str = "endpoint", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.operation_names = list(operation_names)
        self.service = service

    def _kwargs(self) -> dict[str, Any]:
        return {"operation_names": self.operation_names, "service": self.service, **self._common_kwargs()}

    def _event(self, status: str, **details: str) -> TriggerEvent:
        # The operation names travel in the event: resume methods derive their resource from them.
        return TriggerEvent({"status": status, "operations": self.operation_names, **details})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if not self.operation_names:
            yield self._event("success")
            return
        hook = OperationAsyncHook(
            self.service, resource_region(self.operation_names[0]), **self._hook_kwargs()
        )
        await hook.open()
        try:
            pending = list(self.operation_names)
            while pending:
                for name in list(pending):
                    try:
                        op = await self._call(name, lambda name=name: hook.get(name))
                    except Exception as exc:
                        yield self._event("error", operation=name, message=vertex_message(exc))
                        return
                    if not op.done:
                        continue
                    if op.HasField("error") and op.error.code:
                        yield self._event("error", operation=name, message=op.error.message)
                        return
                    self.log.info("%s: done", name)
                    pending.remove(name)
                if pending:
                    await asyncio.sleep(self._backoff(grow=True))
            yield self._event("success")
        finally:
            await hook.close()
