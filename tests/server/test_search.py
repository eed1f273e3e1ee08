"""Search and SearchStream: exact order, filtered top-k with the HNSW index, thresholds, bad queries."""

from __future__ import annotations

import math

import grpc
import numpy as np
import psycopg
import pytest
from google.rpc import code_pb2, error_details_pb2
from pgvector_grpc import AsyncClient, Client, Document, Field, InvalidArgumentError, NoIndex, NotFoundError
from pgvector_grpc.v1 import document_pb2, document_service_pb2, document_service_pb2_grpc

from tests.fix_server import ServerThread
from tests.vectors import clustered

DIM = 16
N = 3000


@pytest.fixture(scope="module")
def corpus(server: ServerThread) -> np.ndarray:
    vectors = clustered(N, DIM, 1)
    with Client(server.address) as c:
        c.create_collection("corpus", DIM)
        c.ingest(
            "corpus",
            (Document(f"doc-{i:05d}", f"text {i}", {"bucket": f"b{i % 20}", "i": i}, v) for i, v in enumerate(vectors)),
            batch_size=1000,
        )
    return vectors


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[str]:
    sims = vectors @ query / np.linalg.norm(query)
    if keep is not None:
        sims = np.where(keep, sims, -np.inf)
    order = np.argsort(-sims, kind="stable")[:k]
    return [f"doc-{i:05d}" for i in order if np.isfinite(sims[i])]


def test_scores_and_order_match_exact_search(client: Client, corpus: np.ndarray) -> None:
    query = clustered(1, DIM, 7)[0]
    hits = client.search("corpus", query, top_k=10, ef_search=400)
    assert [h.id for h in hits] == exact_top(corpus, query, 10)
    for hit in hits:
        i = int(hit.id.split("-")[1])
        assert hit.score == pytest.approx(float(corpus[i] @ query), abs=1e-5)
        assert hit.distance == pytest.approx(1 - hit.score, abs=1e-6)
        assert hit.content == f"text {i}" and hit.metadata["i"] == i
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_filtered_search_returns_top_k_through_the_index(client: Client, corpus: np.ndarray) -> None:
    """A 5% filter with the default ef_search: post-filtering alone would return far fewer than k."""
    queries = clustered(30, DIM, 11)
    buckets = np.array([i % 20 for i in range(N)])
    recalls = []
    for q_index, query in enumerate(queries):
        bucket = q_index % 20
        hits = client.search("corpus", query, top_k=20, filter={"bucket": f"b{bucket}"})
        assert len(hits) == 20
        assert all(h.metadata["bucket"] == f"b{bucket}" for h in hits)
        truth = exact_top(corpus, query, 20, buckets == bucket)
        recalls.append(len({h.id for h in hits} & set(truth)) / 20)
    assert np.mean(recalls) >= 0.9


def test_typed_and_dict_filters_agree(client: Client, corpus: np.ndarray) -> None:
    query = clustered(1, DIM, 3)[0]
    typed = client.search("corpus", query, top_k=15, filter=(Field("i") < 1000) & Field("bucket").is_in(["b1", "b2"]))
    plain = client.search("corpus", query, top_k=15, filter={"i": {"$lt": 1000}, "bucket": {"$in": ["b1", "b2"]}})
    assert [h.id for h in typed] == [h.id for h in plain]
    assert all(h.metadata["i"] < 1000 and h.metadata["bucket"] in ("b1", "b2") for h in typed)


def test_min_similarity_and_include_flags(client: Client, corpus: np.ndarray) -> None:
    query = corpus[42]
    hits = client.search("corpus", query, top_k=50, min_similarity=0.9, include_embedding=True)
    assert hits and all(h.score >= 0.9 for h in hits)
    assert hits[0].id == "doc-00042"
    np.testing.assert_array_equal(hits[0].embedding, corpus[42])
    bare = client.search("corpus", query, top_k=3, include_content=False, include_metadata=False)
    assert all(h.content is None and h.metadata == {} and h.embedding is None for h in bare)


def test_search_many_answers_every_query_in_order(client: Client, corpus: np.ndarray) -> None:
    queries = clustered(40, DIM, 5)
    many = client.search_many("corpus", queries, top_k=5, ef_search=200)
    assert len(many) == 40
    for query, hits in zip(queries, many, strict=True):
        assert [h.id for h in hits] == [h.id for h in client.search("corpus", query, top_k=5, ef_search=200)]


async def test_async_search_many_reports_a_bad_query(server: ServerThread, corpus: np.ndarray) -> None:
    async with AsyncClient(server.address) as c:
        assert len(await c.search("corpus", corpus[0], top_k=3)) == 3
        with pytest.raises(InvalidArgumentError) as err:
            await c.search_many("corpus", [corpus[0], corpus[1][:3]], top_k=3)
        assert "query.embedding" in err.value.message
        assert err.value.reason == "DIMENSION_MISMATCH"
        assert [v.field for v in err.value.field_violations] == ["query.embedding"]


