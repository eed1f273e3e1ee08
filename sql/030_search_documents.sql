-- The object a filter that reads the id or the content is evaluated on: {"id", "content", "meta"}.
-- A document without text has no "content" key, as a metadata field without a value has none.
CREATE OR REPLACE FUNCTION pgvector_grpc.document_object(id text, content text, metadata jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', id, 'meta', metadata)
           || CASE WHEN content IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('content', content) END
$$;

-- How many rows a filter may match for a search to scan them all exactly instead of walking the
-- vector index: the selectivity switch of search_documents and of the server's inlined search.
-- An exact scan costs about one row fetch per matching row; a filtered HNSW walk costs about
-- ef_search / selectivity visited tuples, each dearer than a fetch. The two meet near
-- sqrt(rows * ef_search) matching rows (1,414 of 20,000 rows at ef_search 100; 10,000 of 1M), so
-- fewer matches than that are scanned exactly. The row count is the planner's estimate or the live
-- count from the statistics, whichever is larger: both are cheap to read and neither needs ANALYZE.
CREATE OR REPLACE FUNCTION pgvector_grpc.exact_scan_limit(collection text, ef_search integer)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT greatest(ef_search, ceil(sqrt(greatest(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)
                                         * ef_search)))::bigint
    FROM pg_catalog.pg_class c
    WHERE c.oid = pg_catalog.to_regclass(format('pgvector_grpc.%I', collection))
$$;

-- search_documents: the search entry point for psql users (the server runs the same plans inlined).
--
--   SELECT * FROM pgvector_grpc.search_documents('my_collection', '[0.1, 0.2, ...]', 10);
--   SELECT * FROM pgvector_grpc.search_documents('my_collection', '[...]', 10,
--                 filter => '$.year.type() == "number" && $.year >= 2020');
--   SELECT * FROM pgvector_grpc.search_documents('my_collection', '[...]', 10,
--                 metadata_contains => '{"category": "news"}');
--
-- A filtered search first counts the matching rows through the metadata index, up to
-- exact_scan_limit. When fewer match, it computes the distance of every matching row: the exact
-- answer, and exhaustive is true on every row. When more match, it walks the vector index with the
-- iterative scan switched on for this transaction only (set_config(..., true) = SET LOCAL, never for
-- the session, so nothing leaks across pooled connections), so it still returns match_count rows;
-- relaxed order is re-sorted by the outer query and exhaustive is false. An unfiltered search is
-- exhaustive only on a collection without a vector index. The ORDER BY of the index walk is the
-- distance operator itself so the index is used; the exact scan's OFFSET 0 keeps it from the index.
-- filter_tz evaluates the filter with time-zone aware datetime comparisons (jsonb_path_match_tz);
-- filter_document evaluates it on document_object(...) (filters that read the id or the text).
-- SECURITY INVOKER (as every function the server calls for rows): row-level security applies to the
-- caller, so on a multi-tenant collection it returns only the rows of the transaction's tenant.
-- A collection whose index stores halfvec or bit values (index_storage) is walked through that index
-- for rerank_factor x match_count candidates (the argument, else the collection's, else
-- default_rerank_factor), and their exact distances pick and order the match_count returned;
-- ef_search is raised to the number of candidates (up to pgvector's 1000).
-- tenant: when given, the function first makes it the transaction's tenant, exactly as
-- set_config('pgvector_grpc.tenant', tenant, true) would (it ends with the transaction - in autocommit,
-- with the statement): a multi-tenant search in one round trip. It grants nothing: whoever may call
-- this function may call set_config as well.
-- query_text (on a collection created with text_search) makes it a hybrid search: the documents
-- closest to query_embedding and those matching query_text best (websearch_to_tsquery with the
-- collection's configuration, ranked by ts_rank_cd), max(2 * match_count, 20) of each, fused by
-- reciprocal rank fusion - rrf_k and the two weights as in hybrid_search below - and ordered by
-- fused_score; keyword_rank is a row's place in the keyword ranking (NULL: it matched no keyword).
-- With a NULL query_embedding the keywords alone rank. Both sides take the same filter.
DROP FUNCTION IF EXISTS pgvector_grpc.search_documents(text, vector, integer, jsonpath, double precision, integer, boolean, jsonb);
DROP FUNCTION IF EXISTS pgvector_grpc.search_documents(text, vector, integer, jsonpath, double precision, integer, boolean, jsonb, boolean, boolean);
-- The versions before full-text search (the first eleven arguments) and before rerank_factor (the
-- first fifteen): CREATE OR REPLACE can change neither the arguments nor the result.
DROP FUNCTION IF EXISTS pgvector_grpc.search_documents(text, vector, integer, jsonpath, double precision, integer, boolean,
                                                       jsonb, boolean, boolean, text);
DROP FUNCTION IF EXISTS pgvector_grpc.search_documents(text, vector, integer, jsonpath, double precision, integer, boolean,
                                                       jsonb, boolean, boolean, text, text, double precision,
                                                       double precision, integer);
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
    tenant text DEFAULT NULL,
    query_text text DEFAULT NULL,
    full_text_weight double precision DEFAULT 1,
    semantic_weight double precision DEFAULT 1,
    rrf_k integer DEFAULT 60,
    rerank_factor integer DEFAULT NULL)
RETURNS TABLE (id text, content text, metadata jsonb, embedding vector,
               similarity double precision, distance double precision, embedding_exact bytea,
               exhaustive boolean, keyword_rank bigint, fused_score double precision)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    c pgvector_grpc.collections;
    op text;
    score text;
    -- Fusing two rankings takes more candidates from each than the answer holds.
    wanted integer := CASE WHEN query_text IS NULL THEN match_count ELSE greatest(2 * match_count, 20) END;
    factor integer;
    effective_ef integer;
    index_op text;
    scan_limit bigint;
    scan_exactly boolean;
    candidates text;
    vector_side text;
    matching constant text := $m$
              ($3 IS NULL OR CASE
                    WHEN $8 THEN jsonb_path_match_tz(
                        pgvector_grpc.document_object(d.id, d.content, d.metadata), $3, '{}', true)
                    WHEN $7 THEN jsonb_path_match_tz(d.metadata, $3, '{}', true)
                    ELSE d.metadata @@ $3 END)
              AND ($6 IS NULL OR d.metadata @> $6)$m$;
BEGIN
    IF tenant IS NOT NULL THEN
        PERFORM set_config('pgvector_grpc.tenant', tenant, true);
    END IF;
    SELECT * INTO c FROM pgvector_grpc.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection % does not exist', collection USING ERRCODE = 'no_data_found';
    END IF;
    IF query_text IS NOT NULL AND c.text_search IS NULL THEN
        RAISE EXCEPTION 'collection % has no full-text index', collection
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Create the collection with text_search (create_collection(..., text_search => ''simple'')).';
    END IF;
    op := pgvector_grpc.distance_operator(c.metric);
    score := CASE c.metric WHEN 'cosine' THEN '1 - %s' ELSE '- %s' END;
    factor := CASE WHEN c.index_storage = 'vector' THEN 1
                   ELSE greatest(1, coalesce(rerank_factor, c.rerank_factor,
                                             pgvector_grpc.default_rerank_factor(c.index_storage))) END;
    index_op := CASE WHEN c.index_storage = 'bit' THEN '<~>' ELSE op END;
    effective_ef := least(1000, greatest(coalesce(ef_search, 100), wanted::bigint * factor));
    scan_exactly := c.index_type = 'none';
    IF NOT scan_exactly AND query_embedding IS NOT NULL AND (filter IS NOT NULL OR metadata_contains IS NOT NULL) THEN
        scan_limit := pgvector_grpc.exact_scan_limit(c.name, effective_ef);
        EXECUTE format('SELECT count(*) < $9 FROM (SELECT FROM pgvector_grpc.%I d WHERE d.embedding IS NOT NULL AND %s'
                       ' LIMIT $9) m', c.name, matching)
            INTO scan_exactly
            USING query_embedding, match_count, filter, min_similarity, include_embedding, metadata_contains,
                  filter_tz, filter_document, scan_limit;
    END IF;
    PERFORM set_config('hnsw.ef_search', effective_ef::text, true);
    PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    PERFORM set_config('ivfflat.iterative_scan', 'relaxed_order', true);
    IF c.index_type = 'ivfflat' THEN  -- pgvector's advice: the square root of the lists (its default lists: 100)
        PERFORM set_config('ivfflat.probes', greatest(1, round(sqrt(coalesce(c.ivfflat_lists, 100))))::int::text, true);
    END IF;
    IF query_text IS NULL THEN
        candidates := format($c$
                SELECT d.id, d.content, d.metadata,
                       CASE WHEN $5 THEN d.embedding END AS embedding,
                       CASE WHEN $5 THEN d.embedding_exact END AS embedding_exact,
                       (d.embedding %1$s $1)::double precision AS distance
                FROM pgvector_grpc.%2$I d
                WHERE d.embedding IS NOT NULL AND %3$s$c$, op, c.name, matching);
        RETURN QUERY EXECUTE format($q$
            WITH h AS MATERIALIZED (%1$s)
            SELECT h.id, h.content, h.metadata, h.embedding, %2$s AS similarity, h.distance, h.embedding_exact,
                   %3$L::boolean, NULL::bigint, NULL::double precision
            FROM h
            WHERE $4 IS NULL OR %2$s >= $4
            ORDER BY h.distance, h.id$q$,
            CASE WHEN scan_exactly
                 THEN format('SELECT * FROM (%s OFFSET 0) e ORDER BY e.distance, e.id LIMIT $2', candidates)
                 WHEN c.index_storage = 'vector'
                 THEN format('%s ORDER BY d.embedding %s $1 LIMIT $2', candidates, op)
                 ELSE format('SELECT * FROM (%s ORDER BY %s %s %s LIMIT $2::bigint * %s) r ORDER BY r.distance, r.id LIMIT $2',
                             candidates, pgvector_grpc.vector_index_key(c.index_storage, c.dimension, 'd.embedding'),
                             index_op, pgvector_grpc.vector_index_key(c.index_storage, c.dimension, '$1'), factor) END,
            format(score, 'h.distance'), scan_exactly)
        USING query_embedding, match_count, filter, min_similarity, include_embedding, metadata_contains, filter_tz,
              filter_document;
        RETURN;
    END IF;
    -- Hybrid: the vector ranking (none without a query embedding) and the keyword ranking, each of
    -- `wanted` candidates that match the filter, fused by reciprocal rank fusion: a document scores
    -- semantic_weight / (rrf_k + its vector rank) + full_text_weight / (rrf_k + its keyword rank),
    -- a term counting only for a ranking that holds it. One statement.
    candidates := format($c$
            SELECT d.ctid AS row_id, d.id, (d.embedding %1$s $1)::double precision AS distance
            FROM pgvector_grpc.%2$I d
            WHERE d.embedding IS NOT NULL AND %3$s$c$, op, c.name, matching);
    vector_side := CASE
        WHEN query_embedding IS NULL THEN 'SELECT NULL::tid AS row_id, NULL::text AS id, NULL::double precision AS distance WHERE false'
        WHEN scan_exactly THEN format('SELECT * FROM (%s OFFSET 0) e ORDER BY e.distance, e.id LIMIT $10', candidates)
        WHEN c.index_storage = 'vector' THEN format('%s ORDER BY d.embedding %s $1 LIMIT $10', candidates, op)
        ELSE format('SELECT * FROM (%s ORDER BY %s %s %s LIMIT $10::bigint * %s) r ORDER BY r.distance, r.id LIMIT $10',
                    candidates, pgvector_grpc.vector_index_key(c.index_storage, c.dimension, 'd.embedding'),
                    index_op, pgvector_grpc.vector_index_key(c.index_storage, c.dimension, '$1'), factor) END;
    RETURN QUERY EXECUTE format($q$
        WITH v AS MATERIALIZED (
            SELECT n.row_id, row_number() OVER (ORDER BY n.distance, n.id) AS rank
            FROM (%1$s) n
            WHERE $4 IS NULL OR %2$s >= $4),
        t AS MATERIALIZED (SELECT websearch_to_tsquery($9::regconfig, $11) AS query),
        k AS MATERIALIZED (
            SELECT m.row_id, row_number() OVER (ORDER BY m.relevance DESC, m.id) AS rank
            FROM (SELECT d.ctid AS row_id, d.id, ts_rank_cd(d.content_tsv, t.query) AS relevance
                  FROM pgvector_grpc.%3$I d, t
                  WHERE d.content_tsv @@ t.query AND %4$s
                  ORDER BY relevance DESC, d.id LIMIT $10) m),
        f AS (
            SELECT coalesce(v.row_id, k.row_id) AS row_id, k.rank AS keyword_rank,
                   coalesce($13 / ($12 + v.rank), 0) + coalesce($14 / ($12 + k.rank), 0) AS fused_score
            FROM v FULL JOIN k ON k.row_id = v.row_id)
        SELECT d.id, d.content, d.metadata, CASE WHEN $5 THEN d.embedding END, %5$s AS similarity,
               (d.embedding %6$s $1)::double precision, CASE WHEN $5 THEN d.embedding_exact END,
               %7$L::boolean, f.keyword_rank, f.fused_score
        FROM f JOIN pgvector_grpc.%3$I d ON d.ctid = f.row_id
        ORDER BY f.fused_score DESC, d.id
        LIMIT $2$q$,
        vector_side, format(score, 'n.distance'), c.name, matching,
        format(score, format('(d.embedding %s $1)::double precision', op)), op, scan_exactly)
    USING query_embedding, match_count, filter, min_similarity, include_embedding, metadata_contains, filter_tz,
          filter_document, c.text_search, wanted, query_text, rrf_k::double precision, semantic_weight,
          full_text_weight;
END
$$;

-- hybrid_search: keyword and vector relevance fused, in the call form of Supabase's documented
-- hybrid_search (query_text, query_embedding, match_count, full_text_weight, semantic_weight, rrf_k),
-- with the collection first and this project's filters and tenant as further options:
--
--   SELECT * FROM pgvector_grpc.hybrid_search('my_collection', 'error E1234', '[0.1, 0.2, ...]', 10);
--
-- Both rankings take the documents the filter matches (and, on a multi-tenant collection, only the
-- tenant's: row-level security holds for both); a NULL query_embedding ranks by keywords alone.
-- The keyword query is read by websearch_to_tsquery: words, "quoted phrases", OR, -excluded.
CREATE OR REPLACE FUNCTION pgvector_grpc.hybrid_search(
    collection text,
    query_text text,
    query_embedding vector,
    match_count integer DEFAULT 10,
    full_text_weight double precision DEFAULT 1,
    semantic_weight double precision DEFAULT 1,
    rrf_k integer DEFAULT 60,
    filter jsonpath DEFAULT NULL,
    metadata_contains jsonb DEFAULT NULL,
    tenant text DEFAULT NULL)
RETURNS TABLE (id text, content text, metadata jsonb, similarity double precision, keyword_rank bigint,
               fused_score double precision)
LANGUAGE sql SECURITY INVOKER AS $$
    SELECT s.id, s.content, s.metadata, s.similarity, s.keyword_rank, s.fused_score
    FROM pgvector_grpc.search_documents(collection, query_embedding, match_count, filter,
                                        metadata_contains => metadata_contains, tenant => tenant,
                                        query_text => coalesce(query_text, ''), full_text_weight => full_text_weight,
                                        semantic_weight => semantic_weight, rrf_k => rrf_k) s
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
