"""The selectivity switch: few matching rows are scanned exactly (exhaustive), many walk the index."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector_grpc import Client, Document, Field, NoIndex, SearchResults

from tests.fix_server import ServerThread
from tests.vectors import clustered

DIM = 16
N = 3000
# Below any exact_scan_limit (at least ef_search, 100 by default): scanned exactly.
FEW = Field("i") < 60
# 2,900 of 3,000 rows: more than exact_scan_limit at ef_search 100 (sqrt(3000 * 100) = 548).
MANY = Field("i") >= 100


@pytest.fixture(scope="module")
def corpus(server: ServerThread) -> np.ndarray:
    vectors = clustered(N, DIM, 21)
    with Client(server.address) as c:
        c.create_collection("selective", DIM)
        c.ingest(
            "selective",
            (Document(f"doc-{i:05d}", f"text {i}", {"i": i, "tag": f"t{i % 7}"}, v) for i, v in enumerate(vectors)),
            batch_size=1000,
        )
    return vectors


def exact_ids(vectors: np.ndarray, query: np.ndarray, k: int, keep: np.ndarray) -> list[str]:
    sims = np.where(keep, vectors @ query, -np.inf)
    order = np.argsort(-sims, kind="stable")[:k]
    return [f"doc-{i:05d}" for i in order if np.isfinite(sims[i])]


def test_a_small_filter_is_answered_exactly(client: Client, corpus: np.ndarray) -> None:
    keep = np.arange(N) < 60
    for query in clustered(10, DIM, 5):
        hits = client.search("selective", query, top_k=10, filter=FEW)
        assert isinstance(hits, SearchResults) and hits.exhaustive
        assert [h.id for h in hits] == exact_ids(corpus, query, 10, keep)
        exact = client.search("selective", query, top_k=10, filter=FEW, exact=True)
        assert exact.exhaustive
        assert [(h.id, h.distance) for h in hits] == [(h.id, h.distance) for h in exact]


def test_a_large_filter_walks_the_index_and_still_returns_k(client: Client, corpus: np.ndarray) -> None:
    keep = np.arange(N) >= 100
    recalls = []
    for query in clustered(10, DIM, 6):
        hits = client.search("selective", query, top_k=10, filter=MANY)
        assert not hits.exhaustive
        assert len(hits) == 10 and all(h.metadata["i"] >= 100 for h in hits)
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        recalls.append(len({h.id for h in hits} & set(exact_ids(corpus, query, 10, keep))) / 10)
    assert np.mean(recalls) >= 0.9


def test_exhaustive_says_whether_the_answer_is_exact(client: Client, corpus: np.ndarray, collection_name: str) -> None:
    query = clustered(1, DIM, 7)[0]
    assert not client.search("selective", query, top_k=5).exhaustive  # the HNSW index chose them
    assert client.search("selective", query, top_k=5, exact=True).exhaustive
    nothing = client.search("selective", query, top_k=5, filter=Field("i") < 0)
    assert nothing == [] and nothing.exhaustive
    above_all = client.search("selective", query, top_k=5, filter=FEW, min_similarity=1.5)
    assert above_all == [] and above_all.exhaustive
    client.create_collection(collection_name, DIM, index=NoIndex())
    client.ingest(collection_name, [Document("only", None, {}, query)])
    unindexed = client.search(collection_name, query, top_k=5)
    assert [h.id for h in unindexed] == ["only"] and unindexed.exhaustive


def test_min_similarity_and_include_apply_on_both_plans(client: Client, corpus: np.ndarray) -> None:
    query = clustered(1, DIM, 8)[0]
    for where in (FEW, MANY):
        every = client.search("selective", query, top_k=10, filter=where)
        threshold = every[4].score
        above = client.search("selective", query, top_k=10, filter=where, min_similarity=threshold)
        assert [h.id for h in above] == [h.id for h in every if h.score >= threshold]
        assert above.exhaustive == every.exhaustive
        bare = client.search(
            "selective",
            query,
            top_k=3,
            filter=where,
            include_content=False,
            include_metadata=False,
            include_embedding=True,
        )
        assert all(h.content is None and h.metadata == {} and h.embedding is not None for h in bare)


def test_filters_on_the_id_content_and_times_take_the_switch_too(client: Client, corpus: np.ndarray) -> None:
    query = clustered(1, DIM, 9)[0]
    by_id = client.search("selective", query, top_k=3, filter=Field.id().is_in(["doc-00001", "doc-00002"]))
    assert sorted(h.id for h in by_id) == ["doc-00001", "doc-00002"] and by_id.exhaustive
    by_content = client.search("selective", query, top_k=3, filter=Field.content() == "text 7")
    assert [h.id for h in by_content] == ["doc-00007"] and by_content.exhaustive
    many_by_content = client.search("selective", query, top_k=10, filter=Field.content().contains("text"))
    assert len(many_by_content) == 10 and not many_by_content.exhaustive


def test_search_stream_carries_the_flag(client: Client, corpus: np.ndarray) -> None:
    queries = clustered(4, DIM, 10)
    few = client.search_many("selective", queries, top_k=10, filter=FEW)
    many = client.search_many("selective", queries, top_k=10, filter=MANY)
    assert [r.exhaustive for r in few] == [True] * 4 and [r.exhaustive for r in many] == [False] * 4
    assert [[h.id for h in r] for r in few] == [
        [h.id for h in client.search("selective", q, top_k=10, filter=FEW, exact=True)] for q in queries
    ]


def test_search_documents_in_sql_takes_the_same_plans(client: Client, corpus: np.ndarray, database: str) -> None:
    query = clustered(1, DIM, 12)[0]
    sql = (
        "SELECT id, exhaustive FROM pgvector_grpc.search_documents('selective', %s::vector, 10, filter => %s::jsonpath)"
    )
    with psycopg.connect(database) as conn:
        few = conn.execute(sql, (str(query.tolist()), "$.i < 60")).fetchall()
        many = conn.execute(sql, (str(query.tolist()), "$.i >= 100")).fetchall()
    assert [r[0] for r in few] == [h.id for h in client.search("selective", query, top_k=10, filter=FEW)]
    assert {r[1] for r in few} == {True} and {r[1] for r in many} == {False} and len(many) == 10
