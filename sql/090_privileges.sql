-- Who may do what (002_roles.sql creates the roles). Runs last, so that it covers every object.
--
-- pgvector_grpc_owner owns the schema, the catalogue, the checkpoints, every collection table and
-- the DDL functions. pgvector_grpc_app (the server's pool) gets:
--   * USAGE on the schema; SELECT on the catalogue (DDL only through the functions below);
--   * SELECT, INSERT, UPDATE, DELETE on the checkpoints and on every collection table
--     (create_collection grants it on new ones) - no TRUNCATE, which ignores row-level security;
--   * EXECUTE on the functions: the row functions (search_documents, insert_from_staging, ...)
--     are SECURITY INVOKER, so row-level security applies to the app; create_collection,
--     drop_collection, create_vector_index and reserve_insertion_order are SECURITY DEFINER
--     (owner, fixed search_path) and nobody else may execute them;
--   * TEMPORARY on the database, for the per-connection ingest staging table.
-- Not being a table's owner, a superuser or BYPASSRLS, the app cannot ALTER, DISABLE or get around
-- row-level security; tables also FORCE it, so even their owner is held to the policies.
--
-- The tenant is set per transaction, never per session (connections are pooled):
--     BEGIN; SELECT set_config('pgvector_grpc.tenant', $1, true); ...; COMMIT;
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT name FROM pgvector_grpc.collections LOOP
        EXECUTE format('ALTER TABLE pgvector_grpc.%I OWNER TO pgvector_grpc_owner', c.name);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON pgvector_grpc.%I TO pgvector_grpc_app', c.name);
    END LOOP;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO pgvector_grpc_app', current_database());
END
$$;

ALTER FUNCTION pgvector_grpc.create_collection(text, integer, text, text, integer, integer, integer, boolean, boolean,
                                               text, text, integer)
    OWNER TO pgvector_grpc_owner;
ALTER FUNCTION pgvector_grpc.drop_collection(text) OWNER TO pgvector_grpc_owner;
ALTER FUNCTION pgvector_grpc.create_vector_index(text) OWNER TO pgvector_grpc_owner;
REVOKE ALL ON FUNCTION pgvector_grpc.create_collection(text, integer, text, text, integer, integer, integer, boolean, boolean,
                                                       text, text, integer),
                       pgvector_grpc.drop_collection(text),
                       pgvector_grpc.create_vector_index(text)
    FROM PUBLIC;

ALTER FUNCTION pgvector_grpc.reserve_insertion_order(text, integer) OWNER TO pgvector_grpc_owner;
REVOKE ALL ON FUNCTION pgvector_grpc.reserve_insertion_order(text, integer) FROM PUBLIC;

GRANT USAGE ON SCHEMA pgvector_grpc TO pgvector_grpc_app;
GRANT SELECT ON pgvector_grpc.collections TO pgvector_grpc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgvector_grpc.checkpoints TO pgvector_grpc_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgvector_grpc TO pgvector_grpc_app;
