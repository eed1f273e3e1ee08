"""Reading any Haystack DocumentStore as a migration source.

A pgvector-haystack ``PgvectorDocumentStore`` (the seed's store) is read in id order straight
from its table, one page at a time, so memory stays constant and a re-run resumes after the
last committed page. Other stores are read with ``filter_documents`` (their only read API: the
whole result at once) and re-runs copy everything again, which upserts leave exact.
A document with a blob or a sparse embedding, which pgvector-grpc does not store, stops the
read with a ValueError naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from haystack import Document
from haystack.document_stores.types import DocumentStore

from pgvector_grpc_common.metadata_json import metadata_json
from pgvector_grpc_common.migration.protocols import Cursor, Page, SourceCollection
from pgvector_grpc_common.vocabulary import DEFAULT_INDEX, DEFAULT_METRIC, DocumentRecord, Metric, Vector

DESCRIBE_SAMPLE = 100

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
    try:
        params = store.to_dict().get("init_parameters", {})
    except ValueError:  # a token secret cannot be serialised; the attributes say the same
        params = vars(store)
    space = (params.get("metadata") or {}).get("hnsw:space")
    for setting in (params.get("vector_function"), space, params.get("distance_function")):
        if isinstance(setting, str) and setting in _SOURCE_METRICS:
            return _SOURCE_METRICS[setting]
    return DEFAULT_METRIC


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


def embedding_values(values: Sequence[float] | None) -> tuple[Vector | None, bytes | None]:
    """(float32 values, float64 bytes when float32 would round them) of a Haystack embedding."""
    if values is None:
        return None, None
    exact = np.asarray(values, dtype=np.float64)
    single = exact.astype(np.float32)
    return single, None if np.array_equal(single, exact) else exact.astype("<f8").tobytes()


def document_record(doc: Document) -> DocumentRecord:
    """The record of a Haystack Document; ``blob`` and ``sparse_embedding`` are refused, not dropped."""
    for field in ("blob", "sparse_embedding"):
        if getattr(doc, field, None) is not None:
            raise ValueError(
                f"document {doc.id!r} has a {field}, which pgvector-grpc does not store: nothing of its page was copied"
            )
    return DocumentRecord(doc.id, doc.content, metadata_json(dict(doc.meta)), *embedding_values(doc.embedding))


class HaystackSource:
    """A Haystack DocumentStore (optionally only the documents matching ``filters``) as a Source.

    ``dimension`` overrides the embedding dimension the store declares or its first embedding
    shows. Use as a context manager: a PgvectorDocumentStore's table is read over one connection."""

    def __init__(
        self, store: DocumentStore, filters: dict[str, Any] | None = None, dimension: int | None = None
    ) -> None:
        self.store = store
        self.key = source_key(store)
        self._filters = filters
        self._dimension = dimension
        self._table = _Table(store) if is_pgvector_store(store) and not filters else None
        self._documents: list[Document] | None = None
        self._ids: set[str] | None = None

    def describe(self) -> SourceCollection:
        """Count, dimension, metric and the metadata keys of the first documents."""
        first = self.page(Cursor(), DESCRIBE_SAMPLE).records
        keys = sorted({key for record in first for key in _metadata_keys(record)})
        name = getattr(self.store, "table_name", None) or type(self.store).__name__
        return SourceCollection(
            name, self.count(), self._dimension_of(), source_metric(self.store), DEFAULT_INDEX, keys
        )

    def _dimension_of(self) -> int:
        if self._dimension:
            return self._dimension
        declared = getattr(self.store, "embedding_dimension", None)
        if isinstance(declared, int):
            return declared
        cursor = Cursor()
        while (page := self.page(cursor, DESCRIBE_SAMPLE)).records:
            for record in page.records:
                if record.embedding is not None:
                    return len(record.embedding)
            cursor = page.end()
        raise ValueError("no document has an embedding: give the dimension")

    def count(self) -> int:
        """The number of documents (matching the filters)."""
        if self._filters:
            return int(self.store.count_documents_by_filter(self._filters))  # type: ignore[attr-defined]
        return self.store.count_documents()

    def continues_after(self, cursor: Cursor) -> bool:
        """Only a table read in id order resumes; other stores are read whole again."""
        return self._table is not None

    def page(self, start: Cursor, size: int, fields: bool = True) -> Page:
        """Up to ``size`` documents after ``start`` (by id in a table, by position otherwise)."""
        if self._table is not None:
            return Page(start.offset, self._table.after(start.last_id, size))
        return Page(start.offset, [document_record(d) for d in self._all()[start.offset : start.offset + size]])

    def get(self, ids: Sequence[str]) -> list[DocumentRecord]:
        """The documents with these ids."""
        if self._table is not None:
            return self._table.with_ids(ids)
        wanted = set(ids)
        return [document_record(d) for d in self._all() if d.id in wanted]

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids the store holds (among the documents matching the filters)."""
        if self._table is not None:
            return self._table.present(ids)
        if self._ids is None:
            self._ids = {d.id for d in self._all()}
        return self._ids.intersection(ids)

    def embedding_at(self, offset: int) -> Vector | None:
        """The embedding of the document at a position."""
        records = self.page(Cursor(offset), 1).records if self._table is None else self._table.at(offset)
        return records[0].embedding if records else None

    def _all(self) -> list[Document]:
        if self._documents is None:
            self._documents = self.store.filter_documents(self._filters)
        return self._documents

    def close(self) -> None:
        """Close the table's connection."""
        if self._table is not None:
            self._table.close()

    def __enter__(self) -> HaystackSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _metadata_keys(record: DocumentRecord) -> list[str]:
    return list(json.loads(record.metadata_json))


