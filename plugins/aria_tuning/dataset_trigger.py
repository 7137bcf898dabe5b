"""The trigger that waits for a dataset version to be complete in GCS, in the triggerer.

Every GCS call goes through `StorageHook` (the connection's credentials: the provider's GCSAsyncHook
sends none to an emulator, `gcloud.aio.storage` "dev" mode) on a synchronous google-cloud-storage
client; the client is built and every check runs in a worker thread (`asyncio.to_thread`), so the
triggerer's event loop never blocks on the network or on reading the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import TriggerEvent

from aria_tuning.dataset_versions import WAITING, Outcome, QuietWatch, check, version_uri
from aria_tuning.hooks.base import translated, vertex_message
from aria_tuning.hooks.gcs import StorageHook
from aria_tuning.triggers import _VertexPollingTrigger


class DatasetVersionTrigger(_VertexPollingTrigger):
    """Polls gs://`bucket`/`prefix` every `poll_interval` seconds until the version is complete.

    Complete: its manifest lists files that all exist with their size and crc32c; or, with
    `allow_unmanifested` and no manifest, objects exist and have not changed for
    `inactivity_period` seconds. Yields one event: `{"status": "success", ...}` (the sensor's XCom,
    see `dataset_versions.check`) or `{"status": "error", "message", "problems", "retryable"}`.
    Transient GCS errors are ridden out within the transient-error budget.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        refuse_unlisted: bool = False,
        allow_unmanifested: bool = False,
        inactivity_period: float = 600.0,
        min_objects: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.refuse_unlisted = bool(refuse_unlisted)
        self.allow_unmanifested = bool(allow_unmanifested)
        self.inactivity_period = float(inactivity_period)
        self.min_objects = int(min_objects)

    def _kwargs(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "refuse_unlisted": self.refuse_unlisted,
            "allow_unmanifested": self.allow_unmanifested,
            "inactivity_period": self.inactivity_period,
            "min_objects": self.min_objects,
            **self._common_kwargs(),
        }

    @property
    def uri(self) -> str:
        return version_uri(self.bucket, self.prefix)

    def _client(self) -> Any:
        return StorageHook(**self._hook_kwargs()).storage_client

    def _check(self, client: Any, watch: QuietWatch | None) -> Outcome:
        with translated(self.uri, "checking the dataset version"):
            return check(
                client,
                self.bucket,
                self.prefix,
                refuse_unlisted=self.refuse_unlisted,
                watch=watch,
                now=time.monotonic(),
            )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            client = await asyncio.to_thread(self._client)
        except Exception as exc:  # the connection or its credentials: nothing was checked
            yield self._error(f"{self.uri}: cannot build a GCS client: {vertex_message(exc)}")
            return
        watch = QuietWatch(self.inactivity_period, self.min_objects) if self.allow_unmanifested else None
        self.log.info(
            "Waiting for %s to be published (manifest)%s",
            self.uri,
            f", or quiet for {self.inactivity_period:g}s without one" if watch else "",
        )
        try:
            while True:
                try:
                    outcome = await self._call(
                        self.uri, lambda: asyncio.to_thread(self._check, client, watch)
                    )
                except Exception as exc:  # a GCS failure the budget could not ride out
                    yield self._error(str(exc))
                    return
                if outcome.status != WAITING:
                    yield TriggerEvent(outcome.event())
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            await asyncio.to_thread(client.close)

    def _error(self, message: str) -> TriggerEvent:
        # GCS was unreachable or refused: a later try may succeed, unlike a version that is wrong.
        return TriggerEvent({"status": "error", "message": message, "problems": [], "retryable": True})
