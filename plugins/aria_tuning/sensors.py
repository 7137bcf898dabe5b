"""The dataset-version sensor: proceeds once a version's manifest checks out against GCS, deferred.

A real Airflow sensor (`BaseSensorOperator`: `soft_fail`, `timeout`, `poke_interval`, sensor handling
in the UI and API). Cheap to import at parse time: no Google client is loaded until it runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NoReturn

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue

#: Problems written to the task log before "... and N more".
SHOWN_PROBLEMS = 50


class DatasetVersionSensor(BaseSensorOperator):
    """Waits until gs://`bucket`/`prefix` is a complete, published dataset version; returns its files.

    Complete: the manifest (`aria_tuning.manifest`) exists and every file it lists exists with the
    listed size and crc32c. A listed file missing or different fails the task (no retry) naming the
    object and both checksums; objects the manifest does not list are reported and ignored, or fail
    the task with `refuse_unlisted`. With `allow_unmanifested`, a version without a manifest is also
    complete once objects exist and nothing changed for `inactivity_period` seconds (the rule before
    manifests). Deferrable (default): one check on the worker, then the wait runs in the triggerer
    (`DatasetVersionTrigger`) for up to `timeout` seconds.

    Returns (XCom) `{uri, bucket, prefix, mode, manifest, objects, unlisted}`, `objects` being
    `[{name, generation, size, crc32c, uri}]` with `uri` = `gs://bucket/name#generation`: data prep
    reads exactly those generations.
    """

    template_fields: Sequence[str] = (
        "bucket",
        "prefix",
        "allow_unmanifested",
        "refuse_unlisted",
        "gcp_conn_id",
        "impersonation_chain",
    )
    ui_color = "#f0eee4"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        allow_unmanifested: bool | str = False,
        refuse_unlisted: bool | str = False,
        inactivity_period: float = 600.0,
        min_objects: int = 1,
        gcp_conn_id: str = "google_cloud_default",
        impersonation_chain: str | Sequence[str] | None = None,
        deferrable: bool = True,
        transient_error_budget: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.allow_unmanifested = allow_unmanifested
        self.refuse_unlisted = refuse_unlisted
        self.inactivity_period = float(inactivity_period)
        self.min_objects = int(min_objects)
        self.gcp_conn_id = gcp_conn_id
        self.impersonation_chain = impersonation_chain
        self.deferrable = deferrable
        self.transient_error_budget = int(transient_error_budget)
        self._watch: Any = None  # the quiet-period state between pokes (poke mode)

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)  # BaseSensorOperator's poke loop
        # One look on the worker: an already published version (a backfill, a late run) goes on
        # without a round trip through the triggerer.
        from aria_tuning.errors import VertexError

        try:
            outcome = self._check(watch=None)
        except VertexError as exc:
            if not exc.transient:
                raise
            # A blip (429, 5xx, a reset connection): the trigger rides those out within its budget.
            self.log.warning("%s: first check failed (%s); waiting in the triggerer", self.uri, exc)
        else:
            if outcome.status != "waiting":
                return self._finish(outcome.event())
        self.defer(
            trigger=self.trigger(),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),  # the sensor's timeout (TaskDeferralTimeout)
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        if self._watch is None and _as_bool(self.allow_unmanifested):
            from aria_tuning.dataset_versions import QuietWatch

            self._watch = QuietWatch(self.inactivity_period, self.min_objects)
        outcome = self._check(watch=self._watch)
        if outcome.status == "waiting":
            return False
        return PokeReturnValue(True, self._finish(outcome.event()))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        return self._finish(event)

    def trigger(self) -> Any:
        """The trigger this sensor defers on (the same check, polled in the triggerer)."""
        from aria_tuning.dataset_trigger import DatasetVersionTrigger

        return DatasetVersionTrigger(
            bucket=self.bucket,
            prefix=self.prefix,
            refuse_unlisted=_as_bool(self.refuse_unlisted),
            allow_unmanifested=_as_bool(self.allow_unmanifested),
            inactivity_period=self.inactivity_period,
            min_objects=self.min_objects,
            gcp_conn_id=self.gcp_conn_id,
            impersonation_chain=self.impersonation_chain,
            poll_interval=self.poke_interval,
            transient_error_budget=self.transient_error_budget,
        )

    def _check(self, watch: Any) -> Any:
        import time

        from aria_tuning.dataset_versions import check
        from aria_tuning.hooks.base import translated
        from aria_tuning.hooks.gcs import StorageHook

        client = StorageHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        with translated(self.uri, "checking the dataset version"):
            return check(
                client.storage_client,
                self.bucket,
                self.prefix,
                refuse_unlisted=_as_bool(self.refuse_unlisted),
                watch=watch,
                now=time.monotonic(),
            )

    def _finish(self, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            problems = list(event.get("problems") or [])
            for problem in problems[:SHOWN_PROBLEMS]:
                self.log.error("%s", problem)
            if len(problems) > SHOWN_PROBLEMS:
                self.log.error("... and %d more problems", len(problems) - SHOWN_PROBLEMS)
            self._fail(str(event.get("message") or f"{self.uri}: the dataset version check failed"), event)
        result = {k: v for k, v in event.items() if k != "status"}
        if result.get("unlisted"):
            self.log.warning(
                "%s: %d object(s) not listed in the manifest, ignored: %s",
                self.uri,
                len(result["unlisted"]),
                ", ".join(result["unlisted"][:20]),
            )
        self.log.info(
            "%s is complete (%s): %d file(s), %d bytes",
            self.uri,
            "manifest verified" if result.get("mode") == "manifest" else "no manifest; upload quiet",
            len(result.get("objects") or []),
            sum(int(o["size"]) for o in result.get("objects") or []),
        )
        return result

    def _fail(self, message: str, event: dict[str, Any]) -> NoReturn:
        exceptions = _exceptions()
        if self.soft_fail or self.never_fail:
            raise exceptions.AirflowSkipException(f"{message} (soft_fail: skipped)")
        if event.get("retryable"):
            raise exceptions.AirflowException(message)  # GCS unreachable: the task's retries apply
        # A version that does not match its manifest stays wrong: fail now, create no job.
        raise exceptions.AirflowFailException(message)


def _exceptions() -> Any:
    try:
        from airflow.sdk import exceptions
    except ImportError:  # Airflow 3.1 keeps them in airflow.exceptions only
        from airflow import exceptions  # type: ignore[no-redef]
    return exceptions


def _as_bool(value: object) -> bool:
    """A flag that may arrive rendered as text ("True", "false") from a template."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
