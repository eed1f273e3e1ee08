"""Migrating ChromaDB collections into pgvector-grpc (server-side Migrate RPC or client-side through Ingest)."""
