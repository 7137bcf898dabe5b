"""Fault injection: rules that make matching API calls fail, slow down, time out or lose their reply.

A rule has an HTTP status (e.g. 429, 500, 503; or none), a rate in [0, 1], optional method and
path filters (the path filter is a regular expression searched in the request path), added
latency in milliseconds and an optional count of how many calls it may still hit. `when` says
whether it strikes before the handler runs (the call is refused, nothing changes: the default) or
after it (the call is applied and its state change kept, then the reply is lost: what a client
sees on a real network when a create lands and the answer does not). `mode` says what the client
gets: `error` (the rule's status), `timeout` (the reply is held `latencyMs`, meant to be longer
than the client waits, then sent: the rule's status if it has one, else the call's own answer
after the handler, or no answer at all before it) or `drop` (the connection is closed without a
reply: REST resets the TCP connection, gRPC answers UNAVAILABLE "connection reset"). `service` says
which calls it is for: `vertex` (the default: the emulator's REST and gRPC API) or `gcs` (calls through
the GCS gate, `gcs_gate`, whose paths are the JSON API's, e.g. /storage/v1/b/B/o); a rule strikes only
its own service's calls and draws from its stream only for them.

Each rule draws from its own random stream, seeded from the rule's `seed` (else the emulator's
`--fault-seed`) and its id, so the same rules added in the same order to a fresh emulator fire on
the same calls. Rules never apply to the control plane under /_emulator/.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vertex_emulator.exceptions import EmulatorError, Injected, InvalidArgument

T = TypeVar("T")

WHEN = ("before", "after")
MODES = ("error", "timeout", "drop")
SERVICES = ("vertex", "gcs")
_FIELDS = frozenset(
    {"status", "rate", "method", "path", "latencyMs", "latency_ms", "count", "when", "mode", "seed"}
    | {"service"}
)


@dataclass
class FaultRule:
    id: int
    status: int | None
    rate: float
    method: str | None
    path: str | None
    latency_ms: int
    remaining: int | None
    when: str = "before"
    mode: str = "error"
    seed: int | None = None
    service: str = "vertex"
    hits: int = 0
    random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    @property
    def strikes(self) -> bool:
        """True when the rule decides the call's outcome (not just adds latency)."""
        return self.status is not None or self.mode != "error"

    def matches(self, method: str, path: str, service: str = "vertex") -> bool:
        if self.service != service:
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.path and re.search(self.path, path) is None:
            return False
        return self.remaining is None or self.remaining > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "rate": self.rate,
            "method": self.method,
            "path": self.path,
            "latencyMs": self.latency_ms,
            "count": self.remaining,
            "when": self.when,
            "mode": self.mode,
            "seed": self.seed,
            "service": self.service,
            "hits": self.hits,
        }


@dataclass(frozen=True)
class Decision:
    """What to do to one call: wait `latency_ms` before the handler, then (when `rule_id` is set)
    strike `when` it says with `mode`; `hold_ms` is how long the reply waits after the handler."""

    status: int | None
    latency_ms: int
    rule_id: int | None
    when: str = "before"
    mode: str = "error"
    hold_ms: int = 0

    @property
    def before(self) -> bool:
        """The call is refused without running its handler."""
        return self.rule_id is not None and self.when == "before"

    @property
    def after(self) -> bool:
        """The handler runs (its change is kept), then the reply is lost."""
        return self.rule_id is not None and self.when == "after"

    @property
    def ending(self) -> str:
        """How a struck call ends: `error` (the status), `drop` (no reply) or `reply` (its own answer,
        late: an after-commit timeout without a status). A timeout before the handler without a
        status drops the connection once the hold is over: the call was never applied."""
        if self.mode == "drop":
            return "drop"
        if self.status is not None:
            return "error"
        return "reply" if self.when == "after" else "drop"

    def describe(self) -> str:
        """The request counter's label of a struck call, e.g. `fault after drop`, `fault 503`."""
        outcome = self.mode if self.mode != "error" else str(self.status)
        if self.mode == "timeout" and self.status is not None:
            outcome = f"timeout {self.status}"
        return f"fault {'after ' if self.when == 'after' else ''}{outcome}"

    def message(self) -> str:
        return (
            f"injected fault (rule {self.rule_id}, {self.when} the handler): "
            f"{f'HTTP {self.status}' if self.status is not None else self.mode}"
        )


class ConnectionDropped(Exception):
    """A fault dropped the connection: the call gets no reply (REST resets it, gRPC: UNAVAILABLE)."""


