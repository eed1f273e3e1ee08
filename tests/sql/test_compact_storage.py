"""Compact vector indexes in SQL: row-level security holds through them, psql callers get the
same guards as the server, and a catalogue from before them upgrades in place."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, Document, HnswIndex
from pgvector_grpc_common.vocabulary import HnswIndex as DomainHnsw
from pgvector_grpc_server.domain.models import CollectionSpec, SearchQuery
from pgvector_grpc_server.storage.pool import open_pool
from pgvector_grpc_server.storage.schema import apply_schema
from pgvector_grpc_server.storage.search import SearchStore
from psycopg import errors

from tests.fix_pg import PgCluster, create_database, drop_database
from tests.fix_server import ServerThread
from tests.sql.conftest import as_tenant
from tests.vectors import clustered

Conn = psycopg.Connection[tuple[Any, ...]]
DIM = 32
IDS = [f"d{i:03d}" for i in range(100)]


@pytest.fixture(scope="module")
def tenant_vectors(app_db: str) -> dict[str, np.ndarray]:
    """Multi-tenant collection mt_bits (bit index, rerank 4): both tenants use the same ids; beta's
    embeddings are the queries the tests make as alpha."""
    vectors = {"alpha": clustered(100, DIM, 51), "beta": clustered(100, DIM, 52)}
    with psycopg.connect(app_db, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(
            "SELECT pgvector_grpc.create_collection('mt_bits', %s, index_storage => 'bit', rerank_factor => 4,"
            " multi_tenant => true)",
            (DIM,),
        )
        for tenant, rows in vectors.items():
            with as_tenant(conn, tenant):
                for doc_id, vector in zip(IDS, rows, strict=True):
                    conn.execute("INSERT INTO pgvector_grpc.mt_bits (id, embedding) VALUES (%s, %s)", (doc_id, vector))
    return vectors


def cosine_distances(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    return 1 - (vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))


async def test_a_tenant_searches_only_its_rows_through_a_compact_index(
    app: Conn, app_db: str, tenant_vectors: dict[str, np.ndarray]
) -> None:
    alpha = tenant_vectors["alpha"]
    pool = await open_pool(app_db, min_size=1, max_size=1, max_waiting=0, timeout=10, statement_timeout_ms=10_000)
    store = SearchStore(pool, default_ef_search=40)
    spec = CollectionSpec("mt_bits", DIM, index=DomainHnsw(storage="bit", rerank_factor=4), multi_tenant=True)
    try:
        for query in tenant_vectors["beta"][:5]:  # each exactly one of beta's rows
            served = await store.search(spec, SearchQuery("mt_bits", query, 5), tenant="alpha")
            rows = app.execute(
                "SELECT id, distance FROM pgvector_grpc.search_documents('mt_bits', %s, 5, tenant => 'alpha')",
                (query,),
            ).fetchall()
            assert [(h.document.id, h.distance) for h in served.hits] == rows and len(rows) == 5
            # alpha's embeddings, not beta's (one of which is at distance 0)
            truth = cosine_distances(alpha, query)
            for doc_id, distance in rows:
                assert distance == pytest.approx(truth[IDS.index(doc_id)], abs=1e-5)
            assert app.execute(
                "SELECT count(*) FROM pgvector_grpc.search_documents('mt_bits', %s, 5)", (query,)
            ).fetchone() == (0,)  # no tenant: no rows
    finally:
        await pool.close()


def test_psql_callers_get_the_servers_guards(app: Conn) -> None:
    with pytest.raises(errors.InvalidParameterValue):
        app.execute("SELECT pgvector_grpc.create_collection('bad_bits', 4, 'l2', index_storage => 'bit')")
    with pytest.raises(errors.InvalidParameterValue):
        app.execute(
            "SELECT pgvector_grpc.create_collection('bad_half', 4, 'cosine', 'none', index_storage => 'halfvec')"
        )
    with pytest.raises(errors.CheckViolation):
        app.execute("SELECT pgvector_grpc.create_collection('bad_kind', 4, index_storage => 'int8')")
    app.execute("SELECT pgvector_grpc.create_collection('ivf_half', 4, 'l2', 'ivfflat', index_storage => 'halfvec')")
    indexdef = app.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = pgvector_grpc.index_name('ivf_half', 'vector')"
    ).fetchone()
    assert indexdef is not None and "halfvec(4)" in indexdef[0] and "halfvec_l2_ops" in indexdef[0]


def test_a_catalogue_from_before_compact_indexes_upgrades_in_place(pg_cluster: PgCluster) -> None:
    conninfo = create_database(pg_cluster, "t_compact_upgrade")
    try:
        asyncio.run(apply_schema(conninfo))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            register_vector(conn)
            conn.execute("SELECT pgvector_grpc.create_collection('legacy', 3)")
            conn.execute("INSERT INTO pgvector_grpc.legacy (id, embedding) VALUES ('a', '[1,0,0]'), ('b', '[0,1,0]')")
            # The catalogue and functions as they were: no compact columns, the earlier signatures.
            conn.execute("ALTER TABLE pgvector_grpc.collections DROP COLUMN index_storage, DROP COLUMN rerank_factor")
            conn.execute(
                "DROP FUNCTION pgvector_grpc.create_collection(text, integer, text, text, integer, integer, integer,"
                " boolean, boolean, text, text, integer)"
            )
            conn.execute(
                "CREATE FUNCTION pgvector_grpc.create_collection(collection text, dimension integer,"
                " metric text DEFAULT 'cosine', index_type text DEFAULT 'hnsw', hnsw_m integer DEFAULT NULL,"
                " hnsw_ef_construction integer DEFAULT NULL, ivfflat_lists integer DEFAULT NULL,"
                " defer_index boolean DEFAULT false, multi_tenant boolean DEFAULT false, text_search text DEFAULT NULL)"
                " RETURNS void LANGUAGE sql AS ''"
            )
            conn.execute(
                "DROP FUNCTION pgvector_grpc.search_documents(text, vector, integer, jsonpath, double precision,"
                " integer, boolean, jsonb, boolean, boolean, text, text, double precision, double precision, integer,"
                " integer)"
            )
            conn.execute(
                "CREATE FUNCTION pgvector_grpc.search_documents(collection text, query_embedding vector,"
                " match_count integer DEFAULT 10, filter jsonpath DEFAULT NULL,"
                " min_similarity double precision DEFAULT NULL, ef_search integer DEFAULT 100,"
                " include_embedding boolean DEFAULT false, metadata_contains jsonb DEFAULT NULL,"
                " filter_tz boolean DEFAULT false, filter_document boolean DEFAULT false, tenant text DEFAULT NULL,"
                " query_text text DEFAULT NULL, full_text_weight double precision DEFAULT 1,"
                " semantic_weight double precision DEFAULT 1, rrf_k integer DEFAULT 60)"
                " RETURNS TABLE (id text) LANGUAGE sql AS 'SELECT NULL::text'"
            )
        server = ServerThread(conninfo)  # applies sql/ at start, as every server does
        try:
            with Client(server.address, timeout=30) as client:
                legacy = client.get_collection("legacy")
                assert legacy.index == HnswIndex() and legacy.index.storage == "vector"
                assert [h.id for h in client.search("legacy", [1, 0.1, 0], top_k=2)] == ["a", "b"]
                client.create_collection("compact", 3, index=HnswIndex(storage="bit", rerank_factor=3))
                client.ingest("compact", [Document("x", None, {}, [1, 0, 0]), Document("y", None, {}, [0, 1, 0])])
                assert [h.id for h in client.search("compact", [1, 0.1, 0], top_k=1)] == ["x"]
        finally:
            server.stop()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            overloads = conn.execute(
                "SELECT proname, count(*) FROM pg_proc WHERE pronamespace = 'pgvector_grpc'::regnamespace"
                " AND proname IN ('create_collection', 'search_documents') GROUP BY proname ORDER BY proname"
            ).fetchall()
            assert overloads == [("create_collection", 1), ("search_documents", 1)]
            catalogue = conn.execute(
                "SELECT name, index_storage, rerank_factor FROM pgvector_grpc.collections ORDER BY name"
            ).fetchall()
            assert ("legacy", "vector", None) in catalogue and ("compact", "bit", 3) in catalogue
            found = conn.execute("SELECT id FROM pgvector_grpc.search_documents('legacy', '[1,0.1,0]', 1)").fetchall()
            assert found == [("a",)]
    finally:
        drop_database(pg_cluster, "t_compact_upgrade")
