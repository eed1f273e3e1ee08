"""Migrate vs a direct script (Chroma `get` pages of 1,000 → COPY BINARY), same Chroma store, same run."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import chromadb
import numpy as np
import psycopg
from chromadb.config import Settings
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, NoIndex
from pgvector_grpc_common.migration.events import Progress, Report
from pgvector_grpc_common.migration.sources.chroma import release_client
from psycopg.types.json import Jsonb

from benchmarks.harness import serving, unit_vectors

PAGE = 1000
NAME = "bench-source"


def build_store(path: Path, n: int, dim: int) -> None:
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection(NAME, configuration={"hnsw": {"space": "cosine"}})
    vectors = unit_vectors(n, dim, seed=3)
    for start in range(0, n, 5000):
        end = min(start + 5000, n)
        collection.add(
            ids=[f"doc-{i:08d}" for i in range(start, end)],
            embeddings=vectors[start:end],
            documents=["x" * 200] * (end - start),
            metadatas=[{"category": f"c{i % 10}", "year": 2000 + i % 25, "chunk": i} for i in range(start, end)],
        )
    release_client(client)


def direct_script(path: Path, conninfo: str, table: str) -> float:
    """Documents/s of the obvious hand-written migration: read a page, COPY it, repeat."""
    started = time.perf_counter()
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.get_collection(NAME)
    total = 0
    with psycopg.connect(conninfo) as conn:
        register_vector(conn)
        offset = 0
        while True:
            page = collection.get(offset=offset, limit=PAGE, include=["embeddings", "documents", "metadatas"])
            if not page["ids"]:
                break
            with (
                conn.transaction(),
                conn.cursor().copy(
                    f"COPY pgvector_grpc.{table} (id, content, metadata, embedding) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["text", "text", "jsonb", "vector"])
                embeddings = np.asarray(page["embeddings"], dtype=np.float32)
                documents, metadatas = page["documents"], page["metadatas"]
                assert documents is not None and metadatas is not None  # both included above
                for i, doc_id in enumerate(page["ids"]):
                    copy.write_row((doc_id, documents[i], Jsonb(metadatas[i] or {}), embeddings[i]))
            total += len(page["ids"])
            offset += PAGE
    release_client(client)
    return total / (time.perf_counter() - started)


def migrate_rpc(client: Client, path: Path, target: str) -> tuple[float, float, float, Report]:
    """Documents/s of the copy phase, of copy + HNSW build, and of the whole run including verification."""
    started = time.perf_counter()
    copied = indexed = 0.0
    report = None
    for event in client.migrate(str(path), NAME, target=target):
        if isinstance(event, Progress):
            if event.phase == "indexing" and not copied:
                copied = time.perf_counter() - started
            if event.phase == "verifying" and not indexed:
                indexed = time.perf_counter() - started
        elif isinstance(event, Report):
            report = event
    assert report is not None and report.ok, report
    n = report.source_count
    return n / copied, n / indexed, n / (time.perf_counter() - started), report


def run(conninfo: str, n: int, dim: int) -> list[dict[str, object]]:
    """On a server of its own, which may read Chroma stores under the benchmark's temporary folder
    (as an operator allows with --migrate-root); same database."""
    with tempfile.TemporaryDirectory(prefix="bench-chroma-") as tmp:
        store = Path(tmp) / "store"
        built = time.perf_counter()
        build_store(store, n, dim)
        print(f"(built a {n:,} x {dim} Chroma store in {time.perf_counter() - built:.0f} s)", flush=True)
        script_copy = Path(tmp) / "script-copy"
        shutil.copytree(store, script_copy)
        with (
            serving(conninfo, env={"PGVECTOR_GRPC_MIGRATE_ROOTS": tmp}) as address,
            Client(address, timeout=3600) as client,
        ):
            client.create_collection("direct_script", dim, index=NoIndex())
            direct = direct_script(script_copy, conninfo, "direct_script")
            copy_rate, with_index, whole, _ = migrate_rpc(client, store, "migrated")
            client.delete_collection("direct_script")
            client.delete_collection("migrated")
    return [
        {
            "what": f"Migrate copy phase, {n:,} x {dim}",
            "ours": f"{copy_rate:,.0f} docs/s",
            "reference": f"direct script {direct:,.0f} docs/s",
            "ratio": copy_rate / direct,
            "goal_at_least": 0.9,  # issue 3
        },
        {
            "what": f"Migrate copy + HNSW build, {n:,} x {dim}",
            "ours": f"{with_index:,.0f} docs/s",
            "reference": f"direct script (no index) {direct:,.0f}",
            "ratio": with_index / direct,
        },
        {
            "what": f"Migrate whole run incl. verification, {n:,} x {dim}",
            "ours": f"{whole:,.0f} docs/s",
            "reference": f"direct script (no index) {direct:,.0f}",
            "ratio": whole / direct,
        },
    ]
