"""Health, reflection, restarts, deadlines and a database outage, on real processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pgvector_grpc import Client, DeadlineExceededError, Document, UnavailableError
from pgvector_grpc_server.embedded import EmbeddedPostgres, stop_postmaster

from tests.fix_server import ServerThread


def health_status(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        return (
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        )


def test_health_reports_serving_per_service(server: ServerThread) -> None:
    assert health_status(server.address) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(server.address, "pgvector_grpc.v1.DocumentService") == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        health_status(server.address, "nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_resolves_services(server: ServerThread) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter(
                [
                    reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="pgvector_grpc.v1.DocumentService"),
                ]
            )
        )
        listed, symbol = list(responses)
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "pgvector_grpc.v1.CollectionService",
        "pgvector_grpc.v1.DocumentService",
        "pgvector_grpc.v1.MigrationService",
        "grpc.health.v1.Health",
    } <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b) for b in symbol.file_descriptor_response.file_descriptor_proto
    ]
    methods = {m.name for f in files for s in f.service for m in s.method}
    assert {"Ingest", "Search", "SearchStream", "ListDocuments"} <= methods


def test_deadline_cancels_the_query_and_frees_the_connection(
    server: ServerThread, database: str, client: Client
) -> None:
    client.create_collection("slow", 2)
    client.ingest("slow", [Document("a", None, {}, [1, 1])])
    with psycopg.connect(database, autocommit=True) as conn, conn.transaction():
        conn.execute("LOCK TABLE pgvector_grpc.slow IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.count("slow", timeout=0.5)
        assert time.monotonic() - started < 2
        time.sleep(1.0)
        waiting = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
        assert waiting == (0,)  # the server's query was cancelled, not left waiting on the lock
    assert client.count("slow") == 1


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    postgres = EmbeddedPostgres(tmp_path / "pg")
    postgres.start()
    yield postgres
    postgres.stop()


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_database_outage_is_unavailable_then_recovers(own_postgres: EmbeddedPostgres) -> None:
    running = ServerThread(own_postgres.conninfo, pool_timeout=1.0)
    try:
        with Client(running.address, retries=0, timeout=10) as c:
            c.create_collection("outage", 2)
            c.ingest("outage", [Document("kept", None, {}, [1, 2])])
            stop_postmaster(own_postgres.data_dir)
            wait_for(lambda: health_status(running.address) == health_pb2.HealthCheckResponse.NOT_SERVING)
            with pytest.raises(UnavailableError):
                c.count("outage")
            own_postgres.restart()
            wait_for(lambda: health_status(running.address) == health_pb2.HealthCheckResponse.SERVING)
            assert c.count("outage") == 1  # the same server, no restart
    finally:
        running.stop()


def test_data_survives_a_server_restart(database: str) -> None:
    first = ServerThread(database)
    with Client(first.address) as c:
        c.create_collection("durable", 2)
        c.ingest("durable", [Document("a", "kept", {"k": 1}, [1, 0])])
    first.stop()
    second = ServerThread(database)
    try:
        with Client(second.address) as c:
            assert [(d.id, d.content, d.metadata) for d in c.get("durable", ["a"])] == [("a", "kept", {"k": 1})]
    finally:
        second.stop()


def test_an_empty_migrate_request_names_the_missing_field(server: ServerThread) -> None:
    from pgvector_grpc.v1 import migration_service_pb2, migration_service_pb2_grpc

    with grpc.insecure_channel(server.address) as channel:
        stub = migration_service_pb2_grpc.MigrationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Migrate(migration_service_pb2.MigrateRequest(), timeout=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "chroma.collection" in (err.value.details() or "")


def test_ingest_deadline_rolls_the_batch_back(server: ServerThread, database: str, client: Client) -> None:
    client.create_collection("slow_ingest", 2)
    with psycopg.connect(database, autocommit=True) as conn, conn.transaction():
        conn.execute("LOCK TABLE pgvector_grpc.slow_ingest IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(DeadlineExceededError) as err:
            client.ingest("slow_ingest", [Document("a", None, {}, [1, 1])], timeout=0.5)
        assert err.value.acknowledged is not None and err.value.acknowledged.batches == 0
    time.sleep(0.5)
    assert client.count("slow_ingest") == 0