class _Table:
    """A PgvectorDocumentStore's table, read directly in id order over one connection."""

    def __init__(self, store: Any) -> None:
        from psycopg import sql

        self._store = store
        self._from = sql.SQL("SELECT id, content, meta, embedding, blob_data, blob_mime_type FROM {}.{}").format(
            sql.Identifier(store.schema_name), sql.Identifier(store.table_name)
        )
        self._ids_in = sql.SQL("SELECT id FROM {}.{} WHERE id = ANY(%s)").format(
            sql.Identifier(store.schema_name), sql.Identifier(store.table_name)
        )
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            import psycopg
            from pgvector.psycopg import register_vector

            self._conn = psycopg.connect(self._store.connection_string.resolve_value(), autocommit=True)
            register_vector(self._conn)
        return self._conn

    def _query(self, where: str, params: Sequence[Any]) -> list[DocumentRecord]:
        from psycopg import sql

        rows = self._connection().execute(sql.SQL(" ").join([self._from, sql.SQL(where)]), params).fetchall()
        return [_row_record(*row) for row in rows]

    def after(self, last_id: str | None, size: int) -> list[DocumentRecord]:
        return self._query("WHERE %s::text IS NULL OR id > %s ORDER BY id LIMIT %s", (last_id, last_id, size))

    def at(self, offset: int) -> list[DocumentRecord]:
        return self._query("ORDER BY id OFFSET %s LIMIT 1", (offset,))

    def with_ids(self, ids: Sequence[str]) -> list[DocumentRecord]:
        return self._query("WHERE id = ANY(%s) ORDER BY id", (list(ids),))

    def present(self, ids: Sequence[str]) -> set[str]:
        rows = self._connection().execute(self._ids_in, (list(ids),)).fetchall()
        return {row[0] for row in rows}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _row_record(
    doc_id: str, content: str | None, meta: Any, embedding: Any, blob: bytes | None, mime: str | None
) -> DocumentRecord:
    if blob is not None:
        raise ValueError(
            f"document {doc_id!r} has a blob ({mime or 'no mime type'}), which pgvector-grpc does not store: "
            "nothing of its page was copied"
        )
    values = None if embedding is None else embedding.to_list()  # vector or halfvec values, exact
    return DocumentRecord(doc_id, content, metadata_json(meta or {}), *embedding_values(values))
