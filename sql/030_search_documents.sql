-- The object a filter that reads the id or the content is evaluated on: {"id", "content", "meta"}.
-- A document without text has no "content" key, as a metadata field without a value has none.
CREATE OR REPLACE FUNCTION pgvector_grpc.document_object(id text, content text, metadata jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', id, 'meta', metadata)
           || CASE WHEN content IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('content', content) END
$$;

-- search_documents: the search entry point for the server and for psql users.
--
--   SELECT * FROM pgvector_grpc.search_documents('my_collection', '[0.1, 0.2, ...]', 10);
--   SELECT * FROM pgvector_grpc.search_documents('my_collection', '[...]', 10,
--                 filter => '$.year.type() == "number" && $.year >= 2020');
--   SELECT * FROM pgvector_grpc.search_documents('my_collection', '[...]', 10,
--                 metadata_contains => '{"category": "news"}');
--
-- Filtered searches return match_count rows whenever that many match: the HNSW / IVFFlat
-- iterative scan is switched on for this transaction only (set_config(..., true) = SET LOCAL),
-- never for the session, so nothing leaks across pooled connections. Relaxed order is re-sorted
-- by the outer query. The ORDER BY is the distance operator itself so the index is used.
-- filter_tz evaluates the filter with time-zone aware datetime comparisons (jsonb_path_match_tz);
-- filter_document evaluates it on document_object(...) (filters that read the id or the text).
-- SECURITY INVOKER (as every function the server calls for rows): row-level security applies to the
-- caller, so on a multi-tenant collection it returns only the rows of the transaction's tenant.
-- tenant: when given, the function first makes it the transaction's tenant, exactly as
-- set_config('pgvector_grpc.tenant', tenant, true) would (it ends with the transaction - in autocommit,
-- with the statement): a multi-tenant search in one round trip. It grants nothing: whoever may call
-- this function may call set_config as well.
DROP FUNCTION IF EXISTS pgvector_grpc.search_documents(text, vector, integer, jsonpath, double precision, integer, boolean, jsonb);
DROP FUNCTION IF EXISTS pgvector_grpc.search_documents(text, vector, integer, jsonpath, double precision, integer, boolean, jsonb, boolean, boolean);
CREATE OR REPLACE FUNCTION pgvector_grpc.search_documents(
    collection text,
    query_embedding vector,
    match_count integer DEFAULT 10,
    filter jsonpath DEFAULT NULL,
    min_similarity double precision DEFAULT NULL,
    ef_search integer DEFAULT 100,
    include_embedding boolean DEFAULT false,
    metadata_contains jsonb DEFAULT NULL,
    filter_tz boolean DEFAULT false,
    filter_document boolean DEFAULT false,
    tenant text DEFAULT NULL)
RETURNS TABLE (id text, content text, metadata jsonb, embedding vector,
               similarity double precision, distance double precision, embedding_exact bytea)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    c pgvector_grpc.collections;
    op text;
    score text;
BEGIN
    IF tenant IS NOT NULL THEN
        PERFORM set_config('pgvector_grpc.tenant', tenant, true);
    END IF;
    SELECT * INTO c FROM pgvector_grpc.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection % does not exist', collection USING ERRCODE = 'no_data_found';
    END IF;
    op := pgvector_grpc.distance_operator(c.metric);
    score := CASE c.metric WHEN 'cosine' THEN '1 - h.distance' ELSE '- h.distance' END;
    PERFORM set_config('hnsw.ef_search', greatest(coalesce(ef_search, 100), match_count)::text, true);
    PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    PERFORM set_config('ivfflat.iterative_scan', 'relaxed_order', true);
    RETURN QUERY EXECUTE format($q$
        WITH h AS MATERIALIZED (
            SELECT d.id, d.content, d.metadata,
                   CASE WHEN $5 THEN d.embedding END AS embedding,
                   CASE WHEN $5 THEN d.embedding_exact END AS embedding_exact,
                   (d.embedding %1$s $1)::double precision AS distance
            FROM pgvector_grpc.%2$I d
            WHERE d.embedding IS NOT NULL
              AND ($3 IS NULL OR CASE
                    WHEN $8 THEN jsonb_path_match_tz(
                        pgvector_grpc.document_object(d.id, d.content, d.metadata), $3, '{}', true)
                    WHEN $7 THEN jsonb_path_match_tz(d.metadata, $3, '{}', true)
                    ELSE d.metadata @@ $3 END)
              AND ($6 IS NULL OR d.metadata @> $6)
            ORDER BY d.embedding %1$s $1
            LIMIT $2)
        SELECT h.id, h.content, h.metadata, h.embedding, %3$s AS similarity, h.distance, h.embedding_exact
        FROM h
        WHERE $4 IS NULL OR %3$s >= $4
        ORDER BY h.distance, h.id$q$, op, c.name, score)
    USING query_embedding, match_count, filter, min_similarity, include_embedding, metadata_contains, filter_tz,
          filter_document;
END
$$;

-- The seed's call form, on the default `documents` collection: containment filter, cosine similarity.
CREATE OR REPLACE FUNCTION public.search_documents(
    query_embedding vector,
    match_count integer DEFAULT 10,
    filter jsonb DEFAULT '{}')
RETURNS TABLE (id text, content text, metadata jsonb, similarity double precision)
LANGUAGE sql SECURITY INVOKER AS $$
    SELECT s.id, s.content, s.metadata, s.similarity
    FROM pgvector_grpc.search_documents('documents', query_embedding, match_count,
                                        metadata_contains => nullif(filter, '{}'::jsonb)) s
$$;
