"""Compact vector indexes: index size, recall@10 after re-ranking and p50 of halfvec and bit next to
the full-precision (vector) index, on the same data in the same run.

One collection per storage, all HNSW (m 16, ef_construction 64, the server's ef_search 100). The
documents are ingested once (columnar Ingest) and copied into the other collections in SQL; each
index is then built as BuildIndex builds it (pgvector_grpc.create_vector_index, parallel workers)
with maintenance_work_mem large enough for the graph. Queries come from the data's own distribution;
the truth is the exact top 10 by cosine (numpy). Each query runs on every storage in turn (from a
different one each time), so that the box's load moves them alike. Next to each recall, "no index"
is what the storage's values alone allow (candidates by exact halfvec or Hamming distance, in
numpy): the gap between the two is the HNSW graph's, the rest the quantization's. Only the ratios
carry.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import numpy as np
import psycopg
from pgvector_grpc import Client, DocumentColumns, HnswIndex
from pgvector_grpc_common.vocabulary import DEFAULT_RERANK_FACTORS, VECTOR_STORAGES, VectorStorage

from benchmarks.harness import clustered, percentiles
from benchmarks.search import in_turn, timed

BUILD_MEMORY = "4GB"
BIT_FACTORS = (10, 20, 50, 100)  # the default (10) up to the largest allowed
# (label, collection storage, per-query rerank factor or None for the collection's default)
Variant = tuple[str, VectorStorage, int | None]


def variants() -> list[Variant]:
    half = DEFAULT_RERANK_FACTORS["halfvec"]
    return [
        ("vector", "vector", None),
        (f"halfvec, rerank {half}", "halfvec", None),
        *[(f"bit, rerank {f}", "bit", f) for f in BIT_FACTORS],
    ]


def name_of(storage: VectorStorage, dim: int) -> str:
    return f"compact_{storage}_{dim}"


def load(client: Client, conn: psycopg.Connection[Any], vectors: np.ndarray) -> dict[VectorStorage, dict[str, float]]:
    """The three collections, indexed; per storage its index size in bytes and build seconds."""
    dim = vectors.shape[1]
    for storage in VECTOR_STORAGES:
        client.create_collection(name_of(storage, dim), dim, index=HnswIndex(storage=storage), defer_index=True)
    ids = [f"{i}" for i in range(len(vectors))]
    client.ingest(name_of("vector", dim), DocumentColumns(ids, vectors), batch_size=max(100, 4_000_000 // (dim * 4)))
    built: dict[VectorStorage, dict[str, float]] = {}
    for storage in VECTOR_STORAGES:
        name = name_of(storage, dim)
        if storage != "vector":
            conn.execute(
                f'INSERT INTO pgvector_grpc."{name}" (id, content, metadata, embedding)'
                f' SELECT id, content, metadata, embedding FROM pgvector_grpc."{name_of("vector", dim)}"'
            )
        conn.execute(f"SET maintenance_work_mem = '{BUILD_MEMORY}'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        started = time.perf_counter()
        conn.execute("SELECT pgvector_grpc.create_vector_index(%s)", (name,))
        seconds = time.perf_counter() - started
        conn.execute(f'VACUUM ANALYZE pgvector_grpc."{name}"')
        row = conn.execute(
            "SELECT pg_relation_size(to_regclass(format('pgvector_grpc.%%I', pgvector_grpc.index_name(%s, 'vector'))))",
            (name,),
        ).fetchone()
        assert row is not None and row[0]
        built[storage] = {"bytes": float(row[0]), "seconds": seconds}
    return built


def truth(vectors: np.ndarray, queries: np.ndarray) -> list[set[str]]:
    """The exact top 10 of each query (the vectors are unit length: cosine = dot product)."""
    found = []
    for start in range(0, len(queries), 50):
        sims = queries[start : start + 50] @ vectors.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        found += [{str(i) for i in row} for row in top]
    return found


def ceiling(
    vectors: np.ndarray, queries: np.ndarray, exact: list[set[str]], storage: VectorStorage, factor: int
) -> float:
    """Recall@10 when the candidates are the exact nearest by the index's own values (halfvec: the
    vectors rounded to half precision; bit: the Hamming distance of their sign bits), no index:
    what the storage with this re-rank factor reaches on this data at best, the graph aside."""
    if storage == "halfvec":
        rounded = vectors.astype(np.float16).astype(np.float32)

        def nearest(q: np.ndarray) -> np.ndarray:
            return np.argsort(-(rounded @ q.astype(np.float16).astype(np.float32)), kind="stable")
    else:
        bits = np.packbits(vectors > 0, axis=1)
        ones = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)

        def nearest(q: np.ndarray) -> np.ndarray:
            return np.argsort(ones[np.bitwise_xor(bits, np.packbits(q > 0))].sum(axis=1), kind="stable")

    found = []
    for q, truth in zip(queries, exact, strict=True):
        candidates = nearest(q)[: 10 * factor]
        top = candidates[np.argsort(-(vectors[candidates] @ q))[:10]]
        found.append(len({str(i) for i in top} & truth) / 10)
    return float(np.mean(found))


def measure(client: Client, dim: int, queries: np.ndarray, exact: list[set[str]]) -> dict[str, tuple[float, float]]:
    """Per variant (recall@10, p50 ms) through the server."""
    runs = variants()
    samples: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    recalls: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for q in queries[:30]:  # warm every index
        for _, storage, factor in runs:
            client.search(name_of(storage, dim), q, top_k=10, rerank_factor=factor, include_metadata=False)
    for qi, q in enumerate(queries):
        calls = [
            partial(
                timed,
                samples[label],
                client.search,
                name_of(storage, dim),
                q,
                top_k=10,
                rerank_factor=factor,
                include_content=False,
                include_metadata=False,
            )
            for label, storage, factor in runs
        ]
        for (label, _, _), hits in zip(runs, in_turn(qi, *calls), strict=True):
            recalls[label].append(len({h.id for h in hits} & exact[qi]) / 10)
    return {label: (float(np.mean(recalls[label])), percentiles(samples[label])[0]) for label, _, _ in runs}


def rows_for(
    dim: int,
    n: int,
    built: dict[VectorStorage, dict[str, float]],
    measured: dict[str, tuple[float, float]],
    ceilings: dict[str, float],
) -> list[dict[str, object]]:
    full_bytes, full_seconds = built["vector"]["bytes"], built["vector"]["seconds"]
    full_recall, full_p50 = measured["vector"]
    mib = 2**20
    rows: list[dict[str, object]] = [
        {
            "what": f"compact {n // 1000}k x {dim}: vector index (reference)",
            "ours": f"{full_bytes / mib:.1f} MiB, recall {full_recall:.3f}, p50 {full_p50:.2f} ms",
            "reference": f"build {full_seconds:.0f} s",
            "ratio": 1.0,
        }
    ]
    for storage in ("halfvec", "bit"):
        size = built[storage]["bytes"]
        rows.append(
            {
                "what": f"compact {n // 1000}k x {dim}: {storage} index size",
                "ours": f"{size / mib:.1f} MiB (build {built[storage]['seconds']:.0f} s)",
                "reference": f"{full_bytes / mib:.1f} MiB (vector)",
                "ratio": size / full_bytes,
            }
        )
    for label, (recall, p50) in measured.items():
        if label == "vector":
            continue
        rows.append(
            {
                "what": f"compact {n // 1000}k x {dim}: {label} recall@10",
                "ours": f"{recall:.3f} ({recall - full_recall:+.3f})",
                "reference": f"{full_recall:.3f} (vector); no index: {ceilings[label]:.3f}",
                "ratio": recall / full_recall,
            }
        )
        rows.append(
            {
                "what": f"compact {n // 1000}k x {dim}: {label} p50",
                "ours": f"{p50:.2f} ms",
                "reference": f"{full_p50:.2f} ms (vector)",
                "ratio": p50 / full_p50,
            }
        )
    return rows


def run(conninfo: str, address: str, n: int, dims: tuple[int, ...], queries_n: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    for dim in dims:
        mixture = clustered(n + queries_n, dim, seed=7)  # queries come from the data's own distribution
        vectors, queries = mixture[:n], mixture[n:]
        with Client(address, timeout=3600) as client, psycopg.connect(conninfo, autocommit=True) as conn:
            built = load(client, conn, vectors)
            exact = truth(vectors, queries)
            measured = measure(client, dim, queries, exact)
            for storage in VECTOR_STORAGES:
                client.delete_collection(name_of(storage, dim))
        ceilings = {
            label: ceiling(vectors, queries, exact, storage, factor or DEFAULT_RERANK_FACTORS[storage])
            for label, storage, factor in variants()
            if storage != "vector"
        }
        results += rows_for(dim, n, built, measured, ceilings)
    return results
