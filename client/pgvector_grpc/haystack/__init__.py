"""Haystack integration: a DocumentStore and retriever backed by a pgvector-grpc server, and a
copier from any Haystack DocumentStore. Needs ``pip install 'pgvector-grpc[haystack]'``.

The retriever is defined in ``haystack_integrations.components.retrievers.pgvector_grpc`` (the
namespace Haystack's pipeline loader trusts) and the document store in
``haystack_integrations.document_stores.pgvector_grpc``. They are imported here on first access:
those modules use this package's helpers, and a pipeline file may name them first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever
    from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

__all__ = ["PgvectorGrpcDocumentStore", "PgvectorGrpcEmbeddingRetriever"]


def __getattr__(name: str) -> Any:
    if name == "PgvectorGrpcDocumentStore":
        from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

        return PgvectorGrpcDocumentStore
    if name == "PgvectorGrpcEmbeddingRetriever":
        from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever

        return PgvectorGrpcEmbeddingRetriever
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
