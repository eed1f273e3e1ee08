"""Ingest into a collection that has its HNSW index vs ChromaDB's `add` (which builds its index as it
goes), and the bulk path (defer the index, load, BuildIndex): same data, same batch size, same run.
Also: how much the parallel maintenance workers of PostgreSQL give an HNSW build."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import chromadb
import numpy as np
import psycopg
from chromadb.config import Settings
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, Document, DocumentColumns, HnswIndex

from benchmarks.harness import clustered, serving

# HNSW aligned on both sides: cosine, 16 neighbours, ef_construction 64 (pgvector's defaults).
M, EF_CONSTRUCTION = 16, 64
BUILD_WORKERS = (1, 2, 3)
RAW_CONNECTIONS = 4  # as many as the server's default batches in flight


def metadata(i: int) -> dict[str, str | int]:
    return {"cat": f"c{i % 10}", "rare": f"r{i % 100}", "tiny": f"t{i % 1000}", "i": i}


def chroma_add(vectors: list[np.ndarray], batch: int) -> float:
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
                metadatas=[metadata(i) for i in range(start, stop)],
            )
        rate = len(vectors) / (time.perf_counter() - started)
        assert collection.count() == len(vectors)
    return rate


def ours(
    client: Client, name: str, vectors: np.ndarray, batch: int, *, columnar: bool, defer: bool
) -> tuple[float, float]:
    """Docs/s of Ingest into an HNSW collection (or, deferred, of Ingest + BuildIndex), and the
    seconds BuildIndex took of it."""
    client.create_collection(name, len(vectors[0]), index=HnswIndex(M, EF_CONSTRUCTION), defer_index=defer)
    started = time.perf_counter()
    if columnar:
        ids = [f"doc-{i:07d}" for i in range(len(vectors))]
        contents = [f"text {i}" for i in range(len(vectors))]
        documents: Iterable[Document] | DocumentColumns = DocumentColumns(
            ids, vectors, contents, [metadata(i) for i in range(len(vectors))]
        )
    else:
        documents = (Document(f"doc-{i:07d}", f"text {i}", metadata(i), v) for i, v in enumerate(vectors))
    client.ingest(name, documents, batch_size=batch, on_conflict="fail")
    loaded = time.perf_counter()
    if defer:
        client.build_index(name)
    finished = time.perf_counter()
    assert client.count(name) == len(vectors)
    return len(vectors) / (finished - started), finished - loaded


def raw_copy(conninfo: str, vectors: list[np.ndarray], batch: int, connections: int) -> float:
    """Docs/s of COPY BINARY straight into a table with a primary key and an HNSW index, a batch per
    transaction on ``connections`` connections at once: what PostgreSQL itself can index here, with
    no server in between (the ceiling of live ingest into an indexed collection on this machine)."""
    table = "raw_indexed_copy"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, content text, embedding vector({len(vectors[0])}))")
        conn.execute(
            f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops)"
            f" WITH (m = {M}, ef_construction = {EF_CONSTRUCTION})"
        )
    starts = iter(range(0, len(vectors), batch))

    def load() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            register_vector(conn)
            for start in starts:  # shared: each connection takes the next batch
                with conn.transaction(), conn.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "text", "vector"])
                    for i in range(start, min(start + batch, len(vectors))):
                        copy.write_row((f"doc-{i:07d}", f"text {i}", vectors[i]))

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        for done in [pool.submit(load) for _ in range(connections)]:
            done.result()
    rate = len(vectors) / (time.perf_counter() - started)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}")
    return rate


def build_seconds(conninfo: str, collection: str, workers: int) -> float:
    """Seconds of a CREATE INDEX (HNSW) on the collection's table with this many parallel workers
    (PostgreSQL otherwise plans fewer for a small table: one per tripling above 8 MB)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
        conn.execute("SET min_parallel_table_scan_size = 0")
        conn.execute("DROP INDEX IF EXISTS pgvector_grpc.bench_build")
        started = time.perf_counter()
        conn.execute(
            f'CREATE INDEX bench_build ON pgvector_grpc."{collection}" USING hnsw (embedding vector_cosine_ops)'
            f" WITH (m = {M}, ef_construction = {EF_CONSTRUCTION})"
        )
        elapsed = time.perf_counter() - started
        conn.execute("DROP INDEX pgvector_grpc.bench_build")
    return elapsed


