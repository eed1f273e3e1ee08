"""Compact vector indexes (halfvec, bit) with the full vectors kept for re-ranking.

The index is walked by its own expression for rerank_factor x top_k candidates; the hits must be
exactly those candidates' top_k by true distance, in that order, whatever the plan or the caller
(the server's inlined statement, search_documents in SQL, a tenant under row-level security)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, Document, Field, HnswIndex, IvfflatIndex, NoIndex
from pgvector_grpc.errors import InvalidArgumentError, from_rpc_error
from pgvector_grpc.v1 import collection_pb2, collection_service_pb2, collection_service_pb2_grpc
from pgvector_grpc_common.vocabulary import DEFAULT_RERANK_FACTORS, VECTOR_STORAGES, Index
from pgvector_grpc_server.domain.models import CollectionSpec, Condition, SearchQuery
from pgvector_grpc_server.storage.pool import set_config_statement
from pgvector_grpc_server.storage.search import PlanMemory, probes_of, search_settings, search_statement

from tests.cli.run import cli, json_of, ok
from tests.fix_server import ServerThread
from tests.vectors import clustered

DIM = 128
N = 2000
TOP_K = 10
EF_SEARCH = 100  # the server's default, and at least top_k x every factor used here
MANY = Field("i") >= 100  # 1,900 rows: more than exact_scan_limit (sqrt(2000 * 100) = 447), walks the index
FEW = Field("i") < 60  # fewer than ef_search: scanned exactly
COLLECTIONS: dict[str, Index] = {
    "half": HnswIndex(storage="halfvec"),
    "bits": HnswIndex(storage="bit", rerank_factor=8),
    "bits_ivf": IvfflatIndex(lists=10, storage="bit", rerank_factor=8),
}
# What each index holds of an embedding (written out here, independently of sql/020) and how it compares.
INDEX_ORDER = {
    "halfvec": f"d.embedding::halfvec({DIM}) <=> %(q)s::halfvec({DIM})",
    "bit": f"binary_quantize(d.embedding)::bit({DIM}) <~> binary_quantize(%(q)s::vector)",
}
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def corpus(server: ServerThread) -> np.ndarray:
    vectors = clustered(N, DIM, 31)
    with Client(server.address) as c:
        for name, index in COLLECTIONS.items():
            # IVFFlat picks its lists from the rows present: built after the load (BuildIndex)
            c.create_collection(name, DIM, index=index, defer_index=isinstance(index, IvfflatIndex))
            c.ingest(
                name, (Document(f"doc-{i:05d}", None, {"i": i}, v) for i, v in enumerate(vectors)), batch_size=1000
            )
            if isinstance(index, IvfflatIndex):
                c.build_index(name)
    return vectors


@pytest.fixture
def conn(database: str, server: ServerThread) -> Any:
    """A connection to the module's database, once the server has applied sql/ to it."""
    with psycopg.connect(database, autocommit=True) as connection:
        register_vector(connection)
        yield connection


