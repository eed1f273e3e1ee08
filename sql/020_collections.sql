-- Creating and dropping collections, callable from psql as well as by the server.

-- The distance operator of a metric (fixed strings only: never user input).
CREATE OR REPLACE FUNCTION pgvector_grpc.distance_operator(metric text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE metric WHEN 'cosine' THEN '<=>' WHEN 'l2' THEN '<->' WHEN 'inner_product' THEN '<#>' END
$$;

-- Index names derive from a hash of the collection name: names of up to 63 characters
-- would otherwise be truncated onto the table's own name.
CREATE OR REPLACE FUNCTION pgvector_grpc.index_name(collection text, kind text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'pgvg_' || md5(collection) || '_' || kind
$$;

-- The tenant of the current transaction, or NULL when none is set (fails closed: no row matches).
--
-- The server sets it at the start of every transaction on a multi-tenant collection:
--     SELECT set_config('pgvector_grpc.tenant', $1, true)
-- is_local = true: the value ends with the transaction, so a pooled connection never carries one
-- tenant's setting into the next caller's transaction (a session-level SET would). Once set and
-- ended, current_setting(..., true) returns '' rather than NULL, hence the NULLIF.
CREATE OR REPLACE FUNCTION pgvector_grpc.current_tenant()
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NULLIF(pg_catalog.current_setting('pgvector_grpc.tenant', true), '')
$$;

-- The schema pgvector's types and operator classes live in (public, or e.g. extensions on Supabase):
-- the DDL functions below run with an empty search path and name them qualified.
CREATE OR REPLACE FUNCTION pgvector_grpc.vector_schema()
RETURNS name LANGUAGE sql STABLE AS $$
    SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector'
$$;

-- DDL runs in SECURITY DEFINER functions owned by pgvector_grpc_owner, with a fixed search_path, so
-- the server's role (pgvector_grpc_app) creates and drops collections without ever owning a table.
-- Every name reaches EXECUTE through format('%I'); numbers through %s of integer values.

-- What a vector index of `storage` holds for `operand` (a vector(dimension) expression): the vector,
-- its halfvec copy, or its binary_quantize bits. The index expression, and so also what a search
-- orders by to walk that index (sql/030; storage/search.py writes the same unqualified).
CREATE OR REPLACE FUNCTION pgvector_grpc.vector_index_key(storage text, dimension integer, operand text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE storage
        WHEN 'halfvec' THEN format('(%s::%I.halfvec(%s))', operand, pgvector_grpc.vector_schema(), dimension)
        WHEN 'bit' THEN format('(%I.binary_quantize(%s)::pg_catalog.bit(%s))', pgvector_grpc.vector_schema(), operand,
                               dimension)
        ELSE operand END
$$;

-- How many candidates per result a search takes from the index before re-ranking them by exact
-- distance, when the catalogue leaves rerank_factor NULL (the server always stores one; these are
-- the vocabulary's DEFAULT_RERANK_FACTORS, and a test keeps the two in step).
CREATE OR REPLACE FUNCTION pgvector_grpc.default_rerank_factor(storage text)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE storage WHEN 'halfvec' THEN 2 WHEN 'bit' THEN 10 ELSE 1 END
$$;

-- The vector index of a collection; built separately so that bulk loads can defer it.
-- The server stores every index parameter; one left NULL (a psql caller's choice) is omitted
-- from WITH (...), so pgvector's own default applies. A compact index (index_storage halfvec or
-- bit) is an expression index over vector_index_key: the table keeps the full vectors.
CREATE OR REPLACE FUNCTION pgvector_grpc.create_vector_index(collection text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c pgvector_grpc.collections;
    opclass text;
    options text;
BEGIN
    SELECT * INTO c FROM pgvector_grpc.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection % does not exist', collection USING ERRCODE = 'no_data_found';
    END IF;
    IF c.index_type = 'none' THEN
        RETURN;
    END IF;
    opclass := CASE WHEN c.index_storage = 'bit' THEN 'bit_hamming_ops'
                    ELSE c.index_storage || CASE c.metric WHEN 'cosine' THEN '_cosine_ops'
                                                          WHEN 'l2' THEN '_l2_ops'
                                                          ELSE '_ip_ops' END END;
    options := CASE c.index_type
        WHEN 'hnsw' THEN concat_ws(', ', 'm = ' || c.hnsw_m, 'ef_construction = ' || c.hnsw_ef_construction)
        WHEN 'ivfflat' THEN 'lists = ' || c.ivfflat_lists
    END;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgvector_grpc.%I USING %s (%s %I.%I)%s',
                   pgvector_grpc.index_name(c.name, 'vector'), c.name, c.index_type,
                   pgvector_grpc.vector_index_key(c.index_storage, c.dimension, 'embedding'),
                   pgvector_grpc.vector_schema(), opclass,
                   CASE WHEN coalesce(options, '') <> '' THEN ' WITH (' || options || ')' ELSE '' END);
END
$$;

-- The name of a text-search configuration as the catalogue keeps it, or NULL when there is no such
-- configuration: "simple", "english", ... for the built-in ones (schema pg_catalog), "myschema.myconf"
-- for another schema's. An unqualified name means pg_catalog's, whatever the caller's search path.
CREATE OR REPLACE FUNCTION pgvector_grpc.text_search_config(name text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN n.nspname = 'pg_catalog' THEN pg_catalog.quote_ident(c.cfgname)
                ELSE pg_catalog.format('%I.%I', n.nspname, c.cfgname) END
    FROM pg_catalog.pg_ts_config c JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
    WHERE pg_catalog.split_part(name, '.', 3) = ''
      AND n.nspname = CASE WHEN pg_catalog.strpos(name, '.') > 0 THEN pg_catalog.split_part(name, '.', 1)
                           ELSE 'pg_catalog' END
      AND c.cfgname = CASE WHEN pg_catalog.strpos(name, '.') > 0 THEN pg_catalog.split_part(name, '.', 2)
                           ELSE name END
$$;

-- Creates a collection: catalogue row, table, metadata GIN index, insertion-order index and
-- (unless deferred) the vector index. embedding_exact keeps float64 values that float32 would
-- round (little-endian, 8 bytes each); seq is the insertion order.
--
-- multi_tenant: every row carries tenant_id (set from the transaction's tenant by default), the key
-- is (tenant_id, id) so tenants may use the same ids, and row-level security (ENABLE + FORCE, so the
-- owner is held to it as well) lets a transaction see and write only its own tenant's rows; with no
-- tenant set it sees nothing and cannot write. COPY FROM is refused on such a table: ingest COPYs
-- into a temporary staging table and moves the rows with INSERT ... SELECT (insert_from_staging).
--
-- text_search (a configuration's name, e.g. 'simple' or 'english'; NULL: none) indexes the content
-- for full-text search: content_tsv, generated from the content with that configuration, and a GIN
-- index on it. The configuration is fixed with the table, as its tsvectors are.
-- index_storage: what the vector index stores ('vector', 'halfvec' or 'bit'; bit with the cosine
-- metric only: sign bits keep a vector's direction, not its length); rerank_factor: candidates per
-- result a search re-ranks (NULL: default_rerank_factor). The server passes every argument by name.
DROP FUNCTION IF EXISTS pgvector_grpc.create_collection(text, integer, text, text, integer, integer, integer, boolean);
DROP FUNCTION IF EXISTS pgvector_grpc.create_collection(text, integer, text, text, integer, integer, integer, boolean,
                                                        boolean);
DROP FUNCTION IF EXISTS pgvector_grpc.create_collection(text, integer, text, text, integer, integer, integer, boolean,
                                                        boolean, text);
CREATE OR REPLACE FUNCTION pgvector_grpc.create_collection(
    collection text,
    dimension integer,
    metric text DEFAULT 'cosine',
    index_type text DEFAULT 'hnsw',
    hnsw_m integer DEFAULT NULL,
    hnsw_ef_construction integer DEFAULT NULL,
    ivfflat_lists integer DEFAULT NULL,
    defer_index boolean DEFAULT false,
    multi_tenant boolean DEFAULT false,
    text_search text DEFAULT NULL,
    index_storage text DEFAULT 'vector',
    rerank_factor integer DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tenant_column text := '';
    pk_columns text := 'id';
    config text;
    text_column text := '';
BEGIN
    IF coalesce(index_storage, 'vector') <> 'vector' AND index_type = 'none' THEN
        RAISE EXCEPTION 'index_storage % needs a vector index', index_storage USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF index_storage = 'bit' AND metric <> 'cosine' THEN
        RAISE EXCEPTION 'index_storage bit needs the cosine metric' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF text_search IS NOT NULL THEN
        config := pgvector_grpc.text_search_config(text_search);
        IF config IS NULL THEN
            RAISE EXCEPTION 'text search configuration "%" does not exist', text_search
                USING ERRCODE = 'undefined_object', HINT = 'SELECT cfgname FROM pg_ts_config lists them.';
        END IF;
        text_column := format('content_tsv tsvector GENERATED ALWAYS AS'
                              ' (to_tsvector(%L::regconfig, coalesce(content, ''''))) STORED,', config);
    END IF;
    INSERT INTO pgvector_grpc.collections (name, dimension, metric, index_type, hnsw_m, hnsw_ef_construction, ivfflat_lists,
                                           multi_tenant, text_search, index_storage, rerank_factor)
    VALUES (collection, dimension, metric, index_type, hnsw_m, hnsw_ef_construction, ivfflat_lists,
            coalesce(multi_tenant, false), config, coalesce(index_storage, 'vector'), rerank_factor);
    IF multi_tenant THEN
        tenant_column := $col$tenant_id text COLLATE "C" NOT NULL
                            DEFAULT pg_catalog.current_setting('pgvector_grpc.tenant', true)
                            CHECK (char_length(tenant_id) BETWEEN 1 AND 256),$col$;
        pk_columns := 'tenant_id, id';
    END IF;
    EXECUTE format($ddl$
        CREATE TABLE pgvector_grpc.%I (
            %s
            id          text COLLATE "C" NOT NULL CHECK (char_length(id) BETWEEN 1 AND 512),
            content     text,
            metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
            embedding   %I.vector(%s),
            embedding_exact bytea,
            seq         bigint GENERATED BY DEFAULT AS IDENTITY,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            %s
            PRIMARY KEY (%s)
        )$ddl$, collection, tenant_column, pgvector_grpc.vector_schema(), dimension, text_column, pk_columns);
    EXECUTE format('CREATE INDEX %I ON pgvector_grpc.%I USING gin (metadata jsonb_path_ops)',
                   pgvector_grpc.index_name(collection, 'metadata'), collection);
    IF config IS NOT NULL THEN
        EXECUTE format('CREATE INDEX %I ON pgvector_grpc.%I USING gin (content_tsv)',
                       pgvector_grpc.index_name(collection, 'text'), collection);
    END IF;
    -- Insertion order (List by seq): within a tenant for a multi-tenant collection.
    EXECUTE format('CREATE INDEX %I ON pgvector_grpc.%I (%s)',
                   pgvector_grpc.index_name(collection, 'seq'), collection,
                   CASE WHEN multi_tenant THEN 'tenant_id, seq' ELSE 'seq' END);
    IF multi_tenant THEN
        EXECUTE format('ALTER TABLE pgvector_grpc.%I ENABLE ROW LEVEL SECURITY', collection);
        EXECUTE format('ALTER TABLE pgvector_grpc.%I FORCE ROW LEVEL SECURITY', collection);
        EXECUTE format('CREATE POLICY tenant_select ON pgvector_grpc.%I FOR SELECT'
                       ' USING (tenant_id = pgvector_grpc.current_tenant())', collection);
        EXECUTE format('CREATE POLICY tenant_insert ON pgvector_grpc.%I FOR INSERT'
                       ' WITH CHECK (tenant_id = pgvector_grpc.current_tenant())', collection);
        EXECUTE format('CREATE POLICY tenant_update ON pgvector_grpc.%I FOR UPDATE'
                       ' USING (tenant_id = pgvector_grpc.current_tenant())'
                       ' WITH CHECK (tenant_id = pgvector_grpc.current_tenant())', collection);
        EXECUTE format('CREATE POLICY tenant_delete ON pgvector_grpc.%I FOR DELETE'
                       ' USING (tenant_id = pgvector_grpc.current_tenant())', collection);
    END IF;
    -- Rows only: no TRUNCATE (it ignores row-level security), REFERENCES or TRIGGER.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON pgvector_grpc.%I TO pgvector_grpc_app', collection);
    IF NOT defer_index THEN
        PERFORM pgvector_grpc.create_vector_index(collection);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pgvector_grpc.drop_collection(collection text)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM pgvector_grpc.collections WHERE name = collection;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS pgvector_grpc.%I', collection);
    RETURN true;
END
$$;
