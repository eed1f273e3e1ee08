"""Search: ours over gRPC vs the same SQL through psycopg vs ChromaDB, same data, same run.

Data: clustered unit vectors with metadata ``cat`` (10 values), ``rare`` (100) and ``tiny`` (1,000),
so that an equality filter matches 10%, 1% or 0.1% of the rows. Each query runs on our server and
on the raw SQL in turn (interleaved, starting from a different side each time), so that the box's
load moves both alike; ChromaDB, in-process, answers the same queries in a pass of its own. Only
the ratios carry.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import chromadb
import grpc
import numpy as np
import psycopg
from chromadb.api.collection_configuration import CreateHNSWConfiguration
from chromadb.config import Settings
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, Document
from pgvector_grpc_common.migration.sources.chroma import release_client
from pgvector_grpc_server.domain.models import CollectionSpec, Condition, SearchQuery
from pgvector_grpc_server.storage.pool import set_config_statement
from pgvector_grpc_server.storage.search import PlanMemory, search_settings, search_statement

from benchmarks.harness import clustered, percentiles

NAME = "bench"
EF_SEARCH = 100  # the server's default
FILTERS = (("cat", "c", 10), ("rare", "r", 100), ("tiny", "t", 1000))  # 10%, 1%, 0.1% of the rows
FUNCTION_SQL = (
    "SELECT id, content, metadata::text, similarity FROM pgvector_grpc.search_documents(%s, %s, %s, %s::jsonpath)"
)


def metadata(i: int) -> dict[str, str]:
    return {key: f"{prefix}{i % values}" for key, prefix, values in FILTERS}


def load_ours(client: Client, conn: psycopg.Connection[Any], vectors: np.ndarray) -> None:
    client.create_collection(NAME, vectors.shape[1])
    client.ingest(NAME, (Document(f"{i}", "x" * 200, metadata(i), v) for i, v in enumerate(vectors)), batch_size=1000)
    conn.execute(f"VACUUM ANALYZE pgvector_grpc.{NAME}")


def load_chroma(path: Path, vectors: np.ndarray) -> tuple[Any, Any]:
    chroma = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    # The same HNSW as ours: cosine, 16 links, ef_construction 64, ef_search 100.
    hnsw: CreateHNSWConfiguration = {
        "space": "cosine",
        "max_neighbors": 16,
        "ef_construction": 64,
        "ef_search": EF_SEARCH,
    }
    collection = chroma.create_collection(NAME, configuration={"hnsw": hnsw})
    for start in range(0, len(vectors), 5000):
        ids = range(start, min(start + 5000, len(vectors)))
        collection.add(
            ids=[f"{i}" for i in ids],
            embeddings=vectors[start : start + 5000],
            documents=["x" * 200 for _ in ids],
            metadatas=[metadata(i) for i in ids],
        )
    return chroma, collection


class RawSearch:
    """The statements the server runs for a query (its plan memory too), run directly through psycopg,
    on a session set as the server's pooled sessions are (storage/sessions.py)."""

    def __init__(self, conn: psycopg.Connection[Any], dim: int) -> None:
        self._conn = conn
        self._spec = CollectionSpec(NAME, dim)
        self._plans = PlanMemory()
        conn.execute(*set_config_statement((), list(search_settings(EF_SEARCH).items())))

    def __call__(self, query: np.ndarray, where: dict[str, str] | None = None) -> list[Any]:
        condition = None if where is None else Condition(tuple(where), "eq", next(iter(where.values())))
        statement = search_statement(self._spec, SearchQuery(NAME, query, 10, condition), EF_SEARCH, self._plans)
        rows = self._conn.execute(statement.sql, statement.params, binary=True).fetchall()
        if statement.switch_key is not None and statement.plan == "switch":
            self._plans.remember(statement.switch_key, "scan" if rows[0][7] else "walk")
        return rows


def in_turn(index: int, *calls: Callable[[], Any]) -> list[Any]:
    """Run every side once, in an order shuffled by ``index`` (so that none always follows the same
    neighbour: ChromaDB's threads, or a gRPC channel idle while psycopg ran); their results in the
    order given."""
    results: list[Any] = [None] * len(calls)
    for which in random.Random(index).sample(range(len(calls)), len(calls)):
        results[which] = calls[which]()
    return results


