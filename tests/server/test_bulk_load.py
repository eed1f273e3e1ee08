"""Bulk-load building blocks: deferred index + BuildIndex, checkpoints committed with their batch, exact search."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector_grpc import Client, Document, HnswIndex, InvalidArgumentError, NotFoundError


def vector_indexes(database: str, collection: str) -> list[str]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'pgvector_grpc' AND tablename = %s", (collection,)
        ).fetchall()
    return [r[0] for r in rows if "hnsw" in r[0]]


def docs(n: int, dim: int, seed: int = 0) -> list[Document]:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return [Document(f"d{i:04d}", f"text {i}", {"i": i}, vectors[i]) for i in range(n)]


def test_deferred_index_is_built_on_request(client: Client, database: str) -> None:
    created = client.create_collection("deferred", 8, index=HnswIndex(12, 40), defer_index=True)
    assert created.index == HnswIndex(12, 40)
    assert vector_indexes(database, "deferred") == []
    client.ingest("deferred", docs(300, 8))
    assert [h.id for h in client.search("deferred", docs(300, 8)[5].embedding, top_k=1)] == ["d0005"]
    built = client.build_index("deferred")
    assert built.document_count == 300
    (definition,) = vector_indexes(database, "deferred")
    assert "m='12'" in definition and "ef_construction='40'" in definition
    client.build_index("deferred")  # idempotent
    with pytest.raises(NotFoundError):
        client.build_index("no_such_collection")


def test_a_checkpoint_is_saved_only_with_its_committed_batch(client: Client) -> None:
    client.create_collection("checkpointed", 4)
    assert client.get_checkpoint("checkpointed", "loader") is None
    client.ingest("checkpointed", docs(120, 4), batch_size=50, checkpoint=("loader", "after-120"))
    assert client.get_checkpoint("checkpointed", "loader") == "after-120"
    bad = [*docs(10, 4, seed=1), Document("wrong", None, {}, [1.0, 2.0])]
    with pytest.raises(InvalidArgumentError):
        client.ingest("checkpointed", bad, checkpoint=("loader", "after-bad"))
    assert client.get_checkpoint("checkpointed", "loader") == "after-120"
    assert client.count("checkpointed") == 120
    client.delete_collection("checkpointed")
    client.create_collection("checkpointed", 4)
    assert client.get_checkpoint("checkpointed", "loader") is None, "a dropped collection takes its checkpoints"


def test_exact_search_returns_the_true_top_k(client: Client) -> None:
    data = docs(2000, 16, seed=3)
    client.create_collection("exact_search", 16, metric="l2", index=HnswIndex(4, 8))
    client.ingest("exact_search", data, batch_size=500)
    matrix = np.array([d.embedding for d in data])
    query = np.random.default_rng(9).standard_normal(16).astype(np.float32)
    truth = [data[i].id for i in np.argsort(np.linalg.norm(matrix - query, axis=1))[:20]]
    hits = client.search("exact_search", query, top_k=20, exact=True, ef_search=20)
    assert [h.id for h in hits] == truth
