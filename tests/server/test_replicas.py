"""Reads on a real streaming replica: `pg_basebackup -R` of the session's embedded PostgreSQL,
started with the wheel's pg_ctl.

Which database answered is asked of the connection the server's routing hands out
(``pg_is_in_recovery()``) and shown by the reads metric per database; a replica whose replay is
paused shows it by what it does not return yet."""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import httpx
import psycopg
import pytest
from haystack import Document as HaystackDocument
from haystack.utils import Secret
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from pgvector_grpc import Client, Document
from pgvector_grpc.v1 import document_pb2, document_service_pb2, document_service_pb2_grpc
from pgvector_grpc_server.access import UnsafeConfiguration
from pgvector_grpc_server.domain.consistency import allow_replica_reads
from pgvector_grpc_server.embedded import EmbeddedPostgres
from pgvector_grpc_server.settings import Settings
from pgvector_grpc_server.storage.location import database_label
from pgvector_grpc_server.storage.roles import APP_ROLE, app_conninfo
from pgvector_grpc_server.storage.routing import read_one
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict

from tests.fix_pg import PgCluster, create_database, drop_database
from tests.fix_server import ServerThread
from tests.processes import Served, free_port
from tests.replication import Standby
from tests.security.keys import bearer, create_key

DOCS = [Document(f"d{i}", f"text {i}", {"n": i, "kind": "even" if i % 2 == 0 else "odd"}, [1.0, i]) for i in range(6)]


@dataclass
class Replicated:
    """The session's PostgreSQL (the primary), the module's database on it, and a standby of both."""

    cluster: PgCluster
    primary: EmbeddedPostgres
    database: str
    standby: Standby

    @property
    def dbname(self) -> str:
        return str(conninfo_to_dict(self.database)["dbname"])

    def replica_url(self, dbname: str | None = None) -> str:
        """The standby as the server's app role."""
        return self.standby.conninfo(dbname or self.dbname, user=APP_ROLE)


