"""Hybrid search in the SQL API, called as psql would (plain psycopg, AS the app role): hybrid_search in
Supabase's call form, search_documents with query_text, keyword-only ranking, tenants, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import errors

from tests.sql.conftest import as_tenant

Conn = psycopg.Connection[tuple[Any, ...]]

# (id, content, embedding): "E1234" only in a document far from the query embedding [1, 0, 0].
ROWS = [
    ("near", "pump housing overview", [1.0, 0.0, 0.0]),
    ("close", "valve seat and pump seal", [0.9, 0.3, 0.0]),
    ("mid", "controller manual", [0.5, 0.5, 0.5]),
    ("far", "error E1234 after pump restart", [0.0, 0.0, 1.0]),
    ("text-only", "pump pump pump", None),
]
QUERY = [1.0, 0.0, 0.0]


@pytest.fixture(scope="module", autouse=True)
def seeded(app_db: str) -> None:
    """Collection kb (3 dimensions, full-text index "english") written by the app role."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("SELECT pgvector_grpc.create_collection('kb', 3, text_search => 'english')")
        for doc_id, content, embedding in ROWS:
            conn.execute(
                "INSERT INTO pgvector_grpc.kb (id, content, metadata, embedding) VALUES (%s, %s, %s, %s::vector)",
                (doc_id, content, '{"lang": "en"}', None if embedding is None else str(embedding)),
            )


def brute_force(conn: Conn, query_text: str, k: int, full_text_weight: float, semantic_weight: float) -> list[Any]:
    """(id, fused score) of every document, best first, ties by id: cosine ranks computed here, keyword
    ranks from ts_rank_cd over every row (no index), fused as reciprocal rank fusion."""
    query = np.array(QUERY)
    sims = {
        doc_id: float(np.dot(e, query) / np.linalg.norm(e) / np.linalg.norm(query))
        for doc_id, _, e in ROWS
        if e is not None
    }
    vector_rank = {doc_id: r for r, doc_id in enumerate(sorted(sims, key=lambda d: (-sims[d], d)), 1)}
    relevance = conn.execute(
        "SELECT id, ts_rank_cd(to_tsvector('english', content), q) FROM pgvector_grpc.kb,"
        " websearch_to_tsquery('english', %s) q WHERE to_tsvector('english', content) @@ q",
        (query_text,),
    ).fetchall()
    keyword_rank = {doc_id: r for r, (doc_id, _) in enumerate(sorted(relevance, key=lambda x: (-x[1], x[0])), 1)}
    fused = {
        doc_id: (semantic_weight / (k + vector_rank[doc_id]) if doc_id in vector_rank else 0.0)
        + (full_text_weight / (k + keyword_rank[doc_id]) if doc_id in keyword_rank else 0.0)
        for doc_id in vector_rank.keys() | keyword_rank.keys()
    }
    return [(d, fused[d], keyword_rank.get(d)) for d in sorted(fused, key=lambda d: (-fused[d], d))]


def test_hybrid_search_in_supabases_call_form(app: Conn) -> None:
    cur = app.execute("SELECT * FROM pgvector_grpc.hybrid_search('kb', 'E1234 pump', %s::vector, 3)", (str(QUERY),))
    assert [c.name for c in cur.description or ()] == [
        "id",
        "content",
        "metadata",
        "similarity",
        "keyword_rank",
        "fused_score",
    ]
    rows = cur.fetchall()
    expected = brute_force(app, "E1234 pump", 60, 1.0, 1.0)[:3]
    assert [(r[0], r[4]) for r in rows] == [(d, rank) for d, _, rank in expected]
    assert [r[5] for r in rows] == pytest.approx([score for _, score, _ in expected], rel=1e-12)
    assert rows[0][0] == "far"  # found by the rare term alone, ahead of the nearest document
    # Positional weights and k, as in Supabase's hybrid_search(query_text, query_embedding,
    # match_count, full_text_weight, semantic_weight, rrf_k).
    weighted = app.execute(
        "SELECT id, fused_score FROM pgvector_grpc.hybrid_search('kb', 'pump', %s::vector, 5, 0.5, 2.0, 5)",
        (str(QUERY),),
    ).fetchall()
    expected = brute_force(app, "pump", 5, 0.5, 2.0)[:5]
    assert [r[0] for r in weighted] == [d for d, _, _ in expected]
    assert [r[1] for r in weighted] == pytest.approx([s for _, s, _ in expected], rel=1e-12)


