-- Ingest through the connection's staging table (the server creates it on every connection:
--   CREATE TEMP TABLE IF NOT EXISTS pgvector_grpc_staging (
--       id text COLLATE "C", content text, metadata jsonb, embedding vector, embedding_exact bytea
--   ) ON COMMIT DELETE ROWS).
-- COPY FROM is refused on a table with row-level security (0A000), so a multi-tenant batch is:
--   BEGIN;
--   SELECT set_config('pgvector_grpc.tenant', $1, true);
--   COPY pgvector_grpc_staging (id, content, metadata, embedding, embedding_exact) FROM STDIN (FORMAT BINARY);
--   SELECT inserted, written FROM pgvector_grpc.insert_from_staging($2, 'upsert' | 'skip' | 'fail');
--   COMMIT;
-- The rows take the transaction's tenant (tenant_id's default) and pass the insert policy's check;
-- an id another tenant holds is another key, so an upsert creates the caller's own row and never
-- touches theirs. Works for single-tenant collections too (conflict target id).
-- Returns the rows inserted and the rows written (inserted + updated); a staged id must appear once.
CREATE OR REPLACE FUNCTION pgvector_grpc.insert_from_staging(collection text, on_conflict text DEFAULT 'fail')
RETURNS TABLE (inserted bigint, written bigint)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    c pgvector_grpc.collections;
    conflict_key text;
    tail text;
BEGIN
    SELECT * INTO c FROM pgvector_grpc.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection % does not exist', collection USING ERRCODE = 'no_data_found';
    END IF;
    conflict_key := CASE WHEN c.multi_tenant THEN 'tenant_id, id' ELSE 'id' END;
    tail := CASE on_conflict
        WHEN 'upsert' THEN format(' ON CONFLICT (%s) DO UPDATE SET content = EXCLUDED.content,'
                                  ' metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding,'
                                  ' embedding_exact = EXCLUDED.embedding_exact, updated_at = now()'
                                  ' RETURNING (xmax = 0)', conflict_key)
        WHEN 'skip' THEN format(' ON CONFLICT (%s) DO NOTHING RETURNING true', conflict_key)
        WHEN 'fail' THEN ' RETURNING true'
    END;
    IF tail IS NULL THEN
        RAISE EXCEPTION 'on_conflict must be upsert, skip or fail, not %', on_conflict
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE format(
        'WITH w(fresh) AS (INSERT INTO pgvector_grpc.%I (id, content, metadata, embedding, embedding_exact)'
        ' SELECT id, content, coalesce(metadata, ''{}''), embedding, embedding_exact FROM pg_temp.pgvector_grpc_staging%s)'
        ' SELECT count(*) FILTER (WHERE fresh), count(*) FROM w', c.name, tail);
END
$$;