def queries(corpus: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Points near documents of the corpus (its own centres), normalised."""
    rng = np.random.default_rng(seed)
    near = corpus[rng.integers(0, N, n)] + rng.normal(scale=0.05, size=(n, DIM))
    return (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)


def index_candidates(conn: Conn, name: str, query: np.ndarray, count: int, where: str = "true") -> list[str]:
    """The first ``count`` rows of the collection's index walk, under the server's search settings
    (an IVFFlat index's probes among them).
    A filtered walk could be planned as a sort of every row instead (the server's own plans are
    checked in test_the_servers_walk_orders_by_the_index_expression): other scans are ruled out."""
    order = INDEX_ORDER[COLLECTIONS[name].storage]
    statement = f"SELECT d.id FROM pgvector_grpc.{name} d WHERE {where} ORDER BY {order} LIMIT %(n)s"
    probes = probes_of(CollectionSpec(name, DIM, index=COLLECTIONS[name]), SearchQuery(name, query, TOP_K))
    with conn.transaction():
        conn.execute(*set_config_statement(list(search_settings(EF_SEARCH, probes).items())))
        conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + statement, {"q": query, "n": count}))
        assert "Index Scan using pgvg_" in plan, plan
        return [r[0] for r in conn.execute(statement, {"q": query, "n": count})]


def exact_order(conn: Conn, name: str, query: np.ndarray, ids: list[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` nearest of ``ids`` by true cosine distance, computed row by row (no index)."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            f"WITH c AS MATERIALIZED (SELECT id, (embedding <=> %s)::float8 AS distance"
            f" FROM pgvector_grpc.{name} WHERE id = ANY(%s))"
            " SELECT id, distance FROM c ORDER BY distance, id LIMIT %s",
            (query, ids, k),
        )
    ]


def recall(client: Client, name: str, qs: np.ndarray, **options: Any) -> float:
    found = []
    for q in qs:
        truth = {h.id for h in client.search(name, q, top_k=TOP_K, exact=True)}
        found.append(len(truth & {h.id for h in client.search(name, q, top_k=TOP_K, **options)}) / TOP_K)
    return float(np.mean(found))


def test_the_index_stores_its_compact_form_and_the_collection_says_so(client: Client, corpus: np.ndarray) -> None:
    assert client.get_collection("half").index == HnswIndex(16, 64, "halfvec", DEFAULT_RERANK_FACTORS["halfvec"])
    assert client.get_collection("bits").index == HnswIndex(16, 64, "bit", 8)
    assert client.get_collection("bits_ivf").index == IvfflatIndex(10, "bit", 8)
    listed = {c.name: c.index for c in client.list_collections()}
    assert listed["bits"].storage == "bit" and listed["half"].storage == "halfvec"


@pytest.mark.parametrize("name", sorted(COLLECTIONS))
def test_hits_are_the_index_candidates_in_exact_order(
    client: Client, corpus: np.ndarray, conn: Conn, name: str
) -> None:
    factor = COLLECTIONS[name].rerank_factor
    for q in queries(corpus, 5, 1):
        hits = client.search(name, q, top_k=TOP_K)
        assert not hits.exhaustive
        candidates = index_candidates(conn, name, q, TOP_K * factor)
        assert len(candidates) == TOP_K * factor
        assert [(h.id, h.distance) for h in hits] == exact_order(conn, name, q, candidates, TOP_K)
        # a factor for this query only: a different candidate set, re-ranked the same way
        wide = client.search(name, q, top_k=TOP_K, rerank_factor=factor + 2)
        wider = index_candidates(conn, name, q, TOP_K * (factor + 2))
        assert [(h.id, h.distance) for h in wide] == exact_order(conn, name, q, wider, TOP_K)


def test_the_servers_walk_orders_by_the_index_expression(corpus: np.ndarray, conn: Conn) -> None:
    q = queries(corpus, 1, 2)[0]
    for name, index in COLLECTIONS.items():
        spec = CollectionSpec(name, DIM, index=index)
        for where in (None, Condition(("i",), "gte", 100)):
            statement = search_statement(spec, SearchQuery(name, q, TOP_K, where), EF_SEARCH, PlanMemory())
            with conn.transaction():
                conn.execute(*set_config_statement(list(search_settings(EF_SEARCH).items())))
                plan = "\n".join(r[0] for r in conn.execute(b"EXPLAIN " + statement.sql, statement.params))
            assert "Index Scan using pgvg_" in plan, plan


def test_recall_after_reranking_is_high_and_the_factor_matters(client: Client, corpus: np.ndarray) -> None:
    qs = queries(corpus, 20, 3)
    assert recall(client, "half", qs) >= 0.95
    bits = recall(client, "bits", qs)
    assert bits >= 0.9
    assert recall(client, "bits", qs, rerank_factor=1) < bits - 0.1  # the Hamming order alone is coarse


@pytest.mark.parametrize("name", ["half", "bits"])
def test_filters_take_the_switch_on_compact_indexes(client: Client, corpus: np.ndarray, conn: Conn, name: str) -> None:
    factor = COLLECTIONS[name].rerank_factor
    for q in queries(corpus, 3, 4):
        many = client.search(name, q, top_k=TOP_K, filter=MANY)
        assert not many.exhaustive and len(many) == TOP_K
        assert all(int(h.id[4:]) >= 100 for h in many)
        candidates = index_candidates(conn, name, q, TOP_K * factor, "(d.metadata->>'i')::int >= 100")
        assert [(h.id, h.distance) for h in many] == exact_order(conn, name, q, candidates, TOP_K)
        few = client.search(name, q, top_k=TOP_K, filter=FEW)
        assert few.exhaustive
        exact = client.search(name, q, top_k=TOP_K, filter=FEW, exact=True)
        assert [(h.id, h.distance) for h in few] == [(h.id, h.distance) for h in exact]


def test_search_documents_in_sql_reranks_as_the_server_does(client: Client, corpus: np.ndarray, conn: Conn) -> None:
    sql = (
        "SELECT id, distance, exhaustive FROM pgvector_grpc.search_documents(%s, %s, %s, rerank_factor => %s,"
        " filter => %s::jsonpath)"
    )
    for name in COLLECTIONS:
        for q in queries(corpus, 3, 5):
            for factor in (None, 3):
                hits = client.search(name, q, top_k=TOP_K, rerank_factor=factor)
                rows = conn.execute(sql, (name, q, TOP_K, factor, None)).fetchall()
                assert [(r[0], r[1]) for r in rows] == [(h.id, h.distance) for h in hits]
                assert {r[2] for r in rows} == {False}
            # The function's filtered walk may be planned otherwise than the server's (sql/030):
            # its own candidates, still re-ranked into exact order.
            rows = conn.execute(sql, (name, q, TOP_K, None, "$.i >= 100")).fetchall()
            assert len(rows) == TOP_K and all(int(r[0][4:]) >= 100 for r in rows)
            assert [r[1] for r in rows] == sorted(r[1] for r in rows)


@pytest.mark.parametrize(
    ("dimension", "metric", "index", "field"),
    [
        (8, "l2", HnswIndex(storage="bit"), "collection.index.storage"),
        (8, "inner_product", IvfflatIndex(storage="bit"), "collection.index.storage"),
        (8, "cosine", HnswIndex(rerank_factor=4), "collection.index.rerank_factor"),
        (8, "cosine", HnswIndex(storage="halfvec", rerank_factor=101), "collection.index.rerank_factor"),
        (8, "cosine", HnswIndex(storage="bit", rerank_factor=-1), "collection.index.rerank_factor"),
        (2001, "cosine", HnswIndex(), "collection.dimension"),
        (4001, "cosine", HnswIndex(storage="halfvec"), "collection.dimension"),
        (16001, "cosine", HnswIndex(storage="bit"), "collection.dimension"),
    ],
)
def test_bad_compact_definitions_are_invalid_argument(
    client: Client, collection_name: str, dimension: int, metric: Any, index: Index, field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        client.create_collection(collection_name, dimension, metric=metric, index=index)
    assert err.value.field == field
    assert collection_name not in {c.name for c in client.list_collections()}


def test_compact_indexes_reach_past_the_vector_limit(client: Client, collection_name: str, database: str) -> None:
    client.create_collection(collection_name + "_h", 4000, index=HnswIndex(storage="halfvec"))
    client.create_collection(collection_name + "_b", 16000, index=HnswIndex(storage="bit"))
    client.ingest(collection_name + "_b", [Document("one", None, {}, np.linspace(-1, 1, 16000))])
    assert [h.id for h in client.search(collection_name + "_b", np.linspace(-1, 1, 16000))] == ["one"]


def test_a_storage_needs_an_index_and_a_query_factor_its_range(
    client: Client, corpus: np.ndarray, server: ServerThread, collection_name: str
) -> None:
    index = collection_pb2.IndexSpec(none=collection_pb2.NoIndex(), storage=collection_pb2.VECTOR_STORAGE_HALF)
    request = collection_service_pb2.CreateCollectionRequest(
        collection=collection_pb2.Collection(name=collection_name, dimension=4, index=index)
    )
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as raw:
        collection_service_pb2_grpc.CollectionServiceStub(channel).CreateCollection(request)
    error = from_rpc_error(raw.value)
    assert isinstance(error, InvalidArgumentError) and error.field == "collection.index.storage"
    with pytest.raises(InvalidArgumentError) as err:
        client.search("bits", corpus[0], rerank_factor=101)
    assert err.value.field == "rerank_factor"
    # Nothing to re-rank without a compact index: the factor is accepted and changes nothing.
    client.create_collection(collection_name, DIM, index=NoIndex())
    client.ingest(collection_name, [Document(f"d{i}", None, {}, v) for i, v in enumerate(corpus[:50])])
    plain = client.search(collection_name, corpus[0], top_k=5)
    assert [h.id for h in client.search(collection_name, corpus[0], top_k=5, rerank_factor=7)] == [h.id for h in plain]


def test_halfvec_collections_refuse_values_beyond_half_precision(client: Client, corpus: np.ndarray) -> None:
    too_large = np.full(DIM, 70000.0, dtype=np.float32)
    with pytest.raises(InvalidArgumentError) as err:
        client.ingest("half", [Document("huge", None, {}, too_large)])
    assert err.value.field is not None and err.value.field.endswith("documents[0].embedding")
    with pytest.raises(InvalidArgumentError) as err:
        client.search("half", too_large)
    assert err.value.field == "embedding"
    client.ingest("bits", [Document("huge", None, {}, too_large)])  # bits keep signs only
    client.delete("bits", ["huge"])


def test_sql_default_rerank_factors_are_the_vocabularys(conn: Conn) -> None:
    for storage in VECTOR_STORAGES:
        row = conn.execute("SELECT pgvector_grpc.default_rerank_factor(%s)", (storage,)).fetchone()
        assert row == (DEFAULT_RERANK_FACTORS[storage],)


def test_the_command_line_creates_and_shows_compact_indexes(server: ServerThread, collection_name: str) -> None:
    def create(name: str, options: str) -> list[str]:
        return ["collections", "create", name, *shlex.split(options)]

    at = server.address
    created = json_of(*create(collection_name, "--dimension 8 --storage bit --rerank-factor 6"), server=at)
    assert created["index"] == {"type": "hnsw", "m": 16, "ef_construction": 64, "storage": "bit", "rerank_factor": 6}
    shown = ok("collections", "info", collection_name, server=at).stdout
    assert "hnsw (m=16, ef_construction=64, storage=bit, rerank_factor=6)" in shown
    refused = cli(*create("x", "--dimension 8 --index none --storage halfvec"), server=at)
    assert refused.returncode != 0 and "--storage" in refused.stderr
    bad_metric = cli(*create("y", "--dimension 8 --metric l2 --storage bit"), server=at)
    assert bad_metric.returncode != 0 and "index.storage" in bad_metric.stderr

    with Client(at) as client:
        client.ingest(collection_name, [Document(f"e{i}", None, {}, np.eye(8)[i]) for i in range(8)])
    query = ["search", collection_name, "--vector", "[1, 0.5, 0, 0, 0, 0, 0, 0]", "--top-k", "2"]
    walked = json_of(*query, "--rerank-factor", "3", "--read-from-primary", server=at)
    scanned = json_of(*query, "--exact", server=at)
    assert [h["id"] for h in walked] == [h["id"] for h in scanned] == ["e0", "e1"]
    too_many = cli(*query, "--rerank-factor", "101", server=at)
    assert too_many.returncode != 0 and "rerank_factor" in too_many.stderr


def test_the_readme_example_runs_twice(server: ServerThread) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## Compact vectors (halfvec, bit) with re-ranking\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block in the section"
    code = match.group(1).replace("127.0.0.1:50051", server.address)
    for _ in range(2):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), {})
        assert printed.getvalue() == "HnswIndex(m=16, ef_construction=64, storage='bit', rerank_factor=10) ['a']\n"
