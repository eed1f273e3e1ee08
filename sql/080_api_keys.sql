-- API keys. A key is `pgv_<key_id>_<secret>`; only the SHA-256 of the secret is stored, so the
-- table alone does not let anyone call the server. A revoked key stays listed (and keeps
-- authentication required): revoking the last key must not open the server.
CREATE SCHEMA IF NOT EXISTS pgvector_grpc;

CREATE TABLE IF NOT EXISTS pgvector_grpc.api_keys (
    key_id text PRIMARY KEY,
    secret_sha256 bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
    tenant text NOT NULL,
    role text NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
    name text NOT NULL DEFAULT '',
    -- NULL: every collection; otherwise only these.
    collections text[],
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Where the server's pool runs as a role of its own (pgvector_grpc_app), it may only read keys:
-- creating and revoking them is the operator's `pgvector-grpc keys`, as the schema's owner.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgvector_grpc_app') THEN
        REVOKE ALL ON pgvector_grpc.api_keys FROM pgvector_grpc_app;
        GRANT SELECT ON pgvector_grpc.api_keys TO pgvector_grpc_app;
    END IF;
END
$$;
