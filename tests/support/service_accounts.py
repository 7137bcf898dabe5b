"""Service-account JSON keys made in the test, registered with the Vertex emulator (its `/token` endpoint).

`create_key(url)` generates an RSA key with `cryptography`, writes the JSON key Google's console would
download (type service_account, private_key_id, client_email, token_uri = the emulator's `/token`),
registers the public half through `POST /_emulator/serviceAccounts`, and returns it. The key then
goes through google-auth unchanged: JWT signing, the token exchange, self-signed JWTs.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from scripts.emulators import emulator_control

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class ServiceAccountKey:
    """A service-account JSON key (`info`, as the key file holds it) and, if written, its file."""

    info: dict[str, str]
    path: Path | None = None

    @property
    def email(self) -> str:
        return self.info["client_email"]

    def credentials(self, scopes: Sequence[str] = (CLOUD_PLATFORM,)) -> service_account.Credentials:
        return service_account.Credentials.from_service_account_info(self.info, scopes=list(scopes))


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_info(
    emulator_url: str, email: str, project: str, key: rsa.RSAPrivateKey | None = None
) -> dict[str, str]:
    """A service-account JSON key for `email` whose token_uri is the emulator's token endpoint."""
    key = key or _private_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": email,
        "client_id": str(uuid.uuid4().int)[:21],
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": f"{emulator_url}/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }


def public_key_pem(info: dict[str, str]) -> str:
    """The public key of a JSON key's private key, in PEM (what Google publishes for the key id)."""
    private = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return _public_pem(private)


def register(emulator_url: str, info: dict[str, str], token_creators: Sequence[str] | None = None) -> Any:
    """Tell the emulator the account and its public key (never the private key)."""
    spec: dict[str, Any] = {
        "email": info["client_email"],
        "keyId": info["private_key_id"],
        "publicKeyPem": public_key_pem(info),
    }
    if token_creators is not None:
        spec["tokenCreators"] = list(token_creators)
    return emulator_control(emulator_url, "serviceAccounts", spec)


def create_key(
    emulator_url: str,
    *,
    name: str = "aria-test",
    project: str = "aria-local",
    directory: Path | None = None,
    token_creators: Sequence[str] | None = None,
) -> ServiceAccountKey:
    """A fresh, registered service account `<name>-<random>@<project>.iam.gserviceaccount.com`;
    its JSON key is also written to `directory` when given (for `key_path` connections)."""
    email = f"{name}-{uuid.uuid4().hex[:8]}@{project}.iam.gserviceaccount.com"
    info = key_info(emulator_url, email, project)
    register(emulator_url, info, token_creators)
    path = None
    if directory is not None:
        path = directory / f"{email.split('@')[0]}.json"
        path.write_text(json.dumps(info))
    return ServiceAccountKey(info, path)
