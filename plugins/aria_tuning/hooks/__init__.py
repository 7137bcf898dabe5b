"""Hooks: the conversation with Google, one small hook per service (as the Google provider splits them).

`base` (credentials, endpoint, transport, retries, typed errors), `jobs` (tuning runs), `models`
(Model Registry), `endpoints`, `prediction`, `operations` (LROs from the triggerer), `gcs`.
Import the hook from its module; this package imports only the shared base.
"""

from aria_tuning.hooks.base import VertexHook, close_async_client, is_transient, translated, vertex_message

__all__ = ["VertexHook", "close_async_client", "is_transient", "translated", "vertex_message"]
