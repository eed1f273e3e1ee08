"""Search vs the same SQL run directly; SearchStream vs unary; filtered search completeness and recall."""

from __future__ import annotations

import time

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, Document

from benchmarks.harness import clustered, percentiles

SQL = (
    "SELECT id, content, metadata::text, similarity FROM pgvector_grpc.search_documents"
    "('bench', %s, %s, %s::jsonpath, NULL, %s)"
)
CATEGORY = '$."category".type() == "string" && $."category" == "c{}"'


def load(client: Client, vectors: np.ndarray) -> np.ndarray:
    dim = vectors.shape[1]
    client.create_collection("bench", dim)
    client.ingest(
        "bench",
        (
            Document(f"doc-{i:07d}", "x" * 200, {"category": f"c{i % 10}", "source": f"src-{i % 97}"}, v)
            for i, v in enumerate(vectors)
        ),
        batch_size=1000,
    )
    return vectors


def exact(vectors: np.ndarray, query: np.ndarray, k: int, keep: np.ndarray | None = None) -> set[int]:
    sims = vectors @ query
    if keep is not None:
        sims = np.where(keep, sims, -np.inf)
    return set(np.argsort(-sims)[:k].tolist())


def latency(client: Client, conn: psycopg.Connection, queries: np.ndarray, ef: int) -> list[dict[str, object]]:
    ours, raw = [], []
    for q in queries:  # interleaved, one query each in turn
        t = time.perf_counter()
        conn.execute(SQL, (q, 10, None, ef), binary=True).fetchall()
        raw.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        client.search("bench", q, top_k=10, ef_search=ef)
        ours.append((time.perf_counter() - t) * 1000)
    (o50, o99), (r50, r99) = percentiles(ours), percentiles(raw)
    return [
        {
            "what": f"Search p50, k=10, ef {ef}",
            "ours": f"{o50:.2f} ms",
            "reference": f"{r50:.2f} ms (same SQL, psycopg)",
            "ratio": o50 / r50,
            "overhead_ms": o50 - r50,
        },
        {
            "what": f"Search p99, k=10, ef {ef}",
            "ours": f"{o99:.2f} ms",
            "reference": f"{r99:.2f} ms",
            "ratio": o99 / r99,
        },
    ]


def stream_vs_unary(client: Client, queries: np.ndarray) -> dict[str, object]:
    t = time.perf_counter()
    for q in queries:
        client.search("bench", q, top_k=10)
    unary = len(queries) / (time.perf_counter() - t)
    t = time.perf_counter()
    answers = client.search_many("bench", queries, top_k=10)
    stream = len(queries) / (time.perf_counter() - t)
    assert len(answers) == len(queries)
    return {
        "what": "SearchStream vs unary Search, one client",
        "ours": f"{stream:,.0f} q/s",
        "reference": f"{unary:,.0f} q/s",
        "ratio": stream / unary,
    }


def filtered(client: Client, vectors: np.ndarray, queries: np.ndarray, key: str, values: int) -> dict[str, object]:
    n = len(vectors)
    labels = np.array([i % values for i in range(n)])
    full, recalls = 0, []
    for qi, q in enumerate(queries):
        value = qi % values
        hits = client.search("bench", q, top_k=10, filter={key: f"{'c' if key == 'category' else 'src-'}{value}"})
        full += len(hits) == 10
        truth = exact(vectors, q, 10, labels == value)
        recalls.append(len({int(h.id.split("-")[1]) for h in hits} & truth) / 10)
    share = 100 / values
    return {
        "what": f"filtered search ({share:.0f}% of rows), default ef",
        "ours": f"{full}/{len(queries)} full k, recall {np.mean(recalls):.3f}",
        "reference": "exact top-10 on the filtered rows",
        "ratio": float(np.mean(recalls)),
    }


def recall_unfiltered(client: Client, vectors: np.ndarray, queries: np.ndarray) -> dict[str, object]:
    recalls = [
        len({int(h.id.split("-")[1]) for h in client.search("bench", q, top_k=10)} & exact(vectors, q, 10)) / 10
        for q in queries
    ]
    return {
        "what": "unfiltered recall@10, default ef",
        "ours": f"{np.mean(recalls):.3f}",
        "reference": "exact",
        "ratio": float(np.mean(recalls)),
    }


def run(conninfo: str, address: str, n: int, dim: int, queries_n: int) -> list[dict[str, object]]:
    with Client(address, timeout=600) as client, psycopg.connect(conninfo, autocommit=True) as conn:
        register_vector(conn)
        mixture = clustered(n + queries_n, dim, seed=1)  # queries come from the data's own distribution
        vectors = load(client, mixture[:n])
        conn.execute("VACUUM ANALYZE pgvector_grpc.bench")
        queries = mixture[n:]
        for q in queries[:50]:  # warm both paths
            client.search("bench", q, top_k=10)
            conn.execute(SQL, (q, 10, None, 100), binary=True).fetchall()
        results = latency(client, conn, queries, 40) + latency(client, conn, queries, 100)
        results.append(stream_vs_unary(client, queries))
        results.append(recall_unfiltered(client, vectors, queries[:200]))
        results.append(filtered(client, vectors, queries[:200], "category", 10))
        results.append(filtered(client, vectors, queries[:100], "source", 97))
        client.delete_collection("bench")
    return results
