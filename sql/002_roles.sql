-- Roles (cluster-wide, created once; idempotent, safe to run concurrently from several databases).
-- Self-contained: the server may run this file alone to make sure the app role exists (storage/roles.py).
--
--   pgvector_grpc_owner  NOLOGIN. Owns the schema, the catalogue, every collection table and the
--                        SECURITY DEFINER functions that do DDL (create / drop a collection, build
--                        an index). Nobody logs in as it; whoever applies sql/ is made a member.
--   pgvector_grpc_app    LOGIN, NOSUPERUSER, NOBYPASSRLS, owns nothing: the role the server's pool
--                        uses. It reads and writes rows (DML), executes the functions and may create
--                        temporary tables (ingest staging); it cannot alter, truncate or drop a table,
--                        so row-level security always applies to it (see 090_privileges.sql).
--
-- No password is set here: the embedded PostgreSQL trusts its unix socket; elsewhere an operator
-- sets one (ALTER ROLE pgvector_grpc_app PASSWORD ...) and gives the server that URL.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgvector_grpc_owner') THEN
        BEGIN
            CREATE ROLE pgvector_grpc_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by another database's schema run
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgvector_grpc_app') THEN
        BEGIN
            CREATE ROLE pgvector_grpc_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- A role someone widened by hand is narrowed again: with either attribute RLS would not apply.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
               WHERE rolname IN ('pgvector_grpc_app', 'pgvector_grpc_owner') AND (rolsuper OR rolbypassrls)) THEN
        ALTER ROLE pgvector_grpc_app NOSUPERUSER NOBYPASSRLS;
        ALTER ROLE pgvector_grpc_owner NOSUPERUSER NOBYPASSRLS;
    END IF;
    -- Whoever applies sql/ (a superuser, or a managed platform's admin with CREATEROLE) must be
    -- able to replace the owner's functions and tables on the next run.
    IF NOT pg_catalog.pg_has_role(current_user, 'pgvector_grpc_owner', 'MEMBER') THEN
        GRANT pgvector_grpc_owner TO CURRENT_USER;
    END IF;
END
$$;
