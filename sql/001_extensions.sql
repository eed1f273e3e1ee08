-- pgvector and the schema that holds the catalogue and every collection's table.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS pgvector_grpc;
