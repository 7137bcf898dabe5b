"""Waits of a rollout in the triggerer that hand a small state back with their event (`carry`).

A resume method gets only the trigger's event on every runner (`dag.test()` drops `defer(kwargs=)`),
so what a rollout has done so far (the soaked steps, the versions it retires) travels in the event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from aria_tuning.triggers import VertexOperationTrigger


class CarryingOperationTrigger(VertexOperationTrigger):
    """`VertexOperationTrigger` whose event also holds `carry`."""

    def __init__(self, *, carry: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.carry = carry

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "carry": self.carry}

    def _event(self, status: str, **details: str) -> TriggerEvent:
        return TriggerEvent({**super()._event(status, **details).payload, "carry": self.carry})


class SoakTrigger(BaseTrigger):
    """Sleeps until `until` (Unix seconds), then yields `{"status": "success", "carry": carry}`."""

    def __init__(self, *, until: float, carry: dict[str, Any]) -> None:
        super().__init__()
        self.until = float(until)
        self.carry = carry

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "until": self.until,
            "carry": self.carry,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Short sleeps: a triggerer restart loses nothing (the time is absolute) and cancels promptly.
        while (left := self.until - time.time()) > 0:
            await asyncio.sleep(min(left, 30.0))
        yield TriggerEvent({"status": "success", "carry": self.carry})
