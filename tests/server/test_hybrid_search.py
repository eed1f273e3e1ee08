"""Hybrid keyword + vector search through the real server: fusion of the two rankings checked against a
brute-force computation, filters and tenants on both sides, keyword-only mode, and the errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector_grpc import Client, Document, FailedPreconditionError, HnswIndex, InvalidArgumentError, NoIndex

from tests.fix_pg import PgCluster, create_database, drop_database
from tests.fix_server import ServerThread
from tests.security.keys import bearer, create_key
from tests.vectors import clustered

DIM = 16
N = 300
WORDS = ("pump", "valve", "filter", "motor", "sensor", "cable", "gear", "seal", "hose", "panel")


def content_of(i: int, rng: np.random.Generator) -> str:
    """A few common words and the document's own rare code, item<i>."""
    return " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6)))) + f" item{i}"


@pytest.fixture(scope="module")
def corpus(server: ServerThread) -> tuple[np.ndarray, list[str]]:
    """Collection "parts" (HNSW, full-text index "simple"): N documents in groups a and b."""
    vectors = clustered(N, DIM, 21)
    rng = np.random.default_rng(4)
    contents = [content_of(i, rng) for i in range(N)]
    with Client(server.address) as c:
        created = c.create_collection("parts", DIM, text_search="simple")
        assert created.text_search == "simple"
        c.ingest(
            "parts",
            (Document(f"d{i:03d}", contents[i], {"group": "ab"[i % 2]}, v) for i, v in enumerate(vectors)),
            batch_size=100,
        )
    return vectors, contents


def group_a() -> np.ndarray:
    return np.arange(N) % 2 == 0


def keyword_ranking(database: str, query_text: str, keep: np.ndarray | None) -> list[tuple[str, float]]:
    """Every document matching ``query_text``, by ts_rank_cd of its content computed afresh (not from
    the generated column), best first, ties by id: the brute-force keyword ranking."""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT id, ts_rank_cd(to_tsvector('simple', content), q)::float8"
            " FROM pgvector_grpc.parts, websearch_to_tsquery('simple', %s) q"
            " WHERE to_tsvector('simple', content) @@ q",
            (query_text,),
        ).fetchall()
    if keep is not None:
        rows = [(doc_id, rank) for doc_id, rank in rows if keep[int(doc_id[1:])]]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def vector_ranking(vectors: np.ndarray, query: np.ndarray, keep: np.ndarray | None) -> list[str]:
    sims = vectors.astype(np.float64) @ query / np.linalg.norm(query)
    order = [int(i) for i in np.argsort(-sims, kind="stable") if keep is None or keep[i]]
    return [f"d{i:03d}" for i in order]


