"""gRPC over TLS: a self-signed certificate the emulator generates, trusted by clients that are told to."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1

from scripts.emulators import emulator_control
from scripts.processes import Server, free_port
from tests.vertex_emulator.conftest import GRPC_TRANSPORTS, GrpcApiFactory
from vertex_emulator import cli, tls


def test_clients_that_trust_the_certificate_connect_and_others_do_not(
    vertex_emulator_factory: Callable[..., Server],
    grpc_api_factory: GrpcApiFactory,
    tmp_path: Path,
    gpu_parent: str,
) -> None:
    port, certs = free_port(), tmp_path / "certs"
    emulator = vertex_emulator_factory(
        extra_args=("--grpc-port", str(port), "--grpc-tls-self-signed", str(certs))
    )
    trusted = grpc.ssl_channel_credentials(root_certificates=(certs / tls.CERT_FILE).read_bytes())

    for transport in GRPC_TRANSPORTS:
        for host in ("localhost", "127.0.0.1"):  # the certificate names both
            api = grpc_api_factory(transport, f"{host}:{port}", trusted)
            created = api.result(
                api.endpoints.create_endpoint(
                    parent=gpu_parent, endpoint=aiplatform_v1.Endpoint(display_name=f"{transport}-{host}")
                )
            )
            assert api.endpoints.get_endpoint(name=created.name).name == created.name
    assert emulator_control(emulator.url, "counts")["endpoints"] == 4

    # As a hook builds it: host and TLS credentials given to the transport, call credentials on top.
    transport_class = aiplatform_v1.EndpointServiceClient.get_transport_class("grpc")
    client = aiplatform_v1.EndpointServiceClient(
        transport=transport_class(
            host=f"localhost:{port}", credentials=AnonymousCredentials(), ssl_channel_credentials=trusted
        )
    )
    assert len(client.list_endpoints(parent=gpu_parent).endpoints) == 4

    untrusted = grpc_api_factory("grpc", f"localhost:{port}", grpc.ssl_channel_credentials())
    with pytest.raises(exceptions.ServiceUnavailable):
        untrusted.endpoints.list_endpoints(parent=gpu_parent, retry=None, timeout=20)
    plain_text = grpc_api_factory("grpc", f"127.0.0.1:{port}")
    with pytest.raises(exceptions.ServiceUnavailable):
        plain_text.endpoints.list_endpoints(parent=gpu_parent, retry=None, timeout=20)


def test_the_self_signed_certificate_names_local_hosts_and_is_kept(tmp_path: Path) -> None:
    files = tls.self_signed(tmp_path / "certs")
    certificate = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert files.key.stat().st_mode & 0o777 == 0o600
    before = files.cert.read_bytes()
    assert tls.self_signed(tmp_path / "certs").cert.read_bytes() == before  # a restart keeps trust


def _parse(*argv: str) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser, parser.parse_args(list(argv))


def test_tls_options_give_the_files_to_serve(tmp_path: Path) -> None:
    parser, args = _parse("--grpc-port", "1", "--grpc-tls-cert", "c.pem", "--grpc-tls-key", "k.pem")
    assert cli._grpc_tls(parser, args) == tls.TlsFiles(Path("c.pem"), Path("k.pem"))
    parser, args = _parse("--grpc-port", "1", "--grpc-tls-self-signed", str(tmp_path))
    assert cli._grpc_tls(parser, args) == tls.TlsFiles(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert (tmp_path / "cert.pem").exists()
    parser, args = _parse("--grpc-port", "1")
    assert cli._grpc_tls(parser, args) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--grpc-port", "1", "--grpc-tls-cert", "c.pem"), "go together"),
        (("--grpc-port", "1", "--grpc-tls-key", "k.pem"), "go together"),
        (
            (
                "--grpc-port",
                "1",
                "--grpc-tls-cert",
                "c",
                "--grpc-tls-key",
                "k",
                "--grpc-tls-self-signed",
                "d",
            ),
            "one or the other",
        ),
        (("--grpc-tls-self-signed", "d"), "need --grpc-port"),
    ],
)
def test_inconsistent_tls_options_are_a_usage_error(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(list(argv))
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
