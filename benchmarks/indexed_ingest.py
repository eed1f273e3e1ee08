"""Ingest into a collection that has its HNSW index vs ChromaDB's `add` (which builds its index as it
goes), and the bulk path (defer the index, load, BuildIndex): same data, same batch size, same run.
Also: how much the parallel maintenance workers of PostgreSQL give an HNSW build."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import chromadb
import psycopg
from chromadb.config import Settings
from pgvector_grpc import Client, Document, DocumentColumns, HnswIndex

from benchmarks.harness import clustered

# HNSW aligned on both sides: cosine, 16 neighbours, ef_construction 64 (pgvector's defaults).
M, EF_CONSTRUCTION = 16, 64


def metadata(i: int) -> dict[str, object]:
    return {"cat": f"c{i % 10}", "rare": f"r{i % 100}", "tiny": f"t{i % 1000}", "i": i}


def chroma_add(vectors: list, batch: int) -> float:
    """Docs/s of ChromaDB `add` in batches (PersistentClient, in-process)."""
    with tempfile.TemporaryDirectory() as tmp:
        client = chromadb.PersistentClient(
            path=str(Path(tmp) / "chroma"), settings=Settings(anonymized_telemetry=False)
        )
        collection = client.create_collection(
            "bench", configuration={"hnsw": {"space": "cosine", "max_neighbors": M, "ef_construction": EF_CONSTRUCTION}}
        )
        started = time.perf_counter()
        for start in range(0, len(vectors), batch):
            stop = min(start + batch, len(vectors))
            collection.add(
                ids=[f"doc-{i:07d}" for i in range(start, stop)],
                embeddings=vectors[start:stop],
                documents=[f"text {i}" for i in range(start, stop)],
                metadatas=[metadata(i) for i in range(start, stop)],  # type: ignore[misc]
            )
        rate = len(vectors) / (time.perf_counter() - started)
        assert collection.count() == len(vectors)
    return rate


def ours(client: Client, name: str, vectors: list, batch: int, *, columnar: bool, defer: bool) -> tuple[float, float]:
    """Docs/s of Ingest into an HNSW collection (or, deferred, of Ingest + BuildIndex), and the
    seconds BuildIndex took of it."""
    client.create_collection(name, len(vectors[0]), index=HnswIndex(M, EF_CONSTRUCTION), defer_index=defer)
    started = time.perf_counter()
    if columnar:
        ids = [f"doc-{i:07d}" for i in range(len(vectors))]
        contents = [f"text {i}" for i in range(len(vectors))]
        documents: object = DocumentColumns(ids, vectors, contents, [metadata(i) for i in range(len(vectors))])
    else:
        documents = (Document(f"doc-{i:07d}", f"text {i}", metadata(i), v) for i, v in enumerate(vectors))
    client.ingest(name, documents, batch_size=batch, on_conflict="fail")  # type: ignore[arg-type]
    loaded = time.perf_counter()
    if defer:
        client.build_index(name)
    finished = time.perf_counter()
    assert client.count(name) == len(vectors)
    return len(vectors) / (finished - started), finished - loaded


def build_seconds(conninfo: str, collection: str, workers: int) -> float:
    """Seconds of a CREATE INDEX (HNSW) on the collection's table with this many parallel workers."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
        conn.execute("DROP INDEX IF EXISTS pgvector_grpc.bench_build")
        started = time.perf_counter()
        conn.execute(
            f'CREATE INDEX bench_build ON pgvector_grpc."{collection}" USING hnsw (embedding vector_cosine_ops)'
            f" WITH (m = {M}, ef_construction = {EF_CONSTRUCTION})"
        )
        elapsed = time.perf_counter() - started
        conn.execute("DROP INDEX pgvector_grpc.bench_build")
    return elapsed


def run(conninfo: str, address: str, n: int, dim: int, batch: int) -> list[dict[str, object]]:
    vectors = clustered(n, dim, seed=3)
    chroma = chroma_add(list(vectors), batch)
    results: list[dict[str, object]] = []
    with Client(address, timeout=3600) as client:
        for label, columnar, defer in (
            ("Ingest into an HNSW collection", False, False),
            ("Ingest into an HNSW collection, columnar", True, False),
            ("bulk: deferred index, Ingest + BuildIndex", False, True),
        ):
            name = f"indexed_{int(columnar)}_{int(defer)}"
            rate, build = ours(client, name, vectors, batch, columnar=columnar, defer=defer)
            results.append(
                {
                    "what": f"{label} vs Chroma add, {n} x {dim}, batch {batch}",
                    "ours": f"{rate:,.0f} docs/s" + (f" (build {build:.1f} s)" if defer else ""),
                    "reference": f"{chroma:,.0f} docs/s (Chroma add)",
                    "ratio": rate / chroma,
                }
            )
        serial, parallel = build_seconds(conninfo, "indexed_0_0", 0), build_seconds(conninfo, "indexed_0_0", 2)
        results.append(
            {
                "what": f"HNSW build {n} x {dim}, max_parallel_maintenance_workers 2 vs 0",
                "ours": f"{parallel:.1f} s",
                "reference": f"{serial:.1f} s",
                "ratio": serial / parallel,
            }
        )
        for name in ("indexed_0_0", "indexed_1_0", "indexed_0_1"):
            client.delete_collection(name)
    return results
