"""Haystack Documents <-> the client's documents and hits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from haystack import Document as HaystackDocument
from haystack.document_stores.errors import DuplicateDocumentError

from pgvector_grpc.types import Document, OnConflict, SearchHit, as_embedding


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
