"""The JWTs service-account keys sign (google.auth.jwt's RS256 format): decoding, signature and lifetime.

Used for both kinds google-auth sends: the assertion of the JWT-bearer grant posted to the token
endpoint, and the self-signed JWT the GAPIC clients put straight into `Authorization` (AIP-4111).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.auth import crypt

#: Google refuses assertions meant to live longer than an hour ("a short-lived token (60 minutes)").
MAX_LIFETIME_SECONDS = 3600
#: Clock skew tolerated between the signer and the emulator.
CLOCK_SKEW_SECONDS = 300


class MalformedJwt(ValueError):
    """Not a compact-serialised JWT with JSON header and claims."""


@dataclass(frozen=True)
class Jwt:
    header: dict[str, Any]
    claims: dict[str, Any]
    signed: bytes  # "<header>.<claims>" as sent, the bytes the signature covers
    signature: bytes

    @property
    def key_id(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode(token: str) -> Jwt:
    """Split and decode a JWT without verifying it; raises MalformedJwt."""
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJwt(f"a JWT has 3 dot-separated parts, this one has {len(parts)}")
    try:
        header, claims = (json.loads(_b64decode(part)) for part in parts[:2])
        signature = _b64decode(parts[2])
    except (binascii.Error, ValueError) as exc:
        raise MalformedJwt(f"the JWT's parts are not base64url JSON: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedJwt("the JWT's header and claims must be JSON objects")
    return Jwt(header, claims, f"{parts[0]}.{parts[1]}".encode(), signature)


def signed_by(jwt: Jwt, public_keys: dict[str, str]) -> bool:
    """Whether an RS256 signature verifies against the key named by `kid` (or any key, without one).

    `public_keys` maps key ids to PEM public keys or X.509 certificates, as Google publishes them.
    """
    if jwt.header.get("alg") != "RS256":
        return False
    candidates: Iterable[str] = (
        [public_keys[jwt.key_id]] if jwt.key_id in public_keys else [] if jwt.key_id else public_keys.values()
    )
    return any(crypt.RSAVerifier.from_string(pem).verify(jwt.signed, jwt.signature) for pem in candidates)


def lifetime_problem(claims: dict[str, Any], now: float) -> str | None:
    """Why `iat`/`exp` make the JWT unusable at `now`, or None when they are fine."""
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        return "iat and exp must be numbers"
    if exp - iat > MAX_LIFETIME_SECONDS:
        return f"exp - iat is {exp - iat:.0f}s, more than {MAX_LIFETIME_SECONDS}s"
    if iat > now + CLOCK_SKEW_SECONDS:
        return "iat is in the future"
    if exp <= now - CLOCK_SKEW_SECONDS:
        return "exp has passed"
    return None


def check_key(pem: str) -> None:
    """Raise ValueError unless `pem` is an RSA public key or X.509 certificate in PEM."""
    crypt.RSAVerifier.from_string(pem)