def test_search_stream_failure_carries_the_unary_error_details(server: ServerThread, corpus: np.ndarray) -> None:
    def query(request_id: str, vector: np.ndarray) -> document_service_pb2.SearchStreamRequest:
        embedding = document_pb2.Vector(packed=vector.astype("<f4").tobytes())
        search = document_service_pb2.SearchRequest(collection="corpus", embedding=embedding, top_k=3)
        return document_service_pb2.SearchStreamRequest(request_id=request_id, query=search)

    with grpc.insecure_channel(server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        responses = {
            r.request_id: r for r in stub.SearchStream(iter([query("ok", corpus[0]), query("bad", corpus[1][:3])]))
        }
    assert len(responses["ok"].hits) == 3 and not responses["ok"].HasField("status")
    status = responses["bad"].status
    assert status.code == code_pb2.INVALID_ARGUMENT and status.message.startswith("query.embedding: ")
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert [status.details[0].Unpack(info), status.details[1].Unpack(bad_request)] == [True, True]
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "DIMENSION_MISMATCH",
        "pgvector-grpc",
        {"expected": str(DIM), "actual": "3"},
    )
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("query.embedding", f"expected {DIM} dimensions, got 3")
    ]
    assert (responses["bad"].error_code, responses["bad"].error_message) == (status.code, status.message)


def test_congruent_with_search_documents_in_sql(client: Client, corpus: np.ndarray, database: str) -> None:
    query = clustered(1, DIM, 9)[0]
    hits = client.search("corpus", query, top_k=10, filter={"bucket": "b3"})
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT id, similarity FROM pgvector_grpc.search_documents('corpus', %s::vector, 10,"
            ' metadata_contains => \'{"bucket": "b3"}\')',
            (str(query.tolist()),),
        ).fetchall()
    assert [r[0] for r in rows] == [h.id for h in hits]
    assert [r[1] for r in rows] == pytest.approx([h.score for h in hits], abs=1e-6)


def test_seed_call_form_on_the_documents_collection(client: Client, database: str) -> None:
    vec = np.zeros(1536, dtype=np.float32)
    vec[0] = 1
    client.ingest("documents", [Document("seed", "hello", {"lang": "en"}, vec)])
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            'SELECT id, content, metadata, similarity FROM search_documents(%s::vector, 5, \'{"lang": "en"}\')',
            (str(vec.tolist()),),
        ).fetchall()
    assert rows == [("seed", "hello", {"lang": "en"}, pytest.approx(1.0))]


@pytest.mark.parametrize("metric", ["l2", "inner_product"])
def test_other_metrics_score_higher_for_closer(client: Client, collection_name: str, metric: str) -> None:
    client.create_collection(collection_name, 2, metric=metric, index=NoIndex())  # type: ignore[arg-type]
    client.ingest(collection_name, [Document("near", None, {}, [1, 0]), Document("far", None, {}, [-1, 0])])
    hits = client.search(collection_name, [1, 0], top_k=2)
    assert [h.id for h in hits] == ["near", "far"]
    assert hits[0].score > hits[1].score
    expected = {"l2": (0.0, -2.0), "inner_product": (1.0, -1.0)}[metric]
    assert (hits[0].score, hits[1].score) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"top_k": 0}, "top_k", "BAD_TOP_K"),
        ({"top_k": 1001}, "top_k", "BAD_TOP_K"),
        ({"embedding": [1.0] * 3}, "embedding", "DIMENSION_MISMATCH"),
        ({"embedding": [math.nan] * DIM}, "embedding", "NON_FINITE_VALUE"),
        ({"embedding": [0.0] * DIM}, "embedding", "ZERO_VECTOR"),
        ({"embedding": []}, "embedding", "DIMENSION_MISMATCH"),
        ({"filter": {"i": {"$gt": None}}}, "filter.condition.value", "BAD_FILTER"),
        ({"filter": {"i": {"$in": [[1]]}}}, "filter.condition.value.list_value.values[0]", "BAD_FILTER"),
        ({"ef_search": 5000}, "ef_search", "BAD_EF"),
        ({"probes": -1}, "probes", "BAD_PROBES"),
        ({"probes": 40000}, "probes", "BAD_PROBES"),
    ],
)
def test_bad_queries(client: Client, corpus: np.ndarray, kwargs: dict, field: str, reason: str) -> None:
    args = {"embedding": corpus[0], "top_k": 5, **kwargs}
    with pytest.raises(InvalidArgumentError) as err:
        client.search("corpus", args.pop("embedding"), **args)
    assert (err.value.field, err.value.reason) == (field, reason)


def test_malformed_filter_dicts_fail_in_the_client(client: Client, corpus: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\$regex"):
        client.search("corpus", corpus[0], filter={"i": {"$regex": "x"}})


def test_unknown_collection(client: Client) -> None:
    with pytest.raises(NotFoundError):
        client.search("nope", [1.0, 2.0])


def test_chroma_where_filters_keep_working(client: Client, corpus: np.ndarray) -> None:
    from pgvector_grpc import from_chroma_where

    where = {
        "$and": [{"bucket": {"$in": ["b1", "b2"]}}, {"i": {"$gte": 100}}, {"$or": [{"i": {"$lt": 500}}, {"i": 2001}]}]
    }
    hits = client.search("corpus", corpus[0], top_k=20, filter=from_chroma_where(where))
    assert len(hits) == 20
    assert all(h.metadata["bucket"] in ("b1", "b2") and h.metadata["i"] >= 100 for h in hits)
    assert all(h.metadata["i"] < 500 or h.metadata["i"] == 2001 for h in hits)
    assert client.count("corpus", from_chroma_where(where)) == client.count("corpus", where)
