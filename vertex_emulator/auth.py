"""Credentials as Google checks them: registered service accounts, the tokens issued to them, and who called.

`TokenAuthority` is shared by every surface of the emulator (REST, gRPC, the GCS gate, the token
endpoint). `verify(authorization)` turns an `Authorization` header into the caller's principal
(a service-account email, or "anonymous" while auth is not required) or raises `Unauthenticated`.
It accepts the two bearer tokens google-auth sends: an opaque access token issued here (the JWT-bearer
grant or IAM `generateAccessToken`) and a self-signed JWT (what GAPIC clients send for service-account
keys, AIP-4111). Only public keys and SHA-256 digests of tokens are kept: no token, key or secret is
stored, logged or returned.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vertex_emulator import assertions
from vertex_emulator.exceptions import (
    InvalidArgument,
    NotFound,
    OAuthError,
    PermissionDenied,
    Unauthenticated,
)
from vertex_emulator.store import Store

ANONYMOUS = "anonymous"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
VERTEX_SCOPES = frozenset({CLOUD_PLATFORM})
STORAGE_SCOPES = frozenset(
    {CLOUD_PLATFORM, f"{CLOUD_PLATFORM}.read-only"}
    | {f"https://www.googleapis.com/auth/devstorage.{a}" for a in ("full_control", "read_write", "read_only")}
)
#: google-auth sources refresh with the IAM scope before impersonating (impersonated_credentials.py).
IAM_SCOPES = frozenset({CLOUD_PLATFORM, "https://www.googleapis.com/auth/iam"})
#: The audiences Google's token endpoint accepts; google-auth always signs the first, whatever the
#: key's token_uri (google/oauth2/service_account.py, `_make_authorization_grant_assertion`).
TOKEN_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
)
TOKEN_LIFETIME_SECONDS = 3600
# Google's own words (googleapis.com 401 envelopes and oauth2.googleapis.com error descriptions).
MISSING = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
INVALID = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
INSUFFICIENT_SCOPES = "Request had insufficient authentication scopes."
DENIED_GET_ACCESS_TOKEN = (
    "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
)
SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)
_ACCOUNTS, _TOKENS = "serviceAccounts", "accessTokens"  # store kinds: public keys, token digests
_CALL_LOG_SIZE = 10_000
_IAM_SERVICE = "iamcredentials.googleapis.com"


@dataclass(frozen=True)
class Grant:
    """What a bearer token stands for."""

    principal: str
    scopes: frozenset[str]
    audience: str | None = None  # self-signed JWTs may name the API instead of scopes


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _rfc3339(seconds: float) -> str:
    # google-auth parses expireTime with exactly "%Y-%m-%dT%H:%M:%SZ" (impersonated_credentials.py).
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class TokenAuthority:
    def __init__(self, store: Store, required: bool = False, clock: Callable[[], float] = time.time):
        self.store = store
        self.required = required
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: collections.deque[dict[str, str]] = collections.deque(maxlen=_CALL_LOG_SIZE)
        self._principals: collections.Counter[str] = collections.Counter()
        self._delegations: list[dict[str, Any]] = []

    # -- checking callers -------------------------------------------------------------------
    def verify(self, authorization: str | None, scopes: frozenset[str] = VERTEX_SCOPES) -> str:
        """The principal behind an `Authorization` header value, for an API needing one of `scopes`.

        While auth is not required, any caller gets through: a valid token still names its principal,
        anything else is "anonymous". Raises Unauthenticated (401) or PermissionDenied (403, scopes).
        """
        try:
            grant = self._grant(authorization)
            if grant.audience is None and not grant.scopes & scopes:
                raise PermissionDenied(INSUFFICIENT_SCOPES, "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
        except (Unauthenticated, PermissionDenied):
            if self.required:
                raise
            return ANONYMOUS
        return grant.principal

    def _grant(self, authorization: str | None) -> Grant:
        if not authorization or not authorization.strip():
            raise Unauthenticated(MISSING, "CREDENTIALS_MISSING")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(INVALID, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
        return self._self_signed(token) if token.count(".") == 2 else self._issued(token)

    def _issued(self, token: str) -> Grant:
        record = self.store.get(_TOKENS, _digest(token))
        if record is None:
            raise Unauthenticated(INVALID, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
        issued = record["resource"]
        if issued["expireTime"] <= self._clock():
            raise Unauthenticated(INVALID, "ACCESS_TOKEN_EXPIRED")
        return Grant(issued["principal"], frozenset(issued["scopes"]))

    def _self_signed(self, token: str) -> Grant:
        try:
            jwt = assertions.decode(token)
        except assertions.MalformedJwt as exc:
            raise Unauthenticated(INVALID, "ACCESS_TOKEN_TYPE_UNSUPPORTED") from exc
        email = jwt.claims.get("iss")
        keys = self._keys(email)
        if not keys or jwt.claims.get("sub", email) != email or not assertions.signed_by(jwt, keys):
            raise Unauthenticated(INVALID, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
        if assertions.lifetime_problem(jwt.claims, self._clock()):
            raise Unauthenticated(INVALID, "ACCESS_TOKEN_EXPIRED")
        scopes = frozenset(str(jwt.claims.get("scope", "")).split())
        audience = jwt.claims.get("aud")
        # A grant assertion (aud: the token endpoint) is not an access token; nor is a JWT naming nothing.
        if (not scopes and not audience) or audience in TOKEN_AUDIENCES:
            raise Unauthenticated(INVALID, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
        return Grant(str(email), scopes, str(audience) if audience else None)

    # -- the token endpoint -----------------------------------------------------------------
    def exchange(self, form: Mapping[str, str], own_uri: str) -> dict[str, Any]:
        """Answer a token-endpoint request (the JWT-bearer grant); raises OAuthError like Google's."""
        grant_type = form.get("grant_type", "")
        if grant_type != JWT_BEARER:
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        if not form.get("assertion"):
            raise OAuthError("invalid_request", "Missing required parameter: assertion")
        try:
            jwt = assertions.decode(form["assertion"])
        except assertions.MalformedJwt as exc:
            raise OAuthError("invalid_grant", f"Invalid JWT: {exc}") from exc
        email = jwt.claims.get("iss")
        keys = self._keys(email)
        if not keys:
            raise OAuthError("invalid_grant", "Invalid grant: account not found")
        if not assertions.signed_by(jwt, keys):
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        if jwt.claims.get("aud") not in (*TOKEN_AUDIENCES, own_uri):
            raise OAuthError(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is {TOKEN_AUDIENCES[0]}",
            )
        if assertions.lifetime_problem(jwt.claims, self._clock()):
            raise OAuthError("invalid_grant", SHORT_LIVED)
        if jwt.claims.get("sub", email) != email:  # domain-wide delegation: not emulated
            raise OAuthError(
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not "
                "authorized for any of the scopes requested.",
            )
        scopes = str(jwt.claims.get("scope", "")).split()
        if not scopes:
            raise OAuthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token, _ = self._issue(str(email), scopes, TOKEN_LIFETIME_SECONDS)
        return {"access_token": token, "expires_in": TOKEN_LIFETIME_SECONDS - 1, "token_type": "Bearer"}

    # -- IAM Credentials: generateAccessToken ------------------------------------------------
    def impersonate(self, caller: str, name: str, body: Mapping[str, Any]) -> dict[str, str]:
        """`caller` (already verified) asks for a token of the account `name`
        (projects/-/serviceAccounts/EMAIL), through the chain of `delegates` in `body`."""
        if caller == ANONYMOUS:
            raise Unauthenticated(MISSING, "CREDENTIALS_MISSING", _IAM_SERVICE)
        target = name.rsplit("/", 1)[-1]
        delegates = [str(d).rsplit("/", 1)[-1] for d in body.get("delegates") or []]
        scopes = [str(s) for s in body.get("scope") or []]
        if not scopes:
            raise InvalidArgument(f"generateAccessToken for {target}: scope must name at least one scope")
        lifetime = _lifetime(body.get("lifetime"), target)
        chain = [caller, *delegates, target]
        for granter, account in itertools.pairwise(chain):
            record = self.store.get(_ACCOUNTS, account)
            if record is None:
                raise NotFound(f"Not found; Gaia id not found for email {account}")
            creators = record["resource"].get("tokenCreators")
            if creators is not None and granter not in creators:
                raise PermissionDenied(DENIED_GET_ACCESS_TOKEN, "IAM_PERMISSION_DENIED", _IAM_SERVICE)
        token, expiry = self._issue(target, scopes, lifetime)
        with self._lock:
            self._delegations.append({"caller": caller, "target": target, "delegates": delegates})
        return {"accessToken": token, "expireTime": _rfc3339(expiry)}

    def _issue(self, principal: str, scopes: list[str], lifetime: float) -> tuple[str, float]:
        token = "ya29.emulator-" + secrets.token_urlsafe(48)  # opaque, never a JWT (no dots)
        expiry = self._clock() + lifetime
        issued = {"principal": principal, "scopes": sorted(scopes), "expireTime": expiry}
        self.store.put(_TOKENS, _digest(token), {"resource": issued, "internal": {}})
        return token, expiry

    # -- the control plane ------------------------------------------------------------------
    def register(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Register (or add a key to) a service account: {email, publicKeyPem | x509Pem, keyId,
        tokenCreators (optional: the principals allowed to impersonate it; default anyone)}."""
        email, key_id = spec.get("email"), spec.get("keyId")
        pem = spec.get("publicKeyPem") or spec.get("x509Pem")
        if not isinstance(email, str) or "@" not in email:
            raise InvalidArgument(f"serviceAccounts: email must be an email address, got {email!r}")
        if not isinstance(key_id, str) or not key_id:
            raise InvalidArgument(f"serviceAccounts {email}: keyId (the key's private_key_id) is required")
        if not isinstance(pem, str):
            raise InvalidArgument(f"serviceAccounts {email}: publicKeyPem or x509Pem is required")
        try:
            assertions.check_key(pem)
        except ValueError as exc:
            raise InvalidArgument(f"serviceAccounts {email}: not an RSA public key in PEM: {exc}") from exc
        unknown = set(spec) - {"email", "keyId", "publicKeyPem", "x509Pem", "tokenCreators"}
        if unknown:
            raise InvalidArgument(f"serviceAccounts {email}: unknown field(s) {sorted(unknown)}")
        with self.store.lock:
            record = self.store.get(_ACCOUNTS, email) or {"resource": {"email": email, "keys": {}}}
            account = record["resource"]
            account["keys"][key_id] = pem
            if "tokenCreators" in spec:
                account["tokenCreators"] = [str(p) for p in spec["tokenCreators"] or []]
            self.store.put(_ACCOUNTS, email, {"resource": account, "internal": {}})
        return _public(account)

    def accounts(self) -> list[dict[str, Any]]:
        return [_public(record["resource"]) for record in self.store.scan(_ACCOUNTS)]

    def expire(self, principal: str | None = None) -> int:
        """Expire every issued token (of `principal`) now; self-signed JWTs carry their own expiry."""
        now, expired = self._clock(), 0
        with self.store.lock:
            for name in list(self.store.names(_TOKENS)):
                record = self.store.get(_TOKENS, name)
                if record is None:
                    continue
                issued = record["resource"]
                if issued["expireTime"] > now and principal in (None, issued["principal"]):
                    issued["expireTime"] = now
                    self.store.put(_TOKENS, name, record)
                    expired += 1
        return expired

    def record(self, surface: str, method: str, path: str, principal: str) -> None:
        """Log one call: which surface (rest, grpc, gcs, iam), what, and who; never the credential."""
        with self._lock:
            self._calls.append({"surface": surface, "method": method, "path": path, "principal": principal})
            self._principals[principal] += 1

    def calls(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._calls)

    def principals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._principals)

    def describe(self) -> dict[str, Any]:
        now = self._clock()
        active = sum(1 for r in self.store.scan(_TOKENS) if r["resource"]["expireTime"] > now)
        with self._lock:
            delegations = list(self._delegations)
        return {
            "required": self.required,
            "serviceAccounts": [account["email"] for account in self.accounts()],
            "activeTokens": active,
            "principals": self.principals(),
            "delegations": delegations,
        }

    def clear_log(self) -> None:
        with self._lock:
            self._calls.clear()
            self._principals.clear()
            self._delegations.clear()

    def _keys(self, email: object) -> dict[str, str]:
        record = self.store.get(_ACCOUNTS, email) if isinstance(email, str) else None
        return dict(record["resource"]["keys"]) if record else {}


def _public(account: Mapping[str, Any]) -> dict[str, Any]:
    """An account as the control plane shows it: key ids, never key material."""
    shown: dict[str, Any] = {"email": account["email"], "keyIds": sorted(account["keys"])}
    if account.get("tokenCreators") is not None:
        shown["tokenCreators"] = account["tokenCreators"]
    return shown


def _lifetime(value: object, target: str) -> float:
    """A google.protobuf.Duration in JSON ("3600s"); IAM allows up to one hour by default."""
    if value in (None, ""):
        return TOKEN_LIFETIME_SECONDS
    text = str(value)
    try:
        seconds = float(text.removesuffix("s"))
    except ValueError as exc:
        raise InvalidArgument(
            f"generateAccessToken for {target}: lifetime {text!r} is not a duration"
        ) from exc
    if not text.endswith("s") or not 0 < seconds <= TOKEN_LIFETIME_SECONDS:
        raise InvalidArgument(
            f"generateAccessToken for {target}: lifetime {text!r} must be between 1s and "
            f"{TOKEN_LIFETIME_SECONDS}s"
        )
    return seconds
