"""Haystack integration: a DocumentStore and retriever backed by a pgvector-grpc server, and a
copier from any Haystack DocumentStore. Needs ``pip install 'pgvector-grpc[haystack]'``."""

from pgvector_grpc.haystack.document_store import PgvectorGrpcDocumentStore
from pgvector_grpc.haystack.retriever import PgvectorGrpcEmbeddingRetriever

__all__ = ["PgvectorGrpcDocumentStore", "PgvectorGrpcEmbeddingRetriever"]
