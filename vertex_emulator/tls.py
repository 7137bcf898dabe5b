"""A self-signed TLS certificate for the emulator's gRPC port, so clients with a custom root can be tested.

`self_signed(dir)` writes dir/cert.pem and dir/key.pem (SAN localhost, 127.0.0.1, ::1) once and
reuses them, so a restarted emulator keeps the certificate its clients already trust. Imported only
when a TLS option is given (`cryptography` comes with google-auth).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE, KEY_FILE = "cert.pem", "key.pem"
HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key."""

    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes]:
        """(certificate chain, private key) as PEM bytes; OSError names the file that cannot be read."""
        try:
            return self.cert.read_bytes(), self.key.read_bytes()
        except OSError as exc:
            raise OSError(f"cannot read the gRPC TLS certificate or key: {exc}") from exc


def self_signed(directory: Path, hosts: Sequence[str] = HOSTS, days: int = 365) -> TlsFiles:
    """The certificate in `directory`, generated (EC P-256, valid `days`) if it is not there yet."""
    files = TlsFiles(directory / CERT_FILE, directory / KEY_FILE)
    if files.cert.exists() and files.key.exists():
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Vertex AI emulator")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate a client clock slightly behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files.key.touch(mode=0o600)
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return files


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
