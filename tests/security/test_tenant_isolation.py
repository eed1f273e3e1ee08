"""Tenants isolated by PostgreSQL row-level security, through the real server and real keys.

Two tenants, alpha and beta, hold documents with overlapping ids in one multi-tenant collection.
Every RPC is called as alpha, trying to reach beta's rows (by id, by filters on id, content and
metadata, by a forged page token, by upserting an id beta holds); afterwards beta's documents are
read back with beta's own key and must be exactly as beta wrote them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from haystack import Document as HaystackDocument
from haystack.utils import Secret
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from pgvector_grpc import Client, Document
from pgvector_grpc.errors import AlreadyExistsError, FailedPreconditionError, PermissionDeniedError
from pgvector_grpc.filters import Field
from pgvector_grpc.v1 import document_service_pb2, document_service_pb2_grpc
from pgvector_grpc_common.migration.events import Report
from pgvector_grpc_server.services.documents import encode_page_token

from tests.fix_pg import PgCluster, create_database, drop_database
from tests.fix_server import ServerThread
from tests.migration.chroma_stores import write_store
from tests.security.keys import bearer, create_key

DIMENSION = 4
BETA_DOCS = [
    Document("shared-1", "beta secret one", {"owner": "beta", "n": 101, "tag": "b"}, [1, 0, 0, 0]),
    Document("shared-2", "beta secret two", {"owner": "beta", "n": 102, "tag": "b"}, [0, 1, 0, 0]),
    Document("shared-3", "beta secret three", {"owner": "beta", "n": 103}, [0, 0, 1, 0]),
    Document("beta-only", "beta secret four", {"owner": "beta", "n": 104, "only_beta": True}, [0, 0, 0, 1]),
]
ALPHA_DOCS = [
    Document("shared-1", "alpha one", {"owner": "alpha", "n": 1}, [0.9, 0.1, 0, 0]),
    Document("shared-2", "alpha two", {"owner": "alpha", "n": 2}, [0.1, 0.9, 0, 0]),
    Document("alpha-only", "alpha three", {"owner": "alpha", "n": 3}, [0.5, 0.5, 0, 0]),
]
ALPHA_IDS = sorted(d.id for d in ALPHA_DOCS)


class Tenants:
    """The secured server and one client per principal."""

    def __init__(self, server: ServerThread, keys: dict[str, str]) -> None:
        self.server = server
        self.keys = keys

    def client(self, who: str) -> Client:
        return Client(self.server.address, timeout=30, metadata=bearer(self.keys[who]))


@pytest.fixture(scope="module")
def tenants(database: str) -> Iterator[Tenants]:
    keys = {
        "admin": create_key(database, "admin", tenant="operations"),
        "alpha": create_key(database, "writer", tenant="alpha"),
        "beta": create_key(database, "writer", tenant="beta"),
        "alpha_reader": create_key(database, "reader", tenant="alpha"),
    }
    server = ServerThread(database, api_key_cache_seconds=60)
    yield Tenants(server, keys)
    server.stop()


@pytest.fixture
def alpha(tenants: Tenants) -> Iterator[Client]:
    with tenants.client("alpha") as client:
        yield client


@pytest.fixture
def beta(tenants: Tenants) -> Iterator[Client]:
    with tenants.client("beta") as client:
        yield client


@pytest.fixture
def shared(tenants: Tenants, alpha: Client, beta: Client, collection_name: str) -> Iterator[str]:
    """A multi-tenant collection holding beta's documents and then alpha's (overlapping ids)."""
    with tenants.client("admin") as admin:
        created = admin.create_collection(collection_name, DIMENSION, multi_tenant=True)
        assert created.multi_tenant
        beta.ingest(collection_name, BETA_DOCS)
        alpha.ingest(collection_name, ALPHA_DOCS)
        yield collection_name
        admin.delete_collection(collection_name)


def beta_is_untouched(beta: Client, collection: str) -> None:
    """Beta, with its own key, still sees exactly the documents it wrote."""
    stored = {d.id: d for d in beta.list(collection, include_embedding=True)}
    assert sorted(stored) == sorted(d.id for d in BETA_DOCS)
    for doc in BETA_DOCS:
        assert stored[doc.id].content == doc.content
        assert stored[doc.id].metadata == doc.metadata
        assert np.allclose(np.asarray(stored[doc.id].embedding), np.asarray(doc.embedding))
    assert beta.count(collection) == len(BETA_DOCS)


def test_search_sees_only_the_callers_rows(alpha: Client, beta: Client, shared: str) -> None:
    for doc in BETA_DOCS:  # aimed exactly at each of beta's embeddings
        hits = alpha.search(shared, doc.embedding, top_k=10)
        assert sorted(h.id for h in hits) == ALPHA_IDS
        assert all(h.metadata["owner"] == "alpha" and h.content.startswith("alpha") for h in hits)  # type: ignore[union-attr]
    reaching_for_beta = [
        Field.id() == "beta-only",
        Field.id().is_in(["beta-only", "shared-3"]),
        Field.content() == "beta secret one",
        Field("owner") == "beta",
        Field("only_beta").exists(),
        Field("n") > 100,
    ]
    for where in reaching_for_beta:
        assert alpha.search(shared, [0, 0, 0, 1], top_k=10, filter=where) == []
        assert alpha.search(shared, [0, 0, 0, 1], top_k=10, filter=where, exact=True) == []
        assert alpha.count(shared, where) == 0
    assert [h.id for h in alpha.search(shared, [1, 0, 0, 0], top_k=1, filter=Field.id() == "shared-1")] == ["shared-1"]
    assert alpha.search(shared, [1, 0, 0, 0], top_k=1)[0].content == "alpha one"
    beta_is_untouched(beta, shared)


def test_both_search_plans_see_only_the_callers_rows(
    tenants: Tenants, alpha: Client, beta: Client, collection_name: str
) -> None:
    """The exact scan of a few matching rows and the index walk over many keep tenants apart alike."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(600, DIMENSION)).astype(np.float32)
    with tenants.client("admin") as admin:
        admin.create_collection(collection_name, DIMENSION, multi_tenant=True)
        try:
            # Beta's rows are the nearest to every query and match every filter alpha uses.
            beta.ingest(
                collection_name, [Document(f"d{i}", "beta", {"tag": "x", "i": i}, v) for i, v in enumerate(vectors)]
            )
            alpha.ingest(
                collection_name,
                [Document(f"d{i}", "alpha", {"tag": "x", "i": i}, v + 0.5) for i, v in enumerate(vectors[:300])],
            )
            for query in vectors[:5]:
                few = alpha.search(collection_name, query, top_k=10, filter=Field("i") < 8, ef_search=10)
                many = alpha.search(collection_name, query, top_k=10, filter=Field("tag") == "x", ef_search=10)
                assert few.exhaustive and len(few) == 8 and not many.exhaustive and len(many) == 10
                assert all(h.content == "alpha" for h in [*few, *many])
                streamed = alpha.search_many(
                    collection_name, [query], top_k=10, filter=Field("tag") == "x", ef_search=10
                )
                assert all(h.content == "alpha" for h in streamed[0]) and len(streamed[0]) == 10
        finally:
            admin.delete_collection(collection_name)