def fused_ranking(
    vector_ids: list[str], keyword_ids: list[str], k: int, vector_weight: float, keyword_weight: float
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of two rankings, as the proto defines it; best first, ties by id."""
    vector_rank = {doc_id: r for r, doc_id in enumerate(vector_ids, 1)}
    keyword_rank = {doc_id: r for r, doc_id in enumerate(keyword_ids, 1)}
    scores = {
        doc_id: (vector_weight / (k + vector_rank[doc_id]) if doc_id in vector_rank else 0.0)
        + (keyword_weight / (k + keyword_rank[doc_id]) if doc_id in keyword_rank else 0.0)
        for doc_id in vector_rank.keys() | keyword_rank.keys()
    }
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


@pytest.mark.parametrize("keep", [None, "group a"])
def test_fused_scores_and_ranks_equal_a_brute_force_fusion(
    client: Client, corpus: tuple[np.ndarray, list[str]], database: str, keep: str | None
) -> None:
    vectors, _ = corpus
    mask = group_a() if keep else None
    query = clustered(1, DIM, 99)[0]
    k, vector_weight, keyword_weight, candidates, top_k = 10, 1.2, 0.8, 15, 10
    keywords = keyword_ranking(database, "pump valve", mask)
    assert len(keywords) > candidates, "the query text must match more documents than the candidates"
    vector_ids = vector_ranking(vectors, query, mask)[:candidates]
    keyword_ids = [doc_id for doc_id, _ in keywords[:candidates]]
    expected = fused_ranking(vector_ids, keyword_ids, k, vector_weight, keyword_weight)[:top_k]

    hits = client.search(
        "parts",
        query,
        query_text="pump valve",
        top_k=top_k,
        filter={"group": "a"} if keep else None,
        exact=True,
        rrf_k=k,
        vector_weight=vector_weight,
        keyword_weight=keyword_weight,
        candidates=candidates,
    )
    assert hits.exhaustive
    assert [h.id for h in hits] == [doc_id for doc_id, _ in expected]
    for hit, (_, fused) in zip(hits, expected, strict=True):
        assert hit.fused_score == pytest.approx(fused, rel=1e-12)
        assert hit.score == hit.fused_score
        assert hit.keyword_rank == (keyword_ids.index(hit.id) + 1 if hit.id in keyword_ids else None)
        i = int(hit.id[1:])
        assert hit.vector_score == pytest.approx(float(vectors[i] @ query / np.linalg.norm(query)), abs=1e-5)
        assert hit.distance == pytest.approx(1 - hit.vector_score, abs=1e-6)
        if mask is not None:
            assert hit.metadata == {"group": "a"}
    # Both rankings contributed documents the other did not hold.
    assert any(h.keyword_rank is None for h in hits)
    assert any(h.id not in vector_ids for h in hits)


def test_fusion_returns_documents_only_one_ranking_finds(client: Client, corpus: tuple[np.ndarray, list[str]]) -> None:
    """A rare code that only the keyword ranking finds (the document is semantically far from the
    query) comes back alongside the nearest document, which does not contain it."""
    vectors, _ = corpus
    query = clustered(1, DIM, 5)[0]
    ranking = vector_ranking(vectors, query, None)
    far, nearest = ranking[-1], ranking[0]
    code = f"item{int(far[1:])}"

    vector_only = client.search("parts", query, top_k=10)
    keyword_only = client.search("parts", query_text=code, top_k=10)
    hybrid = client.search("parts", query, query_text=code, top_k=10)

    assert far not in {h.id for h in vector_only} and [h.id for h in keyword_only] == [far]
    by_id = {h.id: h for h in hybrid}
    assert far in by_id and nearest in by_id
    assert by_id[far].keyword_rank == 1 and by_id[nearest].keyword_rank is None
    assert by_id[far].vector_score is not None and by_id[far].vector_score < by_id[nearest].vector_score  # type: ignore[operator]
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)


def test_filters_restrict_both_rankings_through_the_index(client: Client, corpus: tuple[np.ndarray, list[str]]) -> None:
    """Without exact: the vector ranking walks the HNSW index (or scans, as the selectivity switch
    picks), the keyword ranking the GIN index; the filter holds for both."""
    vectors, _ = corpus
    query = vectors[1]  # a group b document
    in_b, in_a = "item1", "item2"  # the rare codes of d001 (group b) and d002 (group a)
    for where in ({"group": "a"}, {"group": "a", "absent": {"$exists": False}}):
        hits = client.search("parts", query, query_text=f"{in_a} or {in_b}", top_k=20, filter=where)
        assert len(hits) == 20
        assert all(h.metadata["group"] == "a" for h in hits)
        ids = {h.id for h in hits}
        assert "d002" in ids and "d001" not in ids
        assert [h.id for h in hits if h.keyword_rank is not None] == ["d002"]
    assert "d001" in {h.id for h in client.search("parts", query, query_text=f"{in_a} or {in_b}", top_k=20)}


def test_keyword_mode_ranks_by_keyword_relevance_alone(
    client: Client, corpus: tuple[np.ndarray, list[str]], database: str
) -> None:
    vectors, _ = corpus
    expected = keyword_ranking(database, "pump", None)[:15]
    assert len(expected) == 15
    hits = client.search("parts", query_text="pump", top_k=15)
    assert hits.exhaustive
    assert [(h.id, h.keyword_rank) for h in hits] == [(doc_id, r) for r, (doc_id, _) in enumerate(expected, 1)]
    assert [h.score for h in hits] == pytest.approx([relevance for _, relevance in expected], rel=1e-6)
    assert all(h.vector_score is None and h.fused_score is None and h.distance == 0 for h in hits)
    # An embedding given to a keyword search fills in vector_score and leaves the order alone.
    with_vector = client.search("parts", vectors[0], query_text="pump", top_k=15, mode="keyword")
    assert [h.id for h in with_vector] == [h.id for h in hits]
    assert with_vector[0].vector_score == pytest.approx(float(vectors[0] @ vectors[int(hits[0].id[1:])]), abs=1e-5)
    # Web-search syntax: a quoted phrase matches the words in that order.
    phrase = client.search("parts", query_text='"pump valve"', top_k=50)
    assert phrase and all("pump valve" in (h.content or "") for h in phrase)
    assert len(phrase) == sum("pump valve" in c for c in corpus[1])


def test_text_search_configurations_are_validated_and_named_as_stored(client: Client) -> None:
    for bad in ("klingon", "no such name", "pg_catalog.klingon", "a.b.c"):
        with pytest.raises(InvalidArgumentError) as err:
            client.create_collection("cfg", 4, text_search=bad)
        assert (err.value.field, err.value.reason) == ("collection.text_search", "BAD_TEXT_SEARCH")
        assert err.value.message.startswith("collection.text_search: ")
    assert client.create_collection("cfg_default", 4, text_search="").text_search == "simple"
    assert client.create_collection("cfg_english", 4, text_search="pg_catalog.english").text_search == "english"
    assert client.get_collection("cfg_english").text_search == "english"
    assert client.create_collection("cfg_none", 4).text_search is None
    # English stems: "pumps" finds "pumping".
    client.ingest("cfg_english", [Document("x", "pumping station", {}, [1, 0, 0, 0])])
    assert [h.id for h in client.search("cfg_english", query_text="pumps")] == ["x"]
    assert client.search("cfg_default", query_text="pumps") == []


def test_query_text_needs_a_full_text_index_and_sound_options(
    client: Client, corpus: tuple[np.ndarray, list[str]]
) -> None:
    client.create_collection("plain", 4, index=NoIndex())
    client.ingest("plain", [Document("x", "pump", {}, [1, 0, 0, 0])])
    with pytest.raises(FailedPreconditionError) as failed:
        client.search("plain", [1, 0, 0, 0], query_text="pump")
    assert failed.value.message.startswith("query_text: ")
    assert failed.value.reason == "TEXT_SEARCH_NOT_ENABLED"

    E16 = [1.0] + [0.0] * (DIM - 1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"query_text": "pump", "mode": "hybrid"}, "embedding"),
        ({"embedding": E16, "mode": "keyword"}, "query_text"),
        ({"embedding": E16, "query_text": "pump", "mode": "vector"}, "query_text"),
        ({"embedding": E16, "query_text": "pump", "vector_weight": -1.0}, "hybrid.vector_weight"),
        ({"embedding": E16, "query_text": "pump", "keyword_weight": float("nan")}, "hybrid.keyword_weight"),
        (
            {"embedding": E16, "query_text": "pump", "vector_weight": 0.0, "keyword_weight": 0.0},
            "hybrid.vector_weight",
        ),
        ({"embedding": E16, "query_text": "pump", "rrf_k": 10_001}, "hybrid.rrf_k"),
        ({"embedding": E16, "query_text": "pump", "candidates": 5, "top_k": 10}, "hybrid.candidates"),
        ({"query_text": "pump", "min_similarity": 0.5}, "min_similarity"),
        ({"query_text": "a\x00b"}, "query_text"),
        ({"query_text": "x" * 10_001}, "query_text"),
    ]
    for arguments, field in cases:
        with pytest.raises(InvalidArgumentError) as err:
            client.search("parts", **arguments)
        assert err.value.field == field, arguments


@pytest.fixture(scope="module")
def tenants(pg_cluster: PgCluster) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    """A server that authenticates (keys exist when it starts) and the keys of two tenants and an admin,
    in a database of their own: keys in the module's database would make its unauthenticated server
    require them too, refusing the tests that run after this one."""
    database = create_database(pg_cluster, "t_hybrid_tenants")
    keys = {
        "admin": create_key(database, "admin", tenant="operations"),
        "alpha": create_key(database, "writer", tenant="alpha"),
        "beta": create_key(database, "writer", tenant="beta"),
    }
    running = ServerThread(database, api_key_cache_seconds=60)
    yield running, keys
    running.stop()
    drop_database(pg_cluster, "t_hybrid_tenants")


def test_tenants_do_not_see_each_others_rows_through_the_keyword_ranking(
    tenants: tuple[ServerThread, dict[str, str]],
) -> None:
    server, keys = tenants

    def as_(who: str) -> Client:
        return Client(server.address, timeout=30, metadata=bearer(keys[who]))

    with as_("admin") as admin, as_("alpha") as alpha, as_("beta") as beta:
        admin.create_collection("shared", 4, multi_tenant=True, text_search="simple")
        beta.ingest("shared", [Document("b1", "beta ledger zebracode", {}, [1, 0, 0, 0]), Document("s", "beta")])
        alpha.ingest("shared", [Document("a1", "alpha ledger", {}, [1, 0, 0, 0]), Document("s", "alpha")])
        assert alpha.search("shared", query_text="zebracode") == []
        assert alpha.search("shared", query_text="beta") == []
        assert [h.id for h in alpha.search("shared", [1, 0, 0, 0], query_text="ledger zebracode")] == ["a1"]
        hits = alpha.search("shared", [1, 0, 0, 0], query_text="ledger", top_k=10)
        assert [(h.id, h.keyword_rank) for h in hits] == [("a1", 1)]
        assert [h.id for h in beta.search("shared", query_text="zebracode")] == ["b1"]
        assert [(h.id, h.content) for h in alpha.search("shared", query_text="alpha")] == [
            ("a1", "alpha ledger"),
            ("s", "alpha"),
        ]


@pytest.mark.parametrize("index", [HnswIndex(storage="halfvec"), HnswIndex(storage="bit", rerank_factor=8)])
def test_a_compact_index_serves_the_vector_ranking_of_a_hybrid_search(
    client: Client, corpus: tuple[np.ndarray, list[str]], index: HnswIndex
) -> None:
    """On a halfvec or bit index the vector ranking re-ranks the index's candidates by exact
    distance: the nearest document is found and scored as the full-precision collection scores it."""
    vectors, contents = corpus
    name = f"parts_{index.storage}"
    client.create_collection(name, DIM, index=index, text_search="simple")
    client.ingest(name, (Document(f"d{i:03d}", contents[i], {}, v) for i, v in enumerate(vectors)), batch_size=100)
    query = clustered(1, DIM, 5)[0]
    ranking = vector_ranking(vectors, query, None)
    code = f"item{int(ranking[-1][1:])}"

    hybrid = {h.id: h for h in client.search(name, query, query_text=code, top_k=10)}
    full = {h.id: h for h in client.search("parts", query, query_text=code, top_k=10)}

    assert ranking[0] in hybrid and ranking[-1] in hybrid
    assert hybrid[ranking[0]].vector_score == pytest.approx(full[ranking[0]].vector_score, abs=1e-6)
    assert hybrid[ranking[-1]].keyword_rank == 1


def test_search_many_runs_hybrid_keyword_and_vector_queries_on_one_stream(
    client: Client, corpus: tuple[np.ndarray, list[str]]
) -> None:
    """Each query of the stream answers as the unary call with the same text and embedding does."""
    query = clustered(1, DIM, 5)[0]
    texts = ["item7", None, "item11"]
    embeddings = [query, query, None]
    streamed = client.search_many("parts", embeddings, query_texts=texts, top_k=5, rrf_k=20)
    unary = [
        client.search("parts", query, query_text="item7", top_k=5, rrf_k=20),
        client.search("parts", query, top_k=5),
        client.search("parts", query_text="item11", top_k=5),
    ]
    assert [[(h.id, h.keyword_rank) for h in hits] for hits in streamed] == [
        [(h.id, h.keyword_rank) for h in hits] for hits in unary
    ]
    assert streamed[0][0].fused_score is not None and streamed[1][0].fused_score is None
    with pytest.raises(ValueError):
        client.search_many("parts", [query], query_texts=["a", "b"])
