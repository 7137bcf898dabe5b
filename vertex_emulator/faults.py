"""Fault injection: rules that make matching API calls fail or slow down.

A rule has an HTTP status (e.g. 429, 500, 503; or none for latency only), a rate in [0, 1],
optional method and path filters (the path filter is a regular expression searched in the
request path), added latency in milliseconds and an optional count of how many calls it may
still hit. Rules never apply to the control plane under /_emulator/.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

from vertex_emulator.exceptions import InvalidArgument


@dataclass
class FaultRule:
    id: int
    status: int | None
    rate: float
    method: str | None
    path: str | None
    latency_ms: int
    remaining: int | None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.path and re.search(self.path, path) is None:
            return False
        return self.remaining is None or self.remaining > 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "id": data["id"],
            "status": data["status"],
            "rate": data["rate"],
            "method": data["method"],
            "path": data["path"],
            "latencyMs": data["latency_ms"],
            "count": data["remaining"],
            "hits": data["hits"],
        }


@dataclass(frozen=True)
class Decision:
    status: int | None
    latency_ms: int
    rule_id: int | None


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> FaultRule:
        status = spec.get("status")
        rate = float(spec.get("rate", 1.0))
        latency = int(spec.get("latencyMs", spec.get("latency_ms", 0)) or 0)
        count = spec.get("count")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise InvalidArgument(f"fault status must be an HTTP error status 400..599, got {status!r}")
        if not 0.0 <= rate <= 1.0:
            raise InvalidArgument(f"fault rate must be in [0, 1], got {rate}")
        if status is None and latency <= 0:
            raise InvalidArgument("a fault needs a status, a latencyMs, or both")
        if spec.get("path"):
            try:
                re.compile(spec["path"])
            except re.error as exc:
                raise InvalidArgument(
                    f"fault path {spec['path']!r} is not a regular expression: {exc}"
                ) from exc
        unknown = set(spec) - {"status", "rate", "method", "path", "latencyMs", "latency_ms", "count"}
        if unknown:
            raise InvalidArgument(f"unknown fault field(s) {sorted(unknown)}")
        with self._lock:
            rule = FaultRule(
                next(self._ids),
                status,
                rate,
                spec.get("method"),
                spec.get("path"),
                latency,
                int(count) if count is not None else None,
            )
            self._rules.append(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def decide(self, method: str, path: str) -> Decision:
        """What to do to one API call: the first matching rule that fires wins."""
        with self._lock:
            latency = 0
            for rule in self._rules:
                if not rule.matches(method, path) or self._random.random() >= rule.rate:
                    continue
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                latency += rule.latency_ms
                if rule.status is not None:
                    return Decision(rule.status, latency, rule.id)
            return Decision(None, latency, None)
