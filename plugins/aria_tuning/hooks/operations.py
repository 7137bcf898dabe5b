"""Long-running operations (deploy, undeploy) of one Vertex service, polled from the triggerer."""

from __future__ import annotations

from typing import Any

from aria_tuning.hooks.base import AsyncVertexHook, translated


class OperationAsyncHook(AsyncVertexHook):
    """Reads `google.longrunning.Operation`s of one service and region over one async client."""

    async def get(self, name: str) -> Any:
        with translated(name, "reading the operation"):
            return await self.aio.get_operation(request={"name": name})
