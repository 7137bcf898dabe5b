"""The test-only control plane under /_emulator/ (never subject to injected faults).

GET  /_emulator/health                      liveness, settings and where state is kept
POST /_emulator/reset                       forget every resource, fault and operation rule, service
                                            account and token
GET  /_emulator/counts                      resources by kind, API calls by route, calls by principal
GET  /_emulator/faults                      the fault rules
POST /_emulator/faults                      add a rule {status, rate, method, path, latencyMs, count,
                                            when: before|after, mode: error|timeout|drop, seed,
                                            service: vertex|gcs (the GCS gate's calls)}
DELETE /_emulator/faults                    remove all rules
POST /_emulator/jobs/{job name}:{verb}      succeed | fail {"message"} | pause | resume | degrade
POST /_emulator/operations/{name}:{verb}    hold | release | fail {"code", "message"} (Deploy/UndeployModel)
POST /_emulator/operations:failNext         fail the next {count} operations of {type} (matching {path})
                                            as they are created, with {code, message}
POST /_emulator/operations:holdNext         create the next {count} operations of {type} held
GET|DELETE /_emulator/operations:next       the failNext/holdNext rules; remove them all
GET  /_emulator/stats                       {"requests": N, "by_method": {route: N}}
POST /_emulator/models/{model name}:{verb}  degrade (answers as if untuned) | fail (predictions 500) | restore
GET  /_emulator/inspect/{resource name}     the raw record (wire dict and internal state)
GET|PATCH /_emulator/settings               clock settings (secondsPerStep, phaseSeconds, ...)
GET|PATCH /_emulator/auth                   {"required": bool} (POST too); accounts, principals, delegations
POST /_emulator/auth:expireTokens           expire issued tokens now ({"principal"} or all)
GET  /_emulator/auth/calls                  each served call's surface, method, path and principal
GET|POST /_emulator/serviceAccounts         register {email, publicKeyPem | x509Pem, keyId, tokenCreators}
"""

from __future__ import annotations

import collections
import re
import threading
from typing import Any

from vertex_emulator.auth import TokenAuthority
from vertex_emulator.backend import Backend
from vertex_emulator.exceptions import InvalidArgument, NotFound
from vertex_emulator.faults import Faults

PREFIX = "/_emulator/"
_JOB_VERB = re.compile(
    r"^jobs/(?P<name>.+/(?:pipelineJobs|tuningJobs)/[^/:]+):(?P<verb>succeed|fail|pause|resume|degrade)$"
)
_OPERATION_VERB = re.compile(
    r"^operations/(?P<name>projects/.+/operations/[^/:]+):(?P<verb>hold|release|fail)$"
)
_OPERATIONS_NEXT = re.compile(r"^operations:(?P<action>fail|hold)Next$")
_MODEL_VERB = re.compile(r"^models/(?P<name>projects/.+/models/[^/:]+):(?P<verb>degrade|fail|restore)$")
_SETTINGS = {
    "secondsPerStep": "seconds_per_step",
    "phaseSeconds": "phase_seconds",
    "pendingSeconds": "pending_seconds",
    "operationSeconds": "operation_seconds",
}


class RequestCounter:
    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def add(self, label: str) -> None:
        with self._lock:
            self._counts[label] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


class ControlPlane:
    def __init__(
        self, backend: Backend, faults: Faults, requests: RequestCounter, authority: TokenAuthority
    ) -> None:
        self.backend = backend
        self.faults = faults
        self.requests = requests
        self.authority = authority

    def handle(self, method: str, path: str, body: Any) -> dict[str, Any]:
        route = path[len(PREFIX) :]
        if route == "health" and method == "GET":
            return {
                "status": "ok",
                "store": self.backend.store.describe(),
                "settings": self.backend.settings.public(),
            }
        if route == "reset" and method == "POST":
            self.backend.reset()
            self.backend.operations.clear_next()
            self.faults.clear()
            self.requests.clear()
            self.authority.clear_log()
            return {"reset": True}
        if route == "counts" and method == "GET":
            return {
                **self.backend.counts(),
                "requests": self.requests.snapshot(),
                "principals": self.authority.principals(),
            }
        if route.startswith(("auth", "serviceAccounts")):
            return self._auth(method, route, body)
        if route == "faults":
            if method == "GET":
                return {"faults": self.faults.rules()}
            if method == "POST":
                return self.faults.add(_object(body)).to_json()
            if method == "DELETE":
                self.faults.clear()
                return {"faults": []}
        if route == "settings":
            if method == "PATCH":
                for key, value in _object(body).items():
                    if key not in _SETTINGS:
                        raise InvalidArgument(f"unknown setting {key!r}; settable: {sorted(_SETTINGS)}")
                    setattr(self.backend.settings, _SETTINGS[key], float(value))
            if method in ("GET", "PATCH"):
                return self.backend.settings.public()
        job = _JOB_VERB.match(route)
        if job and method == "POST":
            message = str(_object(body).get("message", "")) if body else ""
            return self.backend.force(job["name"], job["verb"], message)
        operation = _OPERATION_VERB.match(route)
        if operation and method == "POST":
            return self.backend.operations.steer(operation["name"], operation["verb"], _object(body))
        upcoming = _OPERATIONS_NEXT.match(route)
        if upcoming and method == "POST":
            return self.backend.operations.add_next(upcoming["action"], _object(body))
        if route == "operations:next" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.backend.operations.clear_next()
            return {"rules": self.backend.operations.next_rules()}
        model = _MODEL_VERB.match(route)
        if model and method == "POST":
            if model["verb"] == "fail":
                return self.backend.models.set_failing(model["name"], True)
            if model["verb"] == "restore":
                self.backend.models.set_failing(model["name"], False)
            return self.backend.models.set_degraded(model["name"], model["verb"] == "degrade")
        if route == "stats" and method == "GET":
            by_method = self.requests.snapshot()
            return {"requests": sum(by_method.values()), "by_method": by_method}
        if route.startswith("inspect/") and method == "GET":
            return self.backend.inspect(route[len("inspect/") :])
        raise NotFound(f"no control-plane route {method} {path}")

    def _auth(self, method: str, route: str, body: Any) -> dict[str, Any]:
        """Auth verbs: they show principals and key ids, never a token or key material."""
        if route == "auth" and method in ("POST", "PATCH"):
            required = _object(body).get("required")
            if not isinstance(required, bool):
                raise InvalidArgument(f'auth: expected {{"required": true|false}}, got {body!r}')
            self.authority.required = required
        if route == "auth" and method in ("GET", "POST", "PATCH"):
            return self.authority.describe()
        if route == "auth:expireTokens" and method == "POST":
            return {"expired": self.authority.expire(_object(body).get("principal"))}
        if route == "auth/calls" and method == "GET":
            return {"calls": self.authority.calls()}
        if route == "serviceAccounts" and method == "POST":
            return self.authority.register(_object(body))
        if route == "serviceAccounts" and method == "GET":
            return {"serviceAccounts": self.authority.accounts()}
        raise NotFound(f"no control-plane route {method} {PREFIX}{route}")


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("expected a JSON object")
    return body
