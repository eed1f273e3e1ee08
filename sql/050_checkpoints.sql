-- Checkpoints of resumable loaders (Migrate, or any Ingest stream that sends one): saved in the
-- transaction of the batch they describe, so a checkpoint never runs ahead of the data.
CREATE TABLE IF NOT EXISTS pgvector_grpc.checkpoints (
    collection  text NOT NULL REFERENCES pgvector_grpc.collections (name) ON DELETE CASCADE,
    key         text NOT NULL,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, key)
);
ALTER TABLE pgvector_grpc.checkpoints OWNER TO pgvector_grpc_owner;
