"""API keys against a real server: open until the first key exists, then every call authenticates;
roles per RPC, collection grants, revocation, health open, reflection closed, nothing secret logged."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pgvector_grpc import Client, Document
from pgvector_grpc.errors import PermissionDeniedError, UnauthenticatedError

from tests.fix_server import ServerThread
from tests.security.keys import bearer, create_key, revoke

CACHE_SECONDS = 0.2
DIM = 4


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[ServerThread]:
    running = ServerThread(database, api_key_cache_seconds=CACHE_SECONDS)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keys(server: ServerThread, database: str) -> dict[str, str]:
    """Collections a and b made while the server is still open, then the keys that close it."""
    with Client(server.address, timeout=30) as open_client:
        for name in ("a", "b"):
            open_client.create_collection(name, DIM)
            open_client.ingest(name, [Document(f"{name}-1", "text", {"n": 1}, [1.0, 0.0, 0.0, 0.0])])
    made = {
        "admin": create_key(database, "admin"),
        "writer_a": create_key(database, "writer", collections=["a"]),
        "reader": create_key(database, "reader"),
        "reader_a": create_key(database, "reader", collections=["a"]),
    }
    time.sleep(CACHE_SECONDS * 2)
    return made


def client(server: ServerThread, token: str | None = None) -> Client:
    return Client(server.address, timeout=30, metadata=bearer(token) if token else ())


def test_no_credential_is_unauthenticated_once_a_key_exists(server: ServerThread, keys: dict[str, str]) -> None:
    with client(server) as anonymous, pytest.raises(UnauthenticatedError) as raised:
        anonymous.count("a")
    assert raised.value.reason == "CREDENTIALS_MISSING"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([("authorization", "Bearer pgv_0000000000000000_nosuchsecret")], "API_KEY_INVALID"),
        ([("authorization", "Bearer pgv_garbage")], "API_KEY_INVALID"),
        ([("authorization", "Bearer not-a-key-at-all")], "CREDENTIALS_INVALID"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "CREDENTIALS_MISSING"),
    ],
)
def test_bad_credentials_are_unauthenticated(
    server: ServerThread, keys: dict[str, str], metadata: list[tuple[str, str]], reason: str
) -> None:
    with Client(server.address, timeout=30, metadata=metadata) as c, pytest.raises(UnauthenticatedError) as raised:
        c.list_collections()
    assert raised.value.reason == reason


def test_undecodable_bytes_without_a_credential_are_unauthenticated(server: ServerThread, keys: dict[str, str]) -> None:
    """Authentication comes first: a caller without a key learns nothing about how its bytes parse."""
    garbage = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
    with grpc.insecure_channel(server.address) as channel:
        search = channel.unary_unary(
            "/pgvector_grpc.v1.DocumentService/Search", request_serializer=None, response_deserializer=None
        )
        with pytest.raises(grpc.RpcError) as refused:
            search(garbage, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as undecodable:
            search(garbage, timeout=30, metadata=bearer(keys["reader"]))
        assert undecodable.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_known_key_id_with_wrong_secret_is_unauthenticated(server: ServerThread, keys: dict[str, str]) -> None:
    forged = keys["admin"].rsplit("_", 1)[0] + "_" + "A" * 43
    with client(server, forged) as c, pytest.raises(UnauthenticatedError) as raised:
        c.count("a")
    assert raised.value.reason == "API_KEY_INVALID"


def test_reader_reads_but_may_not_write(server: ServerThread, keys: dict[str, str]) -> None:
    with client(server, keys["reader"]) as reader:
        assert reader.count("a") == 1
        assert len(reader.search("b", [1.0, 0.0, 0.0, 0.0], top_k=1)) == 1
        assert [c.name for c in reader.list_collections()] == ["a", "b", "documents"]
        with pytest.raises(PermissionDeniedError) as raised:
            reader.ingest("a", [Document("x", "text", {}, [0.0, 1.0, 0.0, 0.0])])
        assert raised.value.reason == "ROLE_NOT_ALLOWED"
        assert raised.value.metadata == {"required_role": "writer", "role": "reader"}
        with pytest.raises(PermissionDeniedError):
            reader.delete("a", ids=["a-1"])
    with client(server, keys["admin"]) as admin:
        assert admin.count("a") == 1


def test_writer_may_not_manage_collections(server: ServerThread, keys: dict[str, str]) -> None:
    with client(server, keys["writer_a"]) as writer:
        with pytest.raises(PermissionDeniedError) as raised:
            writer.create_collection("c", DIM)
        assert raised.value.reason == "ROLE_NOT_ALLOWED"
        with pytest.raises(PermissionDeniedError):
            writer.delete_collection("a")
    with client(server, keys["admin"]) as admin:
        admin.create_collection("c", DIM)
        admin.delete_collection("c")


def test_collection_outside_the_grant_is_denied(server: ServerThread, keys: dict[str, str]) -> None:
    with client(server, keys["reader_a"]) as reader_a:
        assert reader_a.count("a") == 1
        with pytest.raises(PermissionDeniedError) as raised:
            reader_a.count("b")
        assert raised.value.reason == "COLLECTION_NOT_GRANTED"
        assert raised.value.metadata == {"collection": "b"}
        with pytest.raises(PermissionDeniedError):
            reader_a.get_collection("b")
        assert [c.name for c in reader_a.list_collections()] == ["a"]


def test_streams_check_every_request_against_the_grant(server: ServerThread, keys: dict[str, str]) -> None:
    vector = [0.0, 0.0, 1.0, 0.0]
    with client(server, keys["writer_a"]) as writer_a:
        assert writer_a.ingest("a", [Document("a-2", "text", {}, vector)]).batches == 1
        with pytest.raises(PermissionDeniedError) as raised:
            writer_a.ingest("b", [Document("b-2", "text", {}, vector)])
        assert raised.value.reason == "COLLECTION_NOT_GRANTED"
    with client(server, keys["reader_a"]) as reader_a:
        assert [len(hits) for hits in reader_a.search_many("a", [vector, vector], top_k=1)] == [1, 1]
        with pytest.raises(PermissionDeniedError):
            reader_a.search_many("b", [vector], top_k=1)
        assert reader_a.count("a") == 2  # the server still serves this key after the refused stream
    with client(server, keys["admin"]) as admin:
        assert admin.count("b") == 1


def test_revoked_key_stops_working_promptly(server: ServerThread, keys: dict[str, str], database: str) -> None:
    token = create_key(database, "reader")
    with client(server, token) as c:
        assert c.count("a") >= 1
        key_id = token.split("_")[1]
        assert revoke(database, key_id)
        time.sleep(CACHE_SECONDS * 2)
        with pytest.raises(UnauthenticatedError):
            c.count("a")


def test_health_is_open_and_reflection_needs_a_key(server: ServerThread, keys: dict[str, str]) -> None:
    with grpc.insecure_channel(server.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as raised:
            list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answers = list(stub.ServerReflectionInfo(iter([request]), timeout=10, metadata=bearer(keys["reader"])))
        assert any("DocumentService" in s.name for s in answers[0].list_services_response.service)


def test_no_credential_reaches_the_logs(
    server: ServerThread, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = keys["reader"][:-4] + "AAAA"
    with caplog.at_level(logging.DEBUG):
        for token in (keys["reader"], wrong, "pgv_0123456789abcdef_secretsecret"):
            with client(server, token) as c, contextlib.suppress(PermissionDeniedError, UnauthenticatedError):
                c.ingest("a", [Document("z", "text", {}, np.ones(DIM).tolist())])
    logged = caplog.text
    assert "refused" in logged
    for secret in (keys["reader"].split("_", 2)[2], wrong.split("_", 2)[2], "secretsecret"):
        assert secret not in logged
