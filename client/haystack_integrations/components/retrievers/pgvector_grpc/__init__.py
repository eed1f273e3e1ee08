"""The pgvector-grpc retriever for Haystack pipelines."""

from haystack_integrations.components.retrievers.pgvector_grpc.retriever import PgvectorGrpcEmbeddingRetriever

__all__ = ["PgvectorGrpcEmbeddingRetriever"]
