"""pgvector-grpc server: a gRPC vector search service on PostgreSQL + pgvector."""

__version__ = "0.1.0"
