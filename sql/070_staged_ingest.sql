-- Ingest through the connection's staging table (the server creates it on every connection:
--   CREATE TEMP TABLE IF NOT EXISTS pgvector_grpc_staging (
--       id text COLLATE "C", content text, metadata jsonb, embedding vector, embedding_exact bytea, seq bigint
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
-- staged_order: new rows take the insertion order staged in seq (numbers from reserve_insertion_order)
-- instead of the next ones at INSERT; a replaced row keeps its place either way.
DROP FUNCTION IF EXISTS pgvector_grpc.insert_from_staging(text, text);
CREATE OR REPLACE FUNCTION pgvector_grpc.insert_from_staging(
    collection text, on_conflict text DEFAULT 'fail', staged_order boolean DEFAULT false)
RETURNS TABLE (inserted bigint, written bigint)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    c pgvector_grpc.collections;
    conflict_key text;
    tail text;
    seq_column text := CASE WHEN staged_order THEN ', seq' ELSE '' END;
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
        'WITH w(fresh) AS (INSERT INTO pgvector_grpc.%I (id, content, metadata, embedding, embedding_exact%s)'
        ' SELECT id, content, coalesce(metadata, ''{}''), embedding, embedding_exact%s FROM pg_temp.pgvector_grpc_staging%s)'
        ' SELECT count(*) FILTER (WHERE fresh), count(*) FROM w', c.name, seq_column, seq_column, tail);
END
$$;

-- The next n insertion-order numbers (seq) of a collection, ascending. nextval is not transactional,
-- so the server reserves each Ingest batch's numbers in stream order before the batches run in
-- transactions side by side, and writes them explicitly: List's insertion order then follows the
-- stream whichever transaction finishes first. SECURITY DEFINER: the identity sequence belongs to
-- the table's owner, and this is the only use of it the app role needs.
CREATE OR REPLACE FUNCTION pgvector_grpc.reserve_insertion_order(collection text, n integer)
RETURNS bigint[] LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    numbers regclass;
BEGIN
    IF NOT EXISTS (SELECT FROM pgvector_grpc.collections WHERE name = collection) THEN
        RAISE EXCEPTION 'collection % does not exist', collection USING ERRCODE = 'no_data_found';
    END IF;
    numbers := pg_get_serial_sequence(format('pgvector_grpc.%I', collection), 'seq');
    RETURN ARRAY(SELECT nextval(numbers) FROM generate_series(1, n));
END
$$;
