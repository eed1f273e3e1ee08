"""Streaming Ingest vs raw psycopg COPY BINARY in 1,000-row transactions, same rows, same run."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from pgvector_grpc import Client, Document, DocumentColumns, NoIndex
from pgvector_grpc.types import OnConflict
from psycopg.types.json import Jsonb

from benchmarks.harness import unit_vectors

BATCH = 1000

Row = tuple[str, str, dict[str, object], np.ndarray]  # id, content, metadata, embedding


def rows(n: int, dim: int) -> list[Row]:
    vectors = unit_vectors(n, dim, seed=dim)
    return [
        (
            f"doc-{i:08d}",
            "x" * 200,
            {"category": f"c{i % 10}", "source": f"src-{i % 97}", "year": 2000 + i % 25, "chunk": i},
            vectors[i],
        )
        for i in range(n)
    ]


def raw_copy(conninfo: str, table: str, data: list[Row]) -> float:
    """Rows/s of COPY BINARY (set_types + write_row) in BATCH-row transactions."""
    with psycopg.connect(conninfo) as conn:
        register_vector(conn)
        started = time.perf_counter()
        for start in range(0, len(data), BATCH):
            with (
                conn.transaction(),
                conn.cursor().copy(
                    f"COPY pgvector_grpc.{table} (id, content, metadata, embedding) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["text", "text", "jsonb", "vector"])
                for doc_id, content, metadata, vector in data[start : start + BATCH]:
                    copy.write_row((doc_id, content, Jsonb(metadata), vector))
        return len(data) / (time.perf_counter() - started)


def grpc_ingest(client: Client, collection: str, data: list[Row], on_conflict: OnConflict) -> float:
    """Rows/s of the client's streaming Ingest (BATCH documents per message)."""
    started = time.perf_counter()
    summary = client.ingest(
        collection,
        (Document(i, c, m, v) for i, c, m, v in data),
        batch_size=BATCH,
        on_conflict=on_conflict,
    )
    assert summary.documents == len(data)
    return len(data) / (time.perf_counter() - started)


def grpc_ingest_columns(client: Client, collection: str, data: list[Row], on_conflict: OnConflict) -> float:
    """Rows/s of the client's streaming Ingest in columnar form, from arrays (BATCH rows per message)."""
    ids, contents, metadatas, vectors = (list(column) for column in zip(*data, strict=True))
    started = time.perf_counter()
    columns = DocumentColumns(ids, np.stack(vectors), contents, metadatas)
    summary = client.ingest(collection, columns, batch_size=BATCH, on_conflict=on_conflict)
    assert summary.documents == len(data)
    return len(data) / (time.perf_counter() - started)


def run(conninfo: str, address: str, n: int, dims: tuple[int, ...], repeats: int) -> list[dict[str, object]]:
    results = []
    with Client(address, timeout=600) as client:
        for dim in dims:
            data = rows(n, dim)
            paths: dict[str, tuple[Callable[[Client, str, list[Row], OnConflict], float], OnConflict]] = {
                "Ingest (insert) vs raw COPY": (grpc_ingest, "fail"),
                "Ingest (insert, columnar) vs raw COPY": (grpc_ingest_columns, "fail"),
                "Ingest (upsert) vs raw COPY": (grpc_ingest, "upsert"),
            }
            raw_rates: list[float] = []
            rates: dict[str, list[float]] = {label: [] for label in paths}
            for rep in range(repeats):  # interleaved so all see the same machine state
                client.create_collection(f"raw_{dim}_{rep}", dim, index=NoIndex())
                raw_rates.append(raw_copy(conninfo, f"raw_{dim}_{rep}", data))
                client.delete_collection(f"raw_{dim}_{rep}")
                for number, (label, (ingest, policy)) in enumerate(paths.items()):
                    name = f"path{number}_{dim}_{rep}"
                    client.create_collection(name, dim, index=NoIndex())
                    rates[label].append(ingest(client, name, data, policy))
                    client.delete_collection(name)
            raw = float(np.median(raw_rates))
            for label, measured in rates.items():
                ratio = float(np.median([r / q for r, q in zip(measured, raw_rates, strict=True)]))
                results.append(
                    {
                        "what": f"{label}, {dim}-d, {n} docs",
                        "ours": f"{np.median(measured):,.0f} docs/s",
                        "reference": f"{raw:,.0f} rows/s",
                        "ratio": ratio,
                        "goal_at_least": 0.8,  # issues 2 and 10
                    }
                )
    return results
