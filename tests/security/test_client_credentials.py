"""The callers' side of authentication against a real server that requires it: Client / AsyncClient
with an API key or a refreshing JWT over TLS and mTLS, the environment defaults, secrets kept out
of reprs and errors, and the CLI verbs (`health`, `migrate`) with the same options."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jwt
import pytest
from pgvector_grpc import AsyncClient, Client, Document
from pgvector_grpc._base import is_local_address
from pgvector_grpc.errors import (
    PermissionDeniedError,
    PlaintextCredentialWarning,
    UnauthenticatedError,
    UnavailableError,
)

from tests.fix_server import ServerThread
from tests.migration.chroma_stores import write_store
from tests.security.certs import CertificateAuthority, Pem
from tests.security.keys import bearer, create_key

JWT_SECRET = "a-shared-secret-of-at-least-32-characters"
VECTOR = [1.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pem]:
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"), "callers-ca")
    return {"ca": ca.pem, "server": ca.issue("server", server=True), "client": ca.issue("client", server=False)}


@pytest.fixture(scope="module")
def chroma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chroma")
    write_store(root / "store", {"chroma-notes": ("cosine", 3, 20)})
    return root


@pytest.fixture(scope="module")
def tls_server(database: str, pki: dict[str, Pem], chroma_dir: Path) -> Iterator[ServerThread]:
    running = ServerThread(
        database,
        tls_cert_file=pki["server"].cert,
        tls_key_file=pki["server"].key,
        require_auth=True,
        jwt_secret=JWT_SECRET,
        migrate_roots=(chroma_dir,),
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def mtls_server(database: str, pki: dict[str, Pem]) -> Iterator[ServerThread]:
    running = ServerThread(
        database,
        tls_cert_file=pki["server"].cert,
        tls_key_file=pki["server"].key,
        tls_client_ca_file=pki["ca"].cert,
        require_auth=True,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keys(tls_server: ServerThread, database: str, pki: dict[str, Pem]) -> dict[str, str]:
    made = {role: create_key(database, role) for role in ("admin", "writer", "reader")}
    with Client(tls_server.address, api_key=made["admin"], tls=pki["ca"].cert) as admin:
        admin.create_collection("notes", 3)
        admin.ingest("notes", [Document(f"n{i}", f"note {i}", {"i": i}, [1.0, i, 0.0]) for i in range(5)])
        admin.create_collection("drafts", 3)
    return made


def user_token(*, expires_in: int = 300, role: str = "authenticated") -> str:
    now = int(time.time())
    return jwt.encode({"sub": "acme", "role": role, "iat": now, "exp": now + expires_in}, JWT_SECRET, "HS256")


def test_an_api_key_over_tls_works_for_unary_calls_and_both_kinds_of_stream(
    tls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str]
) -> None:
    with Client(tls_server.address, api_key=keys["writer"], tls=pki["ca"].cert, timeout=30) as writer:
        summary = writer.ingest("drafts", [Document(f"d{i}", f"draft {i}", {"i": i}, [1.0, i, 0.0]) for i in range(5)])
        assert summary.inserted == 5
        assert [len(hits) for hits in writer.search_many("drafts", [VECTOR, VECTOR], top_k=2)] == [2, 2]
        assert len(list(writer.list("drafts", page_size=2))) == writer.count("drafts") == 5
    with Client(tls_server.address, tls=pki["ca"].cert_bytes()) as anonymous, pytest.raises(UnauthenticatedError):
        anonymous.count("notes")


async def test_the_asyncio_client_sends_the_key_on_streams_too(
    tls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str]
) -> None:
    async def documents() -> AsyncIterator[Document]:
        for i in range(3):
            yield Document(f"a{i}", "async", {"async": True}, [0.0, 1.0, i])

    async with AsyncClient(tls_server.address, api_key=keys["writer"], tls=str(pki["ca"].cert)) as writer:
        assert (await writer.ingest("notes", documents(), batch_size=2)).batches == 2
        assert len((await writer.search_many("notes", [[0.0, 1.0, 0.0]], top_k=3))[0]) == 3
        assert await writer.count("notes", {"async": True}) == 3
    async with AsyncClient(tls_server.address, api_key=keys["reader"], tls=pki["ca"].cert) as reader:
        with pytest.raises(PermissionDeniedError) as raised:
            await reader.ingest("notes", documents())
        assert raised.value.reason == "ROLE_NOT_ALLOWED"


def test_a_token_function_is_asked_before_every_call_so_it_can_refresh(
    tls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str]
) -> None:
    tokens = [user_token(), user_token(expires_in=-3600), user_token(), user_token()]
    asked: list[str] = []

    def current_token() -> str:
        asked.append(tokens[len(asked)])
        return asked[-1]

    with Client(tls_server.address, token=current_token, tls=pki["ca"].cert, retries=0) as user:
        assert user.count("notes") >= 5
        with pytest.raises(UnauthenticatedError) as raised:
            user.count("notes")
        assert raised.value.reason == "TOKEN_EXPIRED"
        assert user.count("notes") >= 5, "the next call carries the refreshed token"
        assert sum(1 for _ in user.list("notes", page_size=100)) >= 5
    assert asked == tokens


def test_mtls_needs_the_client_certificate_and_still_the_key(
    mtls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str]
) -> None:
    identity = {"tls": pki["ca"].cert, "client_cert": pki["client"].cert, "client_key": pki["client"].key}
    with Client(mtls_server.address, api_key=keys["reader"], **identity) as reader:
        assert reader.count("notes") >= 5
    as_bytes = {"client_cert": pki["client"].cert_bytes(), "client_key": pki["client"].key_bytes()}
    with Client(mtls_server.address, api_key=keys["reader"], tls=pki["ca"].cert_bytes(), **as_bytes) as reader:
        assert reader.count("notes") >= 5
    no_certificate = Client(mtls_server.address, api_key=keys["reader"], tls=pki["ca"].cert, retries=0)
    with no_certificate, pytest.raises(UnavailableError):
        no_certificate.count("notes")
    with Client(mtls_server.address, **identity) as no_key, pytest.raises(UnauthenticatedError):
        no_key.count("notes")


def test_tls_server_name_names_the_certificate_when_the_address_does_not(
    tls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str]
) -> None:
    options = {"api_key": keys["reader"], "tls": pki["ca"].cert, "retries": 0}
    with Client(tls_server.address, tls_server_name="localhost", **options) as reader:
        assert reader.count("notes") >= 5
    elsewhere = Client(tls_server.address, tls_server_name="elsewhere.example", **options)
    with elsewhere, pytest.raises(UnavailableError):
        elsewhere.count("notes")


def test_address_and_key_default_to_the_environment(
    tls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGVECTOR_GRPC_ADDRESS", tls_server.address)
    monkeypatch.setenv("PGVECTOR_GRPC_API_KEY", keys["reader"] + "\n")  # as read from a file
    with Client(tls=pki["ca"].cert) as reader:
        assert reader.address == tls_server.address
        assert reader.count("notes") >= 5
    with Client(tls=pki["ca"].cert, api_key=keys["writer"]) as writer:  # an argument wins
        writer.update_metadata("notes", {"seen": True}, ["n0"])
    monkeypatch.setenv("PGVECTOR_GRPC_API_KEY", "pgv_0000000000000000_notavalidsecret")
    with Client(tls=pki["ca"].cert, metadata=bearer(keys["reader"])) as explicit:  # so does a header
        assert explicit.count("notes") >= 5
    monkeypatch.setenv("PGVECTOR_GRPC_API_KEY", "")
    with Client(tls=pki["ca"].cert) as anonymous, pytest.raises(UnauthenticatedError):
        anonymous.count("notes")


def test_credentials_never_show_in_reprs_or_errors(
    tls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str]
) -> None:
    secret = keys["reader"].split("_", 2)[2]
    with Client(tls_server.address, api_key=keys["reader"], tls=pki["ca"].cert) as reader:
        assert secret not in repr(reader) and "auth='api_key'" in repr(reader) and "tls=True" in repr(reader)
    forged = keys["reader"][:-6] + "AAAAAA"
    forger = Client(tls_server.address, api_key=forged, tls=pki["ca"].cert)
    with forger, pytest.raises(UnauthenticatedError) as raised:
        forger.count("notes")
    assert forged.split("_", 2)[2] not in f"{raised.value} {raised.value!r} {raised.value.metadata}"
    with pytest.raises(ValueError, match="not shown") as refused:
        Client(tls_server.address, api_key=f"{keys['reader']} tail")
    assert secret not in str(refused.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"api_key": "k", "token": "t"}, "not both"),
        ({"api_key": "k", "metadata": [("authorization", "Bearer x")]}, "already has an authorization"),
        ({"client_cert": b"cert"}, "go together"),
        ({"tls_server_name": "localhost"}, "needs TLS"),
        ({"tls": "/no/such/ca.pem"}, "cannot read the root certificates file"),
    ],
)
def test_inconsistent_options_are_refused_up_front(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Client("127.0.0.1:1", **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.9.10:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("::1", True),
        ("unix:/tmp/pgvector-grpc.sock", True),
        ("dns:///localhost:50051", True),
        ("ipv4:127.0.0.1:50051", True),
        ("10.0.0.5:50051", False),
        ("search.example.com:443", False),
        ("[2001:db8::1]:50051", False),
        ("dns:///search.example.com:50051", False),
        ("localhost.example.com:50051", False),
    ],
)
def test_local_addresses_are_told_apart_from_remote_ones(address: str, local: bool) -> None:
    assert is_local_address(address) is local


def test_a_credential_sent_in_plaintext_to_another_host_is_warned_about(pki: dict[str, Pem]) -> None:
    with pytest.warns(PlaintextCredentialWarning, match="api_key will be sent to 10.0.0.5:50051 without TLS") as seen:
        Client("10.0.0.5:50051", api_key="pgv_k_s").close()
    assert seen[0].filename == __file__  # points at the caller's line
    with pytest.warns(PlaintextCredentialWarning, match="token"):
        Client("search.example.com:50051", token=lambda: "t").close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Client("10.0.0.5:50051", api_key="pgv_k_s", tls=pki["ca"].cert).close()
        Client("127.0.0.1:50051", api_key="pgv_k_s").close()
        Client("10.0.0.5:50051").close()


# -- the command line -----------------------------------------------------------------------------


def pgvector_grpc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PGVECTOR_GRPC_")} | env
    command = [str(Path(sys.executable).parent / "pgvector-grpc"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)


def test_health_reaches_a_tls_server_with_the_connection_options(
    tls_server: ServerThread, mtls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str]
) -> None:
    ca = str(pki["ca"].cert)
    served = pgvector_grpc("health", "--server", tls_server.address, "--tls-ca", ca, "--api-key", keys["reader"])
    assert (served.returncode, served.stdout.strip()) == (0, "SERVING"), served.stderr
    from_env = pgvector_grpc("health", "--tls-ca", ca, PGVECTOR_GRPC_ADDRESS=tls_server.address)
    assert from_env.returncode == 0, from_env.stderr
    plaintext = pgvector_grpc("health", "--address", tls_server.address)
    assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stderr
    client_certificate = ["--tls-cert", str(pki["client"].cert), "--tls-key", str(pki["client"].key)]
    mutual = pgvector_grpc("health", "--server", mtls_server.address, "--tls-ca", ca, *client_certificate)
    assert mutual.returncode == 0, mutual.stderr
    half = pgvector_grpc("health", "--server", mtls_server.address, "--tls-ca", ca, "--tls-cert", ca)
    assert half.returncode == 2 and "--tls-cert and --tls-key go together" in half.stderr


def test_the_command_line_warns_in_one_line_before_sending_a_key_in_plaintext() -> None:
    done = pgvector_grpc("health", "--server", "no-such-host.invalid:1", PGVECTOR_GRPC_API_KEY="pgv_k_s")
    assert done.returncode == 1
    warning, *rest = done.stderr.splitlines()
    assert warning.startswith("pgvector-grpc: warning: the api_key will be sent to no-such-host.invalid:1 without TLS")
    assert "PlaintextCredentialWarning" not in done.stderr and "pgv_k_s" not in done.stderr
    assert rest and "UNAVAILABLE" in rest[-1]


def test_migrate_dry_run_carries_the_credentials(
    tls_server: ServerThread, pki: dict[str, Pem], keys: dict[str, str], chroma_dir: Path
) -> None:
    source = ["--from-chroma", str(chroma_dir / "store"), "--collection", "chroma-notes", "--dry-run"]
    connection = ["--server", tls_server.address, "--tls-ca", str(pki["ca"].cert)]
    admin = pgvector_grpc("migrate", *source, *connection, PGVECTOR_GRPC_API_KEY=keys["admin"])
    assert admin.returncode == 0, admin.stderr
    assert "chroma-notes: 20 documents, dimension 3" in admin.stdout

    reader = pgvector_grpc("migrate", *source, *connection, "--api-key", keys["reader"])
    assert reader.returncode == 2 and "PERMISSION_DENIED" in reader.stderr
    anonymous = pgvector_grpc("migrate", *source, *connection)
    assert anonymous.returncode == 2 and "UNAUTHENTICATED" in anonymous.stderr
    local = pgvector_grpc("migrate", *source, "--client-side", *connection, "--api-key", keys["reader"])
    assert local.returncode == 0, local.stderr
    for run in (admin, reader, anonymous, local):
        assert keys["admin"] not in run.stdout + run.stderr and keys["reader"] not in run.stdout + run.stderr


async def test_the_asyncio_client_warns_alike() -> None:
    with pytest.warns(PlaintextCredentialWarning, match="api_key will be sent to search.example.com:50051"):
        client = AsyncClient("search.example.com:50051", api_key="pgv_k_s")
    await client.close()
