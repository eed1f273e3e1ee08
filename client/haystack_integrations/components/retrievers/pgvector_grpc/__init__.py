"""The pgvector-grpc retrievers for Haystack pipelines."""

from haystack_integrations.components.retrievers.pgvector_grpc.hybrid_retriever import PgvectorGrpcHybridRetriever
from haystack_integrations.components.retrievers.pgvector_grpc.retriever import PgvectorGrpcEmbeddingRetriever

__all__ = ["PgvectorGrpcEmbeddingRetriever", "PgvectorGrpcHybridRetriever"]