def test_search_stream_sees_only_the_callers_rows(alpha: Client, shared: str) -> None:
    answers = alpha.search_many(shared, [d.embedding for d in BETA_DOCS], top_k=10)
    assert [sorted(h.id for h in hits) for hits in answers] == [ALPHA_IDS] * len(BETA_DOCS)
    filtered = alpha.search_many(shared, [[0, 0, 0, 1]], top_k=10, filter=Field.content() == "beta secret four")
    assert filtered == [[]]


def test_get_count_and_list(alpha: Client, beta: Client, shared: str) -> None:
    got = alpha.get(shared, ["shared-1", "shared-2", "shared-3", "beta-only", "alpha-only"])
    assert [(d.id, d.content) for d in got] == [
        ("shared-1", "alpha one"),
        ("shared-2", "alpha two"),
        ("alpha-only", "alpha three"),
    ]
    assert alpha.count(shared) == len(ALPHA_DOCS)
    assert [d.id for d in alpha.list(shared, page_size=1)] == ALPHA_IDS
    assert [d.id for d in alpha.list(shared, order="insertion")] == [d.id for d in ALPHA_DOCS]
    assert beta.count(shared) == len(BETA_DOCS)


@pytest.mark.parametrize(
    ("order", "position"),
    [
        (document_service_pb2.DOCUMENT_ORDER_ID, ""),  # before every id
        (document_service_pb2.DOCUMENT_ORDER_ID, "beta-onl"),  # just before beta's own id
        (document_service_pb2.DOCUMENT_ORDER_INSERTION, 0),  # before beta's first insertion
    ],
)
def test_a_forged_page_token_pointing_into_beta_s_range_lists_alpha_only(
    tenants: Tenants, shared: str, order: int, position: str | int
) -> None:
    request = document_service_pb2.ListDocumentsRequest(
        collection=shared,
        page_size=100,
        page_token=encode_page_token(position),
        order=order,  # type: ignore[arg-type]
    )
    with grpc.insecure_channel(tenants.server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        response = stub.ListDocuments(request, metadata=bearer(tenants.keys["alpha"]), timeout=30)
    listed = [d.id for d in response.documents]
    assert listed and set(listed) <= set(ALPHA_IDS)
    assert all(d.content.startswith("alpha") for d in response.documents)


def test_deletes_by_ids_and_by_filter_reach_only_the_callers_rows(alpha: Client, beta: Client, shared: str) -> None:
    assert alpha.delete(shared, ["beta-only", "shared-3"]) == 0
    assert alpha.delete(shared, filter=Field("owner") == "beta") == 0
    assert alpha.delete(shared, filter=Field.content() == "beta secret two") == 0
    assert alpha.delete(shared, ["shared-1"]) == 1  # alpha's own shared-1; beta's stays
    beta_is_untouched(beta, shared)
    assert alpha.delete(shared, all_documents=True) == len(ALPHA_DOCS) - 1
    assert alpha.count(shared) == 0
    beta_is_untouched(beta, shared)


def test_metadata_updates_and_aggregates(alpha: Client, beta: Client, shared: str) -> None:
    assert alpha.update_metadata(shared, {"hijacked": True}, filter=Field("owner") == "beta") == 0
    assert alpha.update_metadata(shared, {"hijacked": True}, ["beta-only", "shared-3"]) == 0
    assert alpha.update_metadata(shared, {"seen": True}, ["shared-1"]) == 1
    assert alpha.update_metadata(shared, {"all": 1}, all_documents=True) == len(ALPHA_DOCS)
    beta_is_untouched(beta, shared)

    described = alpha.describe_metadata(shared)
    assert "only_beta" not in described and "tag" not in described
    assert described["owner"] == {"string": len(ALPHA_DOCS)}
    assert alpha.field_values(shared, "owner") == (["alpha"], 1)
    assert alpha.field_values(shared, "n", search_term="10") == ([], 0)
    assert alpha.field_range(shared, "n") == (1, 3)
    assert alpha.field_range(shared, "only_beta") is None
    assert beta.field_range(shared, "n") == (101, 104)


def test_ingest_of_an_id_another_tenant_holds_creates_the_callers_own_row(
    alpha: Client, beta: Client, shared: str
) -> None:
    summary = alpha.ingest(
        shared,
        [
            Document("beta-only", "alpha's own beta-only", {"owner": "alpha"}, [0, 0, 0, 1]),
            Document("shared-1", "alpha one, again", {"owner": "alpha"}, [1, 0, 0, 0]),
        ],
        on_conflict="upsert",
    )
    assert (summary.inserted, summary.updated) == (1, 1)
    assert [d.content for d in alpha.get(shared, ["beta-only", "shared-1"])] == [
        "alpha's own beta-only",
        "alpha one, again",
    ]
    skipped = alpha.ingest(shared, [Document("shared-3", "alpha's shared-3", {}, [0, 0, 1, 0])], on_conflict="skip")
    assert (skipped.inserted, skipped.skipped) == (1, 0)  # beta's shared-3 is no conflict for alpha
    with pytest.raises(AlreadyExistsError) as refused:
        alpha.ingest(shared, [Document("shared-2", "again", {}, [0, 1, 0, 0])], on_conflict="fail")
    assert "'shared-2'" in str(refused.value)
    assert alpha.count(shared) == len(ALPHA_DOCS) + 2
    beta_is_untouched(beta, shared)


def test_checkpoints_are_per_tenant(alpha: Client, beta: Client, shared: str) -> None:
    beta.ingest(shared, [Document("beta-5", None, {}, [0, 0, 0, 1])], checkpoint=("loader", "beta-at-5"))
    assert alpha.get_checkpoint(shared, "loader") is None
    alpha.ingest(shared, [Document("alpha-7", None, {}, [1, 0, 0, 0])], checkpoint=("loader", "alpha-at-7"))
    assert alpha.get_checkpoint(shared, "loader") == "alpha-at-7"
    assert beta.get_checkpoint(shared, "loader") == "beta-at-5"  # not overwritten by alpha's


def test_collection_counts_are_the_callers(tenants: Tenants, alpha: Client, beta: Client, shared: str) -> None:
    assert alpha.get_collection(shared).document_count == len(ALPHA_DOCS)
    assert beta.get_collection(shared).document_count == len(BETA_DOCS)
    listed = {c.name: c for c in alpha.list_collections()}
    assert listed[shared].multi_tenant and listed[shared].document_count == len(ALPHA_DOCS)


def test_dropping_a_multi_tenant_collection_is_for_admins(tenants: Tenants, alpha: Client, shared: str) -> None:
    with pytest.raises(PermissionDeniedError):
        alpha.delete_collection(shared)
    with pytest.raises(PermissionDeniedError):
        alpha.build_index(shared)
    with tenants.client("alpha_reader") as reader:
        with pytest.raises(PermissionDeniedError):
            reader.delete(shared, all_documents=True)
        assert reader.count(shared) == len(ALPHA_DOCS)


def test_haystack_store_with_a_tenants_credentials(tenants: Tenants, beta: Client, shared: str) -> None:
    store = PgvectorGrpcDocumentStore(
        address=Secret.from_token(tenants.server.address),
        collection=shared,
        embedding_dimension=DIMENSION,
        create_collection=False,
        api_key=Secret.from_token(tenants.keys["alpha"]),
    )
    try:
        assert sorted(d.id for d in store.filter_documents()) == ALPHA_IDS
        assert store.filter_documents({"field": "meta.owner", "operator": "==", "value": "beta"}) == []
        assert store.count_documents() == len(ALPHA_DOCS)
        store.write_documents([HaystackDocument(id="beta-only", content="alpha via haystack", embedding=[0, 0, 0, 1])])
        store.delete_documents(["shared-2", "shared-3"])
        assert sorted(d.id for d in store.filter_documents()) == ["alpha-only", "beta-only", "shared-1"]
    finally:
        store.client.close()
    beta_is_untouched(beta, shared)


def test_the_pool_role_is_held_to_row_level_security(tenants: Tenants) -> None:
    async def role() -> tuple[str, bool, bool]:
        async with tenants.server.running.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            row = await cur.fetchone()
        assert row is not None
        return row[0], row[1], row[2]

    assert tenants.server.call(role()) == ("pgvector_grpc_app", False, False)


def test_without_authentication_a_multi_tenant_collection_is_refused(pg_cluster: PgCluster) -> None:
    """A server without keys (loopback) has no caller tenant: single-tenant collections work as
    ever, a multi-tenant one answers FAILED_PRECONDITION instead of an empty view."""
    conninfo = create_database(pg_cluster, "t_tenants_without_auth")
    server = ServerThread(conninfo)
    try:
        with Client(server.address, timeout=30) as client:
            client.create_collection("plain", DIMENSION)
            client.ingest("plain", ALPHA_DOCS)
            assert client.count("plain") == len(ALPHA_DOCS)
            created = client.create_collection("tenanted", DIMENSION, multi_tenant=True)
            assert created.multi_tenant and created.document_count == 0
            for call in (
                lambda: client.count("tenanted"),
                lambda: client.search("tenanted", [1, 0, 0, 0]),
                lambda: client.ingest("tenanted", ALPHA_DOCS),
                lambda: client.get_checkpoint("tenanted", "loader"),
            ):
                with pytest.raises(FailedPreconditionError) as refused:
                    call()
                assert refused.value.reason == "TENANT_REQUIRED"
    finally:
        server.stop()
        drop_database(pg_cluster, "t_tenants_without_auth")


def test_migrate_into_a_multi_tenant_collection_writes_as_the_callers_tenant(database: str, tmp_path: Path) -> None:
    store = tmp_path / "chroma"
    written = write_store(store, {"src": ("cosine", DIMENSION, 30)})["src"]
    alpha_admin = create_key(database, "admin", tenant="alpha")
    beta_writer = create_key(database, "writer", tenant="beta")
    server = ServerThread(database, api_key_cache_seconds=60, migrate_roots=(tmp_path,))
    try:
        with Client(server.address, timeout=120, metadata=bearer(alpha_admin)) as alpha:
            alpha.create_collection("migrated_tenants", DIMENSION, multi_tenant=True)
            *_, report = alpha.migrate(str(store), "src", target="migrated_tenants")
            assert isinstance(report, Report) and report.ok
            assert alpha.count("migrated_tenants") == len(written.ids)
        with Client(server.address, timeout=30, metadata=bearer(beta_writer)) as beta:
            assert beta.count("migrated_tenants") == 0
            assert beta.get("migrated_tenants", written.ids[:5]) == []
            assert beta.search("migrated_tenants", written.embeddings[0], top_k=5) == []
    finally:
        server.stop()
