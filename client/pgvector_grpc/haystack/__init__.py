"""Haystack integration: a DocumentStore and retriever backed by a pgvector-grpc server, and a
copier from any Haystack DocumentStore. Needs ``pip install 'pgvector-grpc[haystack]'``.

The retriever is defined in ``haystack_integrations.components.retrievers.pgvector_grpc`` (the
namespace Haystack's pipeline loader trusts) and the document store in
``haystack_integrations.document_stores.pgvector_grpc``."""

from haystack_integrations.components.retrievers.pgvector_grpc import PgvectorGrpcEmbeddingRetriever
from haystack_integrations.document_stores.pgvector_grpc import PgvectorGrpcDocumentStore

__all__ = ["PgvectorGrpcDocumentStore", "PgvectorGrpcEmbeddingRetriever"]
