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

-- The vector index of a collection; built separately so that bulk loads can defer it.
CREATE OR REPLACE FUNCTION pgvector_grpc.create_vector_index(collection text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c pgvector_grpc.collections;
    opclass text;
BEGIN
    SELECT * INTO c FROM pgvector_grpc.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection % does not exist', collection USING ERRCODE = 'no_data_found';
    END IF;
    opclass := CASE c.metric WHEN 'cosine' THEN 'vector_cosine_ops'
                             WHEN 'l2' THEN 'vector_l2_ops'
                             ELSE 'vector_ip_ops' END;
    IF c.index_type = 'hnsw' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgvector_grpc.%I USING hnsw (embedding %s) WITH (m = %s, ef_construction = %s)',
                       pgvector_grpc.index_name(c.name, 'vector'), c.name, opclass,
                       coalesce(c.hnsw_m, 16), coalesce(c.hnsw_ef_construction, 64));
    ELSIF c.index_type = 'ivfflat' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgvector_grpc.%I USING ivfflat (embedding %s) WITH (lists = %s)',
                       pgvector_grpc.index_name(c.name, 'vector'), c.name, opclass, coalesce(c.ivfflat_lists, 100));
    END IF;
END
$$;

-- Creates a collection: catalogue row, table, metadata GIN index and (unless deferred) the vector index.
CREATE OR REPLACE FUNCTION pgvector_grpc.create_collection(
    collection text,
    dimension integer,
    metric text DEFAULT 'cosine',
    index_type text DEFAULT 'hnsw',
    hnsw_m integer DEFAULT NULL,
    hnsw_ef_construction integer DEFAULT NULL,
    ivfflat_lists integer DEFAULT NULL,
    defer_index boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pgvector_grpc.collections (name, dimension, metric, index_type, hnsw_m, hnsw_ef_construction, ivfflat_lists)
    VALUES (collection, dimension, metric, index_type, hnsw_m, hnsw_ef_construction, ivfflat_lists);
    EXECUTE format($ddl$
        CREATE TABLE pgvector_grpc.%I (
            id          text COLLATE "C" PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 512),
            content     text,
            metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
            embedding   vector(%s),
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )$ddl$, collection, dimension);
    EXECUTE format('CREATE INDEX %I ON pgvector_grpc.%I USING gin (metadata jsonb_path_ops)',
                   pgvector_grpc.index_name(collection, 'metadata'), collection);
    IF NOT defer_index THEN
        PERFORM pgvector_grpc.create_vector_index(collection);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pgvector_grpc.drop_collection(collection text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM pgvector_grpc.collections WHERE name = collection;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS pgvector_grpc.%I', collection);
    RETURN true;
END
$$;