def timed(samples: list[float], call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    t = time.perf_counter()
    result = call(*args, **kwargs)
    samples.append((time.perf_counter() - t) * 1000)
    return result


def run_function(conn: psycopg.Connection[Any], query: np.ndarray) -> list[Any]:
    return conn.execute(FUNCTION_SQL, (NAME, query, 10, None), binary=True).fetchall()


def exact_ids(vectors: np.ndarray, query: np.ndarray, keep: np.ndarray | None = None) -> set[str]:
    sims = vectors @ query
    if keep is not None:
        sims = np.where(keep, sims, -np.inf)
    return {str(i) for i in np.argsort(-sims)[:10] if np.isfinite(sims[i])}


def unfiltered(
    client: Client, raw: RawSearch, conn: psycopg.Connection[Any], chroma: Any, health: Any, queries: np.ndarray
) -> tuple[list[dict[str, object]], float]:
    floor: list[float] = []
    ours: list[float] = []
    same_sql: list[float] = []
    function: list[float] = []
    theirs: list[float] = []
    for qi, q in enumerate(queries):
        in_turn(
            qi,
            partial(timed, same_sql, raw, q),
            partial(timed, ours, client.search, NAME, q, top_k=10),
            partial(timed, function, run_function, conn, q),
            partial(timed, floor, health.Check, health_pb2.HealthCheckRequest()),
        )
    for q in queries:  # ChromaDB in a pass of its own, as in filtered()
        timed(theirs, chroma.query, query_embeddings=[q], n_results=10)
    (o50, o99), (r50, r99) = percentiles(ours), percentiles(same_sql)
    f50, c50, e50 = percentiles(function)[0], percentiles(theirs)[0], percentiles(floor)[0]
    return [
        {
            "what": "Search p50, k=10, no filter",
            "ours": f"{o50:.2f} ms",
            "reference": f"{r50:.2f} ms (same SQL, psycopg)",
            "ratio": o50 / r50,
            "overhead_ms": o50 - r50,
            "goal_at_most": 1.3,  # issue 10
        },
        {
            "what": "Search p99, k=10, no filter",
            "ours": f"{o99:.2f} ms",
            "reference": f"{r99:.2f} ms",
            "ratio": o99 / r99,
        },
        {
            "what": "floor: a no-database RPC (health Check) vs same SQL",
            "ours": f"{e50:.2f} ms",
            "reference": f"{r50:.2f} ms (same SQL, psycopg)",
            "ratio": e50 / r50,
        },
        {
            "what": "Search p50 vs search_documents() via psycopg",
            "ours": f"{o50:.2f} ms",
            "reference": f"{f50:.2f} ms (PL/pgSQL function)",
            "ratio": o50 / f50,
        },
        {
            "what": "Search p50 vs ChromaDB query (in-process)",
            "ours": f"{o50:.2f} ms",
            "reference": f"{c50:.2f} ms (ChromaDB)",
            "ratio": o50 / c50,
            "goal_at_most": 1.0,  # issue 10: p50 no slower than ChromaDB's in-process query
        },
    ], o50


def filtered(
    client: Client,
    raw: RawSearch,
    chroma: Any,
    vectors: np.ndarray,
    queries: np.ndarray,
    key: str,
    prefix: str,
    values: int,
    unfiltered_p50: float,
) -> list[dict[str, object]]:
    labels = np.arange(len(vectors)) % values
    ours: list[float] = []
    same_sql: list[float] = []
    theirs: list[float] = []
    full = {"ours": 0, "chroma": 0}
    recall: dict[str, list[float]] = {"ours": [], "chroma": []}
    exhaustive = 0
    hits_of: list[list[str]] = []
    for qi, q in enumerate(queries):
        where = {key: f"{prefix}{qi % values}"}
        _, hits = in_turn(
            qi,
            partial(timed, same_sql, raw, q, where),
            partial(timed, ours, client.search, NAME, q, top_k=10, filter=where),
        )
        exhaustive += hits.exhaustive
        hits_of.append([h.id for h in hits])
    # ChromaDB in a pass of its own: interleaved, its threads (a filtered query keeps them busy for
    # tens of milliseconds) weighed on the timing of the others on this 2-core box.
    answers_of = [
        timed(theirs, chroma.query, query_embeddings=[q], n_results=10, where={key: f"{prefix}{qi % values}"})["ids"][0]
        for qi, q in enumerate(queries)
    ]
    for qi, q in enumerate(queries):
        truth = exact_ids(vectors, q, labels == qi % values)
        for side, ids in (("ours", hits_of[qi]), ("chroma", answers_of[qi])):
            full[side] += len(ids) == 10
            recall[side].append(len(set(ids) & truth) / len(truth))
    o50, r50, c50 = percentiles(ours)[0], percentiles(same_sql)[0], percentiles(theirs)[0]
    share = 100 / values
    n = len(queries)
    return [
        {
            "what": f"filtered {share:g}%: p50 vs ChromaDB",
            "ours": f"{o50:.2f} ms, {full['ours']}/{n} full k, recall {np.mean(recall['ours']):.3f}",
            "reference": f"{c50:.2f} ms, {full['chroma']}/{n} full, recall {np.mean(recall['chroma']):.3f}",
            "ratio": o50 / c50,
            "goal_at_most": 0.1,  # issue 10: at least 10x faster than ChromaDB's filtered query
        },
        {
            "what": f"filtered {share:g}%: p50 vs our unfiltered p50",
            "ours": f"{o50:.2f} ms, exhaustive {exhaustive}/{n}",
            "reference": f"{unfiltered_p50:.2f} ms",
            "ratio": o50 / unfiltered_p50,
            "goal_at_most": 2.0,  # issue 10
        },
        {
            "what": f"filtered {share:g}%: p50 vs same SQL",
            "ours": f"{o50:.2f} ms",
            "reference": f"{r50:.2f} ms (psycopg)",
            "ratio": o50 / r50,
        },
    ]


def stream_vs_unary(client: Client, queries: np.ndarray) -> dict[str, object]:
    t = time.perf_counter()
    for q in queries:
        client.search(NAME, q, top_k=10)
    unary = len(queries) / (time.perf_counter() - t)
    t = time.perf_counter()
    answers = client.search_many(NAME, queries, top_k=10)
    stream = len(queries) / (time.perf_counter() - t)
    assert len(answers) == len(queries)
    return {
        "what": "SearchStream vs unary Search, one client",
        "ours": f"{stream:,.0f} q/s",
        "reference": f"{unary:,.0f} q/s",
        "ratio": stream / unary,
        "goal_at_least": 2.0,  # issue 2
    }


def run(conninfo: str, address: str, n: int, dim: int, queries_n: int) -> list[dict[str, object]]:
    mixture = clustered(n + queries_n, dim, seed=1)  # queries come from the data's own distribution
    vectors, queries = mixture[:n], mixture[n:]
    with (
        Client(address, timeout=600) as client,
        psycopg.connect(conninfo, autocommit=True) as conn,
        tempfile.TemporaryDirectory(prefix="bench-chroma-") as tmp,
        grpc.insecure_channel(address) as channel,
    ):
        register_vector(conn)
        load_ours(client, conn, vectors)
        chroma_client, chroma = load_chroma(Path(tmp), vectors)
        raw = RawSearch(conn, dim)
        health = health_pb2_grpc.HealthStub(channel)
        for q in queries[:50]:  # warm every path
            client.search(NAME, q, top_k=10)
            raw(q)
            chroma.query(query_embeddings=[q], n_results=10)
        results, unfiltered_p50 = unfiltered(client, raw, conn, chroma, health, queries)
        few = queries[: min(len(queries), 300)]
        for key, prefix, values in FILTERS:
            results += filtered(client, raw, chroma, vectors, few, key, prefix, values, unfiltered_p50)
        results.append(stream_vs_unary(client, queries))
        client.delete_collection(NAME)
        release_client(chroma_client)
    return results
