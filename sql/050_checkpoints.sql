-- Checkpoints of resumable loaders (Migrate, or any Ingest stream that sends one): saved in the
-- transaction of the batch they describe, so a checkpoint never runs ahead of the data.
--
-- Per tenant: a multi-tenant collection's loaders each keep their own resume point, keyed
-- (collection, tenant, key). The tenant is the transaction's (pgvector_grpc.current_tenant(), see
-- 020_collections.sql), '' for a single-tenant collection's loaders, which run without one.
-- Row-level security (ENABLE + FORCE) lets a transaction read and write only its own tenant's
-- checkpoints: one tenant cannot read or overwrite another's.
CREATE TABLE IF NOT EXISTS pgvector_grpc.checkpoints (
    collection  text NOT NULL REFERENCES pgvector_grpc.collections (name) ON DELETE CASCADE,
    tenant      text NOT NULL DEFAULT coalesce(pgvector_grpc.current_tenant(), ''),
    key         text NOT NULL,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, tenant, key)
);
ALTER TABLE pgvector_grpc.checkpoints OWNER TO pgvector_grpc_owner;

-- A checkpoints table from before tenants: its rows are single-tenant ones (tenant '').
ALTER TABLE pgvector_grpc.checkpoints ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT '';
ALTER TABLE pgvector_grpc.checkpoints ALTER COLUMN tenant SET DEFAULT coalesce(pgvector_grpc.current_tenant(), '');
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_constraint k
        JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
        WHERE k.conrelid = 'pgvector_grpc.checkpoints'::regclass AND k.contype = 'p' AND a.attname = 'tenant'
    ) THEN
        ALTER TABLE pgvector_grpc.checkpoints DROP CONSTRAINT IF EXISTS checkpoints_pkey;
        ALTER TABLE pgvector_grpc.checkpoints ADD PRIMARY KEY (collection, tenant, key);
    END IF;
END
$$;

ALTER TABLE pgvector_grpc.checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgvector_grpc.checkpoints FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS own_tenant ON pgvector_grpc.checkpoints;
CREATE POLICY own_tenant ON pgvector_grpc.checkpoints
    USING (tenant = coalesce(pgvector_grpc.current_tenant(), ''))
    WITH CHECK (tenant = coalesce(pgvector_grpc.current_tenant(), ''));
