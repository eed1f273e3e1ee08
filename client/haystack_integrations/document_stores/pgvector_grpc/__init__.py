"""The pgvector-grpc DocumentStore for Haystack."""

from haystack_integrations.document_stores.pgvector_grpc.document_store import PgvectorGrpcDocumentStore

__all__ = ["PgvectorGrpcDocumentStore"]
