"""Copy the documents of any Haystack DocumentStore into a PgvectorGrpcDocumentStore.

Pages go through Ingest, one transaction each, ids kept. A pgvector-haystack
``PgvectorDocumentStore`` (the seed's store) is read in id order straight from its table, one
page at a time, so memory stays constant and a re-run resumes after the last committed page.
Other stores are read with ``filter_documents`` (their only read API: the whole result at once)
and re-runs copy everything again, which upserts leave exact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from haystack.dataclasses import Document
from haystack.document_stores.types import DocumentStore
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

from pgvector_grpc.haystack._documents import from_client_document, to_client_document
from pgvector_grpc.types import Metric

MAX_LISTED_MISMATCHES = 20
# pgvector-haystack's vector_function -> the matching metric
# the metric a source store's own setting names, read from its serialised init parameters:
# pgvector-haystack's vector_function; chroma-haystack's "hnsw:space" metadata, else distance_function
_SOURCE_METRICS: dict[str, Metric] = {
    "cosine_similarity": "cosine",
    "inner_product": "inner_product",
    "l2_distance": "l2",
    "cosine": "cosine",
    "ip": "inner_product",
    "l2": "l2",
}


def source_metric(store: DocumentStore) -> Metric:
    """The metric the source store searches with (cosine when it does not say)."""
    params = store.to_dict().get("init_parameters", {})
    space = (params.get("metadata") or {}).get("hnsw:space")
    for setting in (params.get("vector_function"), space, params.get("distance_function")):
        if isinstance(setting, str) and setting in _SOURCE_METRICS:
            return _SOURCE_METRICS[setting]
    return "cosine"


@dataclass(frozen=True)
class CopyProgress:
    """Documents committed so far, of ``total``, at ``rate`` documents per second."""

    copied: int
    total: int
    rate: float


@dataclass(frozen=True)
class CopyReport:
    """What a copy did and what its document-by-document verification found."""

    source_count: int
    copied: int
    resumed_from: int
    target_count: int
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    mismatch_count: int = 0

    @property
    def ok(self) -> bool:
        """Every source document is in the target, identical."""
        return self.mismatch_count == 0 and self.compared == self.source_count


def is_pgvector_store(store: object) -> bool:
    """A pgvector-haystack PgvectorDocumentStore (read page by page from its table)."""
    return type(store).__name__ == "PgvectorDocumentStore" and all(
        hasattr(store, a) for a in ("connection_string", "schema_name", "table_name")
    )


def source_key(store: DocumentStore) -> str:
    """The checkpoint key of a source store."""
    if is_pgvector_store(store):
        return f"haystack:pgvector:{store.schema_name}.{store.table_name}"  # type: ignore[attr-defined]
    return f"haystack:{type(store).__name__}"


def _pgvector_pages(store: Any, after: str | None, size: int) -> Iterator[list[Document]]:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg import sql

    query = sql.SQL(
        "SELECT id, content, meta, embedding, blob_data, blob_mime_type FROM {}.{}"
        " WHERE %s::text IS NULL OR id > %s ORDER BY id LIMIT %s"
    ).format(sql.Identifier(store.schema_name), sql.Identifier(store.table_name))
    with psycopg.connect(store.connection_string.resolve_value()) as conn:
        register_vector(conn)
        while True:
            rows = conn.execute(query, (after, after, size)).fetchall()
            if not rows:
                return
            page = []
            for doc_id, content, meta, embedding, blob, mime in rows:
                if blob is not None:
                    raise ValueError(
                        f"document {doc_id!r} has a blob ({mime or 'no mime type'}), which "
                        "PgvectorGrpcDocumentStore does not store: nothing of this page was copied"
                    )
                vector = None if embedding is None else embedding.to_list()  # vector or halfvec values, exact
                page.append(Document(id=doc_id, content=content, meta=meta or {}, embedding=vector))
            yield page
            after = rows[-1][0]


def source_pages(
    store: DocumentStore, size: int, after: str | None = None, filters: dict[str, Any] | None = None
) -> Iterator[list[Document]]:
    """The source's documents in pages of ``size`` (after id ``after`` where the store allows it)."""
    if is_pgvector_store(store) and not filters:
        yield from _pgvector_pages(store, after, size)
        return
    documents = store.filter_documents(filters)
    for start in range(0, len(documents), size):
        yield documents[start : start + size]


def copy_documents(
    source: DocumentStore,
    target: PgvectorGrpcDocumentStore,
    *,
    filters: dict[str, Any] | None = None,
    batch_size: int = 500,
    restart: bool = False,
    verify: bool = True,
    on_progress: Callable[[CopyProgress], None] | None = None,
) -> CopyReport:
    """Copy ``source`` (optionally only the documents matching ``filters``) into ``target``.

    Each page is one Ingest batch committed with its checkpoint; ids, content, metadata and
    embeddings are kept exactly. A document with a blob or sparse embedding stops the copy with a
    ValueError naming it. A target collection that does not exist yet is created without its
    vector index, which is built once the documents are in (several times faster than inserting
    into an index). ``verify`` re-reads the source and compares every document with the target,
    field by field."""
    client = target.connect(defer_index=True)
    key = source_key(source)
    resumable = is_pgvector_store(source) and not filters
    saved = None if restart or not resumable else client.get_checkpoint(target.collection, key)
    position: dict[str, Any] = json.loads(saved) if saved else {"last_id": None, "copied": 0}
    after, resumed_from = position["last_id"], position["copied"]
    total = source.count_documents_by_filter(filters) if filters else source.count_documents()  # type: ignore[attr-defined]
    copied, began = resumed_from, time.monotonic()
    for page in source_pages(source, batch_size, after, filters):
        docs = [to_client_document(d, f"document {d.id!r}") for d in page]
        copied += len(docs)
        checkpoint = json.dumps({"last_id": page[-1].id, "copied": copied}, ensure_ascii=False)
        client.ingest(target.collection, docs, batch_size=len(docs), on_conflict="upsert", checkpoint=(key, checkpoint))
        if on_progress is not None:
            rate = (copied - resumed_from) / max(time.monotonic() - began, 1e-9)
            on_progress(CopyProgress(copied, max(total, copied), rate))
    client.build_index(target.collection)  # idempotent: nothing to do when the index exists
    report = CopyReport(total, copied, resumed_from, client.count(target.collection))
    return verify_copy(source, target, report, filters, batch_size) if verify else report


def verify_copy(
    source: DocumentStore,
    target: PgvectorGrpcDocumentStore,
    report: CopyReport,
    filters: dict[str, Any] | None = None,
    batch_size: int = 500,
) -> CopyReport:
    """``report`` with every source document compared with the target's, field by field."""
    client = target.client
    mismatches: list[str] = []
    compared = count = 0
    for page in source_pages(source, batch_size, None, filters):
        stored = {
            d.id: from_client_document(d)
            for d in client.get(target.collection, [d.id for d in page], include_embedding=True)
        }
        for doc in page:
            compared += 1
            problem = _difference(doc, stored.get(doc.id))
            if problem:
                count += 1
                if len(mismatches) < MAX_LISTED_MISMATCHES:
                    mismatches.append(f"{doc.id}: {problem}")
    return replace(report, compared=compared, mismatches=mismatches, mismatch_count=count)


def _difference(source: Document, target: Document | None) -> str:
    if target is None:
        return "missing"
    for name in ("content", "meta", "embedding"):
        if getattr(source, name) != getattr(target, name):
            return f"{name} differs"
    return ""
