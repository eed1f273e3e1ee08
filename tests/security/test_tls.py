"""TLS and mutual TLS with real certificates: a client must trust the server's CA, and with a client CA
configured the server refuses clients without a certificate it signed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pgvector_grpc import Client
from pgvector_grpc.errors import PgvectorGrpcError

from tests.fix_server import ServerThread
from tests.security.certs import CertificateAuthority, Pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pem]:
    directory: Path = tmp_path_factory.mktemp("pki")
    trusted, stranger = CertificateAuthority(directory, "trusted-ca"), CertificateAuthority(directory, "stranger-ca")
    return {
        "ca": trusted.pem,
        "server": trusted.issue("server", server=True),
        "client": trusted.issue("client", server=False),
        "stranger_client": stranger.issue("client", server=False),
    }


@pytest.fixture(scope="module")
def tls_server(database: str, pki: dict[str, Pem]) -> Iterator[ServerThread]:
    running = ServerThread(database, tls_cert_file=pki["server"].cert, tls_key_file=pki["server"].key)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def mtls_server(database: str, pki: dict[str, Pem]) -> Iterator[ServerThread]:
    running = ServerThread(
        database,
        tls_cert_file=pki["server"].cert,
        tls_key_file=pki["server"].key,
        tls_client_ca_file=pki["ca"].cert,
    )
    yield running
    running.stop()


def list_names(address: str, credentials: grpc.ChannelCredentials | None) -> list[str]:
    with Client(address, timeout=5, credentials=credentials) as c:
        return [collection.name for collection in c.list_collections()]


def test_tls_client_trusting_the_ca_is_served(tls_server: ServerThread, pki: dict[str, Pem]) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_bytes())
    assert "documents" in list_names(tls_server.address, credentials)


def test_plaintext_client_gets_nothing_from_a_tls_server(tls_server: ServerThread) -> None:
    with pytest.raises(PgvectorGrpcError) as raised:
        list_names(tls_server.address, None)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


def test_mtls_serves_a_client_with_a_certificate_of_the_ca(mtls_server: ServerThread, pki: dict[str, Pem]) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].cert_bytes(),
        private_key=pki["client"].key_bytes(),
        certificate_chain=pki["client"].cert_bytes(),
    )
    assert "documents" in list_names(mtls_server.address, credentials)


@pytest.mark.parametrize("client_certificate", [None, "stranger_client"])
def test_mtls_refuses_a_client_without_a_certificate_of_the_ca(
    mtls_server: ServerThread, pki: dict[str, Pem], client_certificate: str | None
) -> None:
    identity = {}
    if client_certificate:
        identity = {
            "private_key": pki[client_certificate].key_bytes(),
            "certificate_chain": pki[client_certificate].cert_bytes(),
        }
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_bytes(), **identity)
    with pytest.raises(PgvectorGrpcError) as raised:
        list_names(mtls_server.address, credentials)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
