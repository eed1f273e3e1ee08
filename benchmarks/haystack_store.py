"""The Haystack integration vs pgvector-haystack's PgvectorDocumentStore on the same PostgreSQL:
write_documents throughput, retriever latency and copying the PgvectorDocumentStore's table into
a collection; same documents, same queries, same run."""

from __future__ import annotations

import time

from haystack import Document
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import Secret
from haystack_integrations.components.retrievers.pgvector import PgvectorEmbeddingRetriever
from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever
from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore
from haystack_integrations.document_stores.pgvector_grpc.copy import copy_documents, verify_copy

from benchmarks.harness import clustered, percentiles


def documents(n: int, dim: int) -> list[Document]:
    vectors = clustered(n, dim, seed=11)
    return [
        Document(id=f"doc-{i:07d}", content="x" * 200, meta={"category": f"c{i % 10}"}, embedding=v.tolist())
        for i, v in enumerate(vectors)
    ]


def run(conninfo: str, address: str, n: int, dim: int, queries: int) -> list[dict[str, object]]:
    docs = documents(n, dim)
    ours = PgvectorGrpcDocumentStore(
        address=Secret.from_token(address), collection="bench_haystack", embedding_dimension=dim, write_batch_size=1000
    )
    theirs = PgvectorDocumentStore(
        connection_string=Secret.from_token(conninfo),
        table_name="bench_haystack_reference",
        embedding_dimension=dim,
        recreate_table=True,
        search_strategy="hnsw",
    )
    ours.count_documents()  # connect and create the collection outside the timing
    theirs.count_documents()

    t = time.perf_counter()
    ours.write_documents(docs, policy=DuplicatePolicy.OVERWRITE)
    ours_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    theirs.write_documents(docs, policy=DuplicatePolicy.OVERWRITE)
    theirs_rate = n / (time.perf_counter() - t)

    ours_retriever = PgvectorGrpcEmbeddingRetriever(document_store=ours, top_k=10)
    theirs_retriever = PgvectorEmbeddingRetriever(document_store=theirs, top_k=10)
    query_vectors = clustered(queries, dim, seed=12)
    ours_ms, theirs_ms = [], []
    for q in query_vectors:  # interleaved, one query each in turn
        embedding = q.tolist()
        t = time.perf_counter()
        theirs_retriever.run(query_embedding=embedding)
        theirs_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        ours_retriever.run(query_embedding=embedding)
        ours_ms.append((time.perf_counter() - t) * 1000)
    (o50, _), (t50, _) = percentiles(ours_ms), percentiles(theirs_ms)

    copied = PgvectorGrpcDocumentStore(
        address=Secret.from_token(address), collection="bench_haystack_copy", embedding_dimension=dim
    )
    t = time.perf_counter()
    report = copy_documents(theirs, copied, batch_size=1000, verify=False)
    copy_seconds = time.perf_counter() - t
    t = time.perf_counter()
    verified = verify_copy(theirs, copied, report, batch_size=1000)
    verify_seconds = time.perf_counter() - t
    assert report.copied == n and verified.ok, verified
    for store in (ours, copied):
        store.client.delete_collection(store.collection)
        store.close()
    theirs.delete_table()
    return [
        {
            "what": f"Haystack write_documents, {n:,} x {dim}",
            "ours": f"{ours_rate:,.0f} docs/s",
            "reference": f"{theirs_rate:,.0f} docs/s (PgvectorDocumentStore)",
            "ratio": ours_rate / theirs_rate,
        },
        {
            "what": "Haystack embedding retriever p50, k=10",
            "ours": f"{o50:.2f} ms",
            "reference": f"{t50:.2f} ms (PgvectorEmbeddingRetriever, hnsw)",
            "ratio": o50 / t50,
            "overhead_ms": o50 - t50,
        },
        {
            "what": f"Copy that PgvectorDocumentStore in (index at the end), {n:,}",
            "ours": f"{n / copy_seconds:,.0f} docs/s",
            "reference": f"{theirs_rate:,.0f} docs/s (its write_documents)",
            "ratio": n / copy_seconds / theirs_rate,
        },
        {
            "what": "  then verify every document field by field",
            "ours": f"{n / verify_seconds:,.0f} docs/s",
            "reference": f"{n / copy_seconds:,.0f} docs/s (the copy)",
            "ratio": copy_seconds / verify_seconds,
        },
    ]