async def serve(decision: Decision, handle: Callable[[], Awaitable[T]], count: Callable[[str], None]) -> T:
    """Run `handle` (the call's handler) as `decision` says, for REST and gRPC alike: latency, then
    the handler unless a fault strikes before it, then the held or lost reply. Raises the rule's
    `Injected` error or `ConnectionDropped`; `count` gets the struck call's label."""
    if decision.rule_id is not None:  # counted at once: a client that gives up cancels a gRPC call
        count(decision.describe())
    if decision.latency_ms:
        await asyncio.sleep(decision.latency_ms / 1000)
    if decision.before:
        raise _strike(decision)
    try:
        reply: T | EmulatorError = await handle()
    except EmulatorError as error:  # an error reply is held or lost like any other
        if not (decision.after or decision.hold_ms):
            raise
        reply = error
    if decision.hold_ms:  # the change is made; the reply waits
        await asyncio.sleep(decision.hold_ms / 1000)
    if decision.after and decision.ending != "reply":
        raise _strike(decision)
    if isinstance(reply, EmulatorError):
        raise reply
    return reply


def _strike(decision: Decision) -> Exception:
    if decision.ending == "drop":
        return ConnectionDropped(f"Connection reset by peer ({decision.message()})")
    assert decision.status is not None  # ending "error"
    return Injected(decision.status, decision.message())


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        """`seed` (the emulator's --fault-seed) seeds every rule that brings no seed of its own."""
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._seed = seed
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> FaultRule:
        unknown = set(spec) - _FIELDS
        if unknown:
            raise InvalidArgument(f"unknown fault field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
        status = spec.get("status")
        rate = float(spec.get("rate", 1.0))
        latency = int(spec.get("latencyMs", spec.get("latency_ms", 0)) or 0)
        count = spec.get("count")
        when, mode, seed = spec.get("when", "before"), spec.get("mode", "error"), spec.get("seed")
        service = spec.get("service", "vertex")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise InvalidArgument(f"fault status must be an HTTP error status 400..599, got {status!r}")
        if not 0.0 <= rate <= 1.0:
            raise InvalidArgument(f"fault rate must be in [0, 1], got {rate}")
        if when not in WHEN:
            raise InvalidArgument(f"fault when must be one of {list(WHEN)}, got {when!r}")
        if mode not in MODES:
            raise InvalidArgument(f"fault mode must be one of {list(MODES)}, got {mode!r}")
        if service not in SERVICES:
            raise InvalidArgument(f"fault service must be one of {list(SERVICES)}, got {service!r}")
        if mode == "error" and status is None and latency <= 0:
            raise InvalidArgument("a fault needs a status, a latencyMs, or both")
        if mode == "timeout" and latency <= 0:
            raise InvalidArgument("a timeout fault needs latencyMs: how long the reply is held")
        if mode == "drop" and status is not None:
            raise InvalidArgument(f"a drop fault sends no reply, so no status (got {status})")
        if seed is not None and not isinstance(seed, int):
            raise InvalidArgument(f"fault seed must be an integer, got {seed!r}")
        if spec.get("path"):
            try:
                re.compile(spec["path"])
            except re.error as exc:
                raise InvalidArgument(
                    f"fault path {spec['path']!r} is not a regular expression: {exc}"
                ) from exc
        with self._lock:
            rule_id = next(self._ids)
            stream_seed = seed if seed is not None else self._seed
            rule = FaultRule(
                rule_id,
                status,
                rate,
                spec.get("method"),
                spec.get("path"),
                latency,
                int(count) if count is not None else None,
                when,
                mode,
                seed,
                service,
                # A string seed is hashed the same way in every process (random.seed, version 2).
                random=random.Random(f"{stream_seed}/{rule_id}" if stream_seed is not None else None),
            )
            self._rules.append(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def decide(self, method: str, path: str, service: str = "vertex") -> Decision:
        """What to do to one call of `service`: latency of every firing rule adds up (before or after
        the handler, as each rule says); the first firing rule with an outcome decides it."""
        with self._lock:
            latency, hold = 0, 0
            for rule in self._rules:
                if not rule.matches(method, path, service) or rule.random.random() >= rule.rate:
                    continue
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                if rule.when == "after":
                    hold += rule.latency_ms
                else:
                    latency += rule.latency_ms
                if rule.strikes:
                    return Decision(rule.status, latency, rule.id, rule.when, rule.mode, hold)
            return Decision(None, latency, None, hold_ms=hold)
