-- The catalogue of collections: one row per collection, one table per collection
-- (a fixed vector(n) column so that HNSW / IVFFlat indexes apply). The schema and the catalogue
-- belong to pgvector_grpc_owner (002_roles.sql); the server's role only reads the catalogue.
ALTER SCHEMA pgvector_grpc OWNER TO pgvector_grpc_owner;

CREATE TABLE IF NOT EXISTS pgvector_grpc.collections (
    name            text PRIMARY KEY COLLATE "C"
                    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    dimension       integer NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
    metric          text NOT NULL CHECK (metric IN ('cosine', 'l2', 'inner_product')),
    index_type      text NOT NULL CHECK (index_type IN ('hnsw', 'ivfflat', 'none')),
    hnsw_m          integer,
    hnsw_ef_construction integer,
    ivfflat_lists   integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    multi_tenant    boolean NOT NULL DEFAULT false,
    text_search     text
);
-- Catalogues created before tenants existed gain the column (single-tenant collections).
ALTER TABLE pgvector_grpc.collections ADD COLUMN IF NOT EXISTS multi_tenant boolean NOT NULL DEFAULT false;
-- The text-search configuration of a collection's full-text index (NULL: none); collections created
-- before full-text search existed have none.
ALTER TABLE pgvector_grpc.collections ADD COLUMN IF NOT EXISTS text_search text;
-- What the vector index stores (full vectors, halfvec, or binary_quantize bits) and how many
-- candidates per result a search re-ranks by exact distance (NULL: default_rerank_factor, sql/030).
-- Catalogues created before compact indexes existed gain them: their indexes store full vectors.
ALTER TABLE pgvector_grpc.collections ADD COLUMN IF NOT EXISTS index_storage text NOT NULL DEFAULT 'vector'
    CHECK (index_storage IN ('vector', 'halfvec', 'bit'));
ALTER TABLE pgvector_grpc.collections ADD COLUMN IF NOT EXISTS rerank_factor integer
    CHECK (rerank_factor BETWEEN 1 AND 100);
ALTER TABLE pgvector_grpc.collections OWNER TO pgvector_grpc_owner;