def test_a_null_embedding_ranks_by_keywords_alone(app: Conn) -> None:
    rows = app.execute(
        "SELECT id, similarity, keyword_rank FROM pgvector_grpc.hybrid_search('kb', 'pump', NULL, 10)"
    ).fetchall()
    expected = [(d, None, rank) for d, _, rank in brute_force(app, "pump", 60, 1.0, 0.0) if rank is not None]
    assert rows == expected
    assert rows[0][0] == "text-only"  # three times the word, no embedding


def test_search_documents_takes_the_text_and_keeps_its_old_call_forms(app: Conn) -> None:
    plain = app.execute(
        "SELECT id, keyword_rank, fused_score, exhaustive FROM pgvector_grpc.search_documents('kb', %s::vector, 2)",
        (str(QUERY),),
    ).fetchall()
    assert plain == [("near", None, None, False), ("close", None, None, False)]
    filtered = app.execute(
        "SELECT id FROM pgvector_grpc.search_documents('kb', %s::vector, 10, '$.lang == \"en\"', 0.5)",
        (str(QUERY),),
    ).fetchall()
    assert [r[0] for r in filtered] == ["near", "close", "mid"]
    hybrid = app.execute(
        "SELECT id, keyword_rank FROM pgvector_grpc.search_documents('kb', %s::vector, 2, query_text => 'E1234',"
        ' metadata_contains => \'{"lang": "en"}\')',
        (str(QUERY),),
    ).fetchall()
    assert hybrid == [("far", 1), ("near", None)]
    assert (
        app.execute(
            "SELECT id FROM pgvector_grpc.search_documents('kb', %s::vector, 2, query_text => 'E1234',"
            ' metadata_contains => \'{"lang": "de"}\')',
            (str(QUERY),),
        ).fetchall()
        == []
    )
    signatures = app.execute(
        "SELECT count(*) FROM pg_proc WHERE proname IN ('search_documents', 'create_collection')"
        " AND pronamespace = 'pgvector_grpc'::regnamespace"
    ).fetchone()
    assert signatures == (2,), "upgrading in place leaves no older overload behind"


def test_the_full_text_index_is_generated_and_indexed(app: Conn) -> None:
    row = app.execute(
        "SELECT a.attgenerated, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
        " JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = 'pgvector_grpc.kb'::regclass AND a.attname = 'content_tsv'"
    ).fetchone()
    assert row == ("s", "to_tsvector('english'::regconfig, COALESCE(content, ''::text))")
    index = app.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = pgvector_grpc.index_name('kb', 'text')"
    ).fetchone()
    assert index is not None and "USING gin (content_tsv)" in index[0]
    assert app.execute("SELECT text_search FROM pgvector_grpc.collections WHERE name = 'kb'").fetchone() == ("english",)


def test_bad_configurations_and_missing_indexes_are_refused(app: Conn) -> None:
    with pytest.raises(errors.UndefinedObject, match='text search configuration "klingon" does not exist'):
        app.execute("SELECT pgvector_grpc.create_collection('bad', 3, text_search => 'klingon')")
    assert app.execute("SELECT count(*) FROM pgvector_grpc.collections WHERE name = 'bad'").fetchone() == (0,)
    assert app.execute("SELECT to_regclass('pgvector_grpc.bad')").fetchone() == (None,)
    app.execute("SELECT pgvector_grpc.create_collection('no_text', 3)")
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="has no full-text index"):
        app.execute("SELECT * FROM pgvector_grpc.hybrid_search('no_text', 'pump', '[1,0,0]', 3)")


def test_each_tenant_ranks_only_its_rows_by_keywords(app: Conn) -> None:
    app.execute("SELECT pgvector_grpc.create_collection('mt_text', 3, multi_tenant => true, text_search => 'simple')")
    for tenant, content in (("a", "alpha manual"), ("b", "bravo manual zebracode")):
        with as_tenant(app, tenant):
            app.execute(
                "INSERT INTO pgvector_grpc.mt_text (id, content, embedding) VALUES ('doc', %s, '[1,0,0]')", (content,)
            )
    search = (
        "SELECT id, content, keyword_rank FROM pgvector_grpc.hybrid_search('mt_text', %s, '[1,0,0]', 5, tenant => %s)"
    )
    assert app.execute(search, ("zebracode", "a")).fetchall() == [("doc", "alpha manual", None)]
    assert app.execute(search, ("zebracode", "b")).fetchall() == [("doc", "bravo manual zebracode", 1)]
    assert app.execute(search, ("manual", "a")).fetchall() == [("doc", "alpha manual", 1)]
    assert app.execute(search, ("manual", None)).fetchall() == []  # no tenant, no rows