def run(
    conninfo: str, address: str, n: int, dim: int, batch: int, repeats: int, windows: tuple[int, ...] = (1,)
) -> list[dict[str, object]]:
    """The server as configured by default, and beside it servers writing ``windows`` batches of a
    stream at once (INGEST_PARALLEL_BATCHES)."""
    vectors = clustered(n, dim, seed=3)
    chroma: list[float] = []
    raw: list[float] = []
    builds: list[float] = []
    with contextlib.ExitStack() as servers:
        paths = [
            ("Ingest into an HNSW collection (default)", address, False, False),
            ("Ingest into an HNSW collection (default), columnar", address, True, False),
        ]
        for window in windows:
            env = {"PGVECTOR_GRPC_INGEST_PARALLEL_BATCHES": str(window)}
            paths.append(
                (
                    f"Ingest into an HNSW collection, {window} at once",
                    servers.enter_context(serving(conninfo, env=env)),
                    False,
                    False,
                )
            )
        paths.append(("bulk: deferred index, Ingest + BuildIndex", address, False, True))
        rates: dict[str, list[float]] = {label: [] for label, *_ in paths}
        for rep in range(repeats):  # interleaved so that all see the same machine state
            chroma.append(chroma_add(list(vectors), batch))
            raw.append(raw_copy(conninfo, list(vectors), batch, RAW_CONNECTIONS))
            for number, (label, served, columnar, defer) in enumerate(paths):
                with Client(served, timeout=3600) as client:
                    name = f"indexed_{number}_{rep}"
                    rate, build = ours(client, name, vectors, batch, columnar=columnar, defer=defer)
                    rates[label].append(rate)
                    if defer:
                        builds.append(build)
                    if rep < repeats - 1 or number:
                        client.delete_collection(name)
    results: list[dict[str, object]] = []
    reference = float(np.median(chroma))
    for label, measured in rates.items():
        extra = f" (build {np.median(builds):.1f} s)" if "bulk" in label else ""
        results.append(
            {
                "what": f"{label} vs Chroma add, {n} x {dim}, batch {batch}",
                "ours": f"{np.median(measured):,.0f} docs/s{extra}",
                "reference": f"{reference:,.0f} docs/s (Chroma add)",
                "ratio": float(np.median([r / c for r, c in zip(measured, chroma, strict=True)])),
                "goal_at_least": 5.0 if "bulk" in label else 1.5,  # issue 10
            }
        )
    results.append(
        {
            "what": f"ceiling: raw COPY into an HNSW table, {RAW_CONNECTIONS} connections, vs Chroma add",
            "ours": f"{np.median(raw):,.0f} docs/s (no server)",
            "reference": f"{reference:,.0f} docs/s (Chroma add)",
            "ratio": float(np.median([r / c for r, c in zip(raw, chroma, strict=True)])),
        }
    )
    default = rates[paths[0][0]]
    results.append(
        {
            "what": "Ingest into an HNSW collection (default) vs that ceiling",
            "ours": f"{np.median(default):,.0f} docs/s",
            "reference": f"{np.median(raw):,.0f} docs/s (raw COPY)",
            "ratio": float(np.median([o / r for o, r in zip(default, raw, strict=True)])),
        }
    )
    table = f"indexed_0_{repeats - 1}"
    serial: list[float] = []
    parallel: dict[int, list[float]] = {w: [] for w in BUILD_WORKERS}
    for _ in range(repeats):  # interleaved
        serial.append(build_seconds(conninfo, table, 0))
        for workers in BUILD_WORKERS:
            parallel[workers].append(build_seconds(conninfo, table, workers))
    for workers, seconds in parallel.items():
        results.append(
            {
                "what": f"HNSW build {n} x {dim}, max_parallel_maintenance_workers {workers} vs 0",
                "ours": f"{np.median(seconds):.1f} s",
                "reference": f"{np.median(serial):.1f} s",
                "ratio": float(np.median([s / p for s, p in zip(serial, seconds, strict=True)])),
            }
        )
    with Client(address) as client:
        client.delete_collection(table)
    return results