@pytest.fixture(scope="module")
def replicated(pg_cluster: PgCluster, database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    own = None
    if pg_cluster.embedded is None:  # DATABASE_URL names a server we cannot copy: a primary of our own
        own = EmbeddedPostgres(tmp_path_factory.mktemp("primary") / "data")
        atexit.register(own.stop)
        own.start()
    primary = own or pg_cluster.embedded
    assert primary is not None
    if own is not None:
        pg_cluster = PgCluster(own.conninfo, own)
        database = create_database(pg_cluster, "t_test_replicas")
    try:
        standby = Standby(primary, tmp_path_factory.mktemp("standby") / "data")
        atexit.register(standby.stop)
        standby.start()
        try:
            yield Replicated(pg_cluster, primary, database, standby)
        finally:
            standby.stop()
    finally:
        if own is not None:
            own.stop()


def _server(replicated: Replicated, **settings: object) -> Iterator[ServerThread]:
    server = ServerThread(
        replicated.database, read_database_urls=(replicated.replica_url(),), replica_check_interval=0.1, **settings
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def patient(replicated: Replicated) -> Iterator[ServerThread]:
    """A server whose replica stays in use however far it falls behind here (60 s)."""
    yield from _server(replicated, max_replica_lag=60.0)


@pytest.fixture(scope="module")
def strict(replicated: Replicated) -> Iterator[ServerThread]:
    """A server that skips its replica once it lags by more than half a second."""
    yield from _server(replicated, max_replica_lag=0.5)


def eventually(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def in_recovery(server: ServerThread, *, replica_allowed: bool) -> bool:
    """``pg_is_in_recovery()`` on the connection the server's routing gives a read."""

    async def ask() -> bool:
        allow_replica_reads(replica_allowed)  # this task only, as the transport does for a call
        assert server.running.routing is not None
        row = await read_one(server.running.routing, None, "SELECT pg_is_in_recovery()")
        assert row is not None
        return bool(row[0])

    return bool(server.call(ask()))


def reads(server: ServerThread, database: str) -> float:
    """The reads metric of one database ("primary", or a replica's label)."""
    value = server.running.metrics.registry.get_sample_value("pgvector_grpc_reads_total", {"database": database})
    assert value is not None
    return value


def replica_in_use(server: ServerThread, replicated: Replicated) -> bool:
    labels = {"replica": database_label(replicated.replica_url())}
    return server.running.metrics.registry.get_sample_value("pgvector_grpc_replica_in_use", labels) == 1


def _fill(address: str, collection: str, standby: Standby) -> None:
    with Client(address, timeout=30) as client:
        client.create_collection(collection, 2, if_not_exists=True)
        client.ingest(collection, DOCS)
    standby.catch_up()


def test_reads_land_on_the_replica_and_the_primary_on_request(replicated: Replicated, patient: ServerThread) -> None:
    _fill(patient.address, "routed", replicated.standby)
    eventually(lambda: replica_in_use(patient, replicated))
    assert in_recovery(patient, replica_allowed=True) is True
    assert in_recovery(patient, replica_allowed=False) is False

    replica = database_label(replicated.replica_url())
    with Client(patient.address, timeout=30) as client:
        before = reads(patient, "primary"), reads(patient, replica)
        assert client.count("routed") == len(DOCS)
        assert [h.id for h in client.search("routed", [1.0, 2.0], top_k=2)] == ["d2", "d3"]
        assert [d.id for d in client.get("routed", ["d3", "d0"])] == ["d3", "d0"]
        assert [d.id for d in client.list("routed", filter={"kind": "odd"})] == ["d1", "d3", "d5"]
        assert len(client.search_many("routed", [[1.0, 0.0], [0.0, 1.0]], top_k=1)) == 2
        assert client.get_collection("routed").document_count == len(DOCS)
        assert "routed" in [c.name for c in client.list_collections()]
        assert client.describe_metadata("routed")["kind"] == {"string": len(DOCS)}
        assert client.field_range("routed", "n") == (0, 5)
        middle = reads(patient, "primary"), reads(patient, replica)
        assert middle[0] == before[0]  # not one read on the primary
        assert middle[1] >= before[1] + 10

        assert client.count("routed", read_from_primary=True) == len(DOCS)
        assert len(client.search("routed", [1.0, 2.0], top_k=2, read_from_primary=True)) == 2
        assert client.get_collection("routed", read_from_primary=True).document_count == len(DOCS)
        after = reads(patient, "primary"), reads(patient, replica)
        assert after[0] >= middle[0] + 3
        assert after[1] == middle[1]


def test_read_your_write_asks_the_primary_while_the_replica_lags(replicated: Replicated, patient: ServerThread) -> None:
    _fill(patient.address, "own_writes", replicated.standby)
    eventually(lambda: replica_in_use(patient, replicated))
    late = Document("late", "written while replay is paused", {"n": 99}, [-1.0, 0.0])
    replicated.standby.pause_replay()
    try:
        with Client(patient.address, timeout=30) as client:
            client.ingest("own_writes", [late])
            client.delete("own_writes", ["d0"])
            # The replica (still in use: 60 s allowed) has neither write yet; the primary has both.
            assert [d.id for d in client.get("own_writes", ["late", "d0"])] == ["d0"]
            assert client.count("own_writes") == len(DOCS)
            assert [d.id for d in client.get("own_writes", ["late", "d0"], read_from_primary=True)] == ["late"]
            assert client.count("own_writes", read_from_primary=True) == len(DOCS)
            hits = client.search("own_writes", [-1.0, 0.0], top_k=1, exact=True, read_from_primary=True)
            assert [h.id for h in hits] == ["late"]
            assert in_recovery(patient, replica_allowed=True) is True
    finally:
        replicated.standby.resume_replay()
    with Client(patient.address, timeout=30) as client:
        eventually(lambda: [d.id for d in client.get("own_writes", ["late", "d0"])] == ["late"])


def test_a_haystack_store_reading_from_the_primary_sees_its_own_writes(
    replicated: Replicated, patient: ServerThread
) -> None:
    _fill(patient.address, "haystack_reads", replicated.standby)
    eventually(lambda: replica_in_use(patient, replicated))
    fresh, replicas = (
        PgvectorGrpcDocumentStore(
            address=Secret.from_token(patient.address),
            collection="haystack_reads",
            embedding_dimension=2,
            read_from_primary=primary,
        )
        for primary in (True, False)
    )
    late = HaystackDocument(id="late", content="written while replay is paused", embedding=[-1.0, 0.0])
    replicated.standby.pause_replay()
    try:
        fresh.write_documents([late])
        assert fresh.count_documents() == len(DOCS) + 1
        assert [d.id for d in fresh._embedding_retrieval([-1.0, 0.1], top_k=1)] == ["late"]
        assert "late" in [d.id for d in fresh.filter_documents()]
        # The replica (still in use: 60 s allowed) has not replayed the write yet.
        assert replicas.count_documents() == len(DOCS)
        assert "late" not in [d.id for d in replicas._embedding_retrieval([-1.0, 0.1], top_k=1)]
        assert in_recovery(patient, replica_allowed=True) is True
    finally:
        replicated.standby.resume_replay()
        fresh.close()
        replicas.close()


def test_a_lagging_replica_is_skipped_until_it_catches_up(replicated: Replicated, strict: ServerThread) -> None:
    _fill(strict.address, "lagging", replicated.standby)
    eventually(lambda: replica_in_use(strict, replicated))
    # Three times the limit without a write: a replica measured by its last replayed transaction's
    # age would be skipped now; it has replayed all the primary wrote, so it stays in use.
    time.sleep(1.5)
    eventually(lambda: replica_in_use(strict, replicated), seconds=5)
    replicated.standby.pause_replay()
    try:
        with Client(strict.address, timeout=30) as client:
            client.ingest("lagging", [Document("new", None, {}, [3.0, 3.0])])
            eventually(lambda: not replica_in_use(strict, replicated))
            assert in_recovery(strict, replica_allowed=True) is False
            assert [d.id for d in client.get("lagging", ["new"])] == ["new"]  # the primary answered
            lag = strict.running.metrics.registry.get_sample_value(
                "pgvector_grpc_replica_lag_seconds", {"replica": database_label(replicated.replica_url())}
            )
            assert lag is not None and lag > 0.5
    finally:
        replicated.standby.resume_replay()
    # Half a second is tight on a loaded machine: the replica may drop out again between two checks.
    eventually(lambda: in_recovery(strict, replica_allowed=True))


def test_reads_fall_back_to_the_primary_while_the_replica_is_down(
    replicated: Replicated, patient: ServerThread
) -> None:
    _fill(patient.address, "fallback", replicated.standby)
    eventually(lambda: replica_in_use(patient, replicated))
    with Client(patient.address, timeout=30, retries=0) as client:
        assert client.count("fallback") == len(DOCS)  # a replica connection is pooled now
        replicated.standby.crash()
        try:
            # No retry by the client: the server's routing moves the failed read to the primary.
            assert client.count("fallback") == len(DOCS)
            assert [h.id for h in client.search("fallback", [1.0, 4.0], top_k=1)] == ["d4"]
            assert in_recovery(patient, replica_allowed=True) is False
            assert not replica_in_use(patient, replicated)
        finally:
            replicated.standby.restart()
    eventually(lambda: replica_in_use(patient, replicated))
    assert in_recovery(patient, replica_allowed=True) is True


def test_an_unknown_read_consistency_is_invalid_argument_naming_the_field(patient: ServerThread) -> None:
    with Client(patient.address, timeout=30) as client:
        client.create_collection("consistency", 2, if_not_exists=True)
    count = document_service_pb2.CountDocumentsRequest(collection="consistency", consistency=7)  # type: ignore[arg-type]
    search = document_service_pb2.SearchRequest(
        collection="consistency",
        embedding=document_pb2.Vector(values=[1, 0]),
        top_k=1,
        consistency=7,  # type: ignore[arg-type]
    )
    with grpc.insecure_channel(patient.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.CountDocuments(count, timeout=30)
        streamed = list(
            stub.SearchStream(iter([document_service_pb2.SearchStreamRequest(request_id="q", query=search)]))
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "consistency: unknown read consistency 7"
    assert streamed[0].status.message == "query.consistency: unknown read consistency 7"


def test_tenants_stay_apart_on_the_replica(replicated: Replicated) -> None:
    name = "t_replicas_tenants"
    admin = create_database(replicated.cluster, name)
    try:
        ServerThread(admin).stop()  # applies sql/, which the keys' table is part of
        keys = {tenant: create_key(admin, "writer", tenant=tenant) for tenant in ("alpha", "beta")}
        operator = create_key(admin, "admin", tenant="operations")
        server = ServerThread(
            admin,
            read_database_urls=(replicated.replica_url(name),),
            replica_check_interval=0.1,
            max_replica_lag=60.0,
            api_key_cache_seconds=60,
        )
        try:
            with Client(server.address, timeout=30, metadata=bearer(operator)) as client:
                client.create_collection("shared", 2, multi_tenant=True)
            _read_as_tenants(replicated, server, name, keys)
        finally:
            server.stop()
    finally:
        drop_database(replicated.cluster, name)


def _read_as_tenants(replicated: Replicated, server: ServerThread, dbname: str, keys: dict[str, str]) -> None:
    held = {"alpha": DOCS[:3], "beta": DOCS[1:]}
    clients = {tenant: Client(server.address, timeout=30, metadata=bearer(key)) for tenant, key in keys.items()}
    try:
        for tenant, client in clients.items():
            client.ingest("shared", [Document(d.id, f"{tenant} {d.content}", {}, d.embedding) for d in held[tenant]])
        replicated.standby.catch_up()
        label = database_label(replicated.replica_url(dbname))
        registry = server.running.metrics.registry
        eventually(lambda: registry.get_sample_value("pgvector_grpc_replica_in_use", {"replica": label}) == 1)
        before = reads(server, "primary"), reads(server, label)
        for tenant, client in clients.items():
            ids = [d.id for d in held[tenant]]
            assert client.count("shared") == len(ids)
            docs = client.get("shared", [d.id for d in DOCS])
            assert [(d.id, d.content) for d in docs] == [(i, f"{tenant} text {i[1:]}") for i in ids]
            hits = client.search("shared", [1.0, 4.0], top_k=10)
            assert sorted(h.id for h in hits) == sorted(ids) and all(h.content.startswith(tenant) for h in hits)
        assert reads(server, "primary") == before[0]  # every read above was the replica's
        assert reads(server, label) >= before[1] + 6
    finally:
        for client in clients.values():
            client.close()


def scraped(port: int, name: str, labels: dict[str, str]) -> float | None:
    """One sample of a server process's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def test_two_server_processes_on_one_database_answer_alike(replicated: Replicated) -> None:
    replica = {"replica": database_label(replicated.replica_url())}
    ports = [free_port(), free_port()]
    common = _serve_arguments(replicated)
    servers: list[Served] = []
    try:
        for port in ports:
            servers.append(Served(*common, "--metrics-listen", f"127.0.0.1:{port}"))
        for port in ports:
            eventually(lambda port=port: scraped(port, "pgvector_grpc_replica_in_use", replica) == 1)
        with Client(servers[0].address, timeout=30) as first, Client(servers[1].address, timeout=30) as second:
            first.create_collection("two", 2, if_not_exists=True)
            first.ingest("two", DOCS)
            assert second.count("two", read_from_primary=True) == len(DOCS)  # its peer's write, at once
            second.delete("two", ["d1"])
            assert [d.id for d in first.list("two", read_from_primary=True)] == ["d0", "d2", "d3", "d4", "d5"]
            replicated.standby.catch_up()
            for client in (first, second):
                assert [d.id for d in client.list("two")] == ["d0", "d2", "d3", "d4", "d5"]
                assert [h.id for h in client.search("two", [1.0, 1.0], top_k=2)] == ["d2", "d3"]
        for port in ports:
            answered = scraped(port, "pgvector_grpc_reads_total", {"database": replica["replica"]})
            assert answered is not None and answered >= 2
    finally:
        for server in servers:
            assert server.stop() == 0


def _serve_arguments(replicated: Replicated) -> list[str]:
    """`serve` on the module's database as the app role, reading from the standby (patiently)."""
    common = ["--database-url", app_conninfo(replicated.database), "--admin-database-url", replicated.database]
    return [*common, "--read-database-url", replicated.replica_url(), "--max-replica-lag", "60"]


def test_workers_publish_the_replicas_figures_on_the_parents_metrics(replicated: Replicated) -> None:
    replica = {"replica": database_label(replicated.replica_url())}
    port = free_port()
    served = Served(*_serve_arguments(replicated), "--workers", "2", "--metrics-listen", f"127.0.0.1:{port}")
    try:
        eventually(lambda: scraped(port, "pgvector_grpc_replica_in_use", replica) == 1)
        assert scraped(port, "pgvector_grpc_replica_lag_seconds", replica) is not None
        assert (scraped(port, "pgvector_grpc_replica_pool_size", replica) or 0) >= 1  # summed over the workers
        with Client(served.address, timeout=30) as client:
            client.create_collection("published", 2, if_not_exists=True)
            client.ingest("published", DOCS)
            replicated.standby.catch_up()
            for _ in range(10):
                assert client.count("published") == len(DOCS)
            assert client.count("published", read_from_primary=True) == len(DOCS)
        eventually(lambda: (scraped(port, "pgvector_grpc_reads_total", {"database": replica["replica"]}) or 0) >= 10)
        assert (scraped(port, "pgvector_grpc_reads_total", {"database": "primary"}) or 0) >= 1
    finally:
        assert served.stop() == 0


def _answers_quickly(conninfo: str) -> bool:
    started = time.monotonic()
    try:
        with psycopg.connect(conninfo, connect_timeout=2) as conn:
            conn.execute("SELECT pg_is_in_recovery()")
    except psycopg.Error:
        return False
    return time.monotonic() - started < 0.5


def test_a_replica_whose_role_bypasses_row_level_security_is_refused(replicated: Replicated) -> None:
    superuser_url = replicated.standby.conninfo(replicated.dbname)
    # The server vets a replica at start-up when it answers its first check (1 s); one that does not
    # answer yet is vetted when it does. A standby another test just restarted may still be starting.
    eventually(lambda: _answers_quickly(superuser_url))
    with pytest.raises(UnsafeConfiguration, match=r"read replica .* is a superuser"):
        ServerThread(replicated.database, read_database_urls=(superuser_url,))


def test_replicas_are_configured_by_flags_or_the_environment() -> None:
    from pgvector_grpc_server.__main__ import _parser, _settings

    env = {
        "PGVECTOR_GRPC_READ_DATABASE_URLS": "postgresql://a/v, postgresql://b/v",
        "PGVECTOR_GRPC_MAX_REPLICA_LAG": "2.5",
    }
    from_env = Settings.from_env(env)
    assert (from_env.read_database_urls, from_env.max_replica_lag) == (("postgresql://a/v", "postgresql://b/v"), 2.5)
    args = _parser().parse_args(
        [
            "serve",
            "--read-database-url",
            "postgresql://c/v",
            "--read-database-url",
            "host=/s dbname=v",
            "--max-replica-lag",
            "1",
        ]
    )
    flags = _settings(args, from_env)
    assert (flags.read_database_urls, flags.max_replica_lag) == (("postgresql://c/v", "host=/s dbname=v"), 1.0)
    assert "postgresql://" not in repr(flags)  # URLs may hold passwords
    assert Settings(max_replica_lag=0).problems() == ["max_replica_lag must be positive (is 0)"]
