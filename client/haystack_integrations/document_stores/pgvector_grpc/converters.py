"""Haystack <-> the client: documents and hits, duplicate policies, errors, metadata descriptions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from haystack import Document as HaystackDocument
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError

from pgvector_grpc.errors import AlreadyExistsError, InvalidArgumentError
from pgvector_grpc.types import Document, IngestSummary, OnConflict, SearchHit, as_embedding

POLICIES: dict[DuplicatePolicy, OnConflict] = {
    DuplicatePolicy.NONE: "fail",
    DuplicatePolicy.FAIL: "fail",
    DuplicatePolicy.SKIP: "skip",
    DuplicatePolicy.OVERWRITE: "upsert",
}
# get_metadata_fields_info names types as Haystack's InMemoryDocumentStore does.
_FIELD_TYPES = {
    "string": "keyword",
    "integer": "int",
    "float": "float",
    "boolean": "boolean",
    "array": "keyword",
    "object": "keyword",
}


def to_client_document(doc: Any, where: str) -> Document:
    """The client document of a Haystack Document; ``blob`` and ``sparse_embedding``, which the
    server does not store, are refused rather than dropped."""
    if not isinstance(doc, HaystackDocument):
        raise ValueError(f"{where} must be a haystack Document, got {type(doc).__name__}")
    for field in ("blob", "sparse_embedding"):
        if getattr(doc, field) is not None:
            raise ValueError(
                f"{where} (id {doc.id!r}) has a {field}, which PgvectorGrpcDocumentStore does not store: "
                f"remove it before writing (or keep it elsewhere) so that nothing is lost silently"
            )
    return Document(doc.id, doc.content, dict(doc.meta), as_embedding(doc.embedding))


def check_documents(documents: Any, on_conflict: OnConflict) -> list[Document]:
    """Every document converted up front, so that a bad one fails before anything is written.
    An id repeated within the call is a duplicate as Haystack's in-memory store sees it: "fail"
    refuses the call, "skip" keeps the first occurrence, "upsert" the last."""
    if not isinstance(documents, list):
        raise ValueError(f"documents must be a list of haystack Documents, got {type(documents).__name__}")
    docs: dict[str, Document] = {}
    for i, value in enumerate(documents):
        doc = to_client_document(value, f"documents[{i}]")
        if doc.id in docs:
            if on_conflict == "fail":
                raise DuplicateDocumentError(f"documents[{i}] repeats the id {doc.id!r} of an earlier document")
            if on_conflict == "skip":
                continue
        docs[doc.id] = doc
    return list(docs.values())


def from_client_document(doc: Document, score: float | None = None) -> HaystackDocument:
    """A Haystack Document (embedding as Python floats, exactly as stored)."""
    embedding = None if doc.embedding is None else doc.embedding.tolist()
    return HaystackDocument(id=doc.id, content=doc.content, meta=doc.metadata, embedding=embedding, score=score)


def from_hit(hit: SearchHit) -> HaystackDocument:
    """A Haystack Document with the hit's score."""
    return from_client_document(Document(hit.id, hit.content, hit.metadata, hit.embedding), hit.score)


def from_client_documents(documents: Iterable[Document]) -> list[HaystackDocument]:
    """Haystack Documents of client documents."""
    return [from_client_document(d) for d in documents]


@contextmanager
def haystack_errors() -> Iterator[None]:
    """Server errors as the exceptions Haystack's callers expect."""
    try:
        yield
    except AlreadyExistsError as exc:
        raise DuplicateDocumentError(exc.message) from exc
    except InvalidArgumentError as exc:
        if any(v.field.startswith("filter") for v in exc.field_violations):
            raise FilterError(exc.message) from exc
        raise


def written_count(summary: IngestSummary, policy: OnConflict) -> int:
    """The documents an ingest wrote, as Haystack counts them (skipped ones are not)."""
    return summary.inserted + (summary.updated if policy == "upsert" else 0)


def min_max(found: tuple[Any, Any] | None) -> dict[str, Any]:
    """Haystack's ``{"min": ..., "max": ...}`` of a field range."""
    return {"min": None, "max": None} if found is None else {"min": found[0], "max": found[1]}


def fields_info(fields: dict[str, dict[str, int]]) -> dict[str, dict[str, str]]:
    """Haystack's ``{field: {"type": ...}}`` of the client's ``{field: {value type: documents}}``."""
    info = {}
    for name, types in fields.items():
        kind = next((t for t in types if t != "null"), None)
        if kind is not None:
            info[name] = {"type": _FIELD_TYPES[kind]}
    return info
