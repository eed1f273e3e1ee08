"""The app role: not a superuser, no BYPASSRLS, owns nothing, cannot take row-level security away;
DDL only through the owner's SECURITY DEFINER functions. And the embedded default's conninfo."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pgvector_grpc_server.storage.roles import (
    APP_ROLE,
    UnsafeRoleError,
    app_conninfo,
    check_app_role,
    ensure_app_role,
    role_problems,
)
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from tests.sql.conftest import as_tenant

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module", autouse=True)
def collection(app_db: str) -> None:
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("SELECT pgvector_grpc.create_collection('guarded', 2, multi_tenant => true)")
        with as_tenant(conn, "a"):
            conn.execute("INSERT INTO pgvector_grpc.guarded (id) VALUES ('1')")


def test_the_app_role_is_neither_superuser_nor_bypassrls_nor_an_owner(app: Conn) -> None:
    row = app.execute(
        "SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,"
        " pg_has_role(current_user, 'pgvector_grpc_owner', 'MEMBER') FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (APP_ROLE, False, False, False, False, False)
    owned = app.execute(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgvector_grpc'::regnamespace"
        " AND relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    assert owned == (0,)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE pgvector_grpc.guarded DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE pgvector_grpc.guarded NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_select ON pgvector_grpc.guarded",
        "CREATE POLICY everything ON pgvector_grpc.guarded USING (true)",
        "DROP TABLE pgvector_grpc.guarded",
        "DROP TABLE pgvector_grpc.checkpoints",
        "TRUNCATE pgvector_grpc.guarded",
        "ALTER TABLE pgvector_grpc.guarded ADD COLUMN x int",
        "CREATE TABLE pgvector_grpc.mine (id int)",
        "DELETE FROM pgvector_grpc.collections",
        "INSERT INTO pgvector_grpc.collections (name, dimension, metric, index_type) VALUES ('x', 2, 'l2', 'none')",
        "SET ROLE pgvector_grpc_owner",
        "ALTER ROLE pgvector_grpc_app BYPASSRLS",
        "CREATE OR REPLACE FUNCTION pgvector_grpc.current_tenant() RETURNS text LANGUAGE sql AS $$ SELECT 'a' $$",
    ],
)
def test_the_app_role_cannot_take_row_level_security_away(app: Conn, statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute(statement)
    with as_tenant(app, "a"):
        assert app.execute("SELECT count(*) FROM pgvector_grpc.guarded").fetchone() == (1,)
    assert app.execute("SELECT count(*) FROM pgvector_grpc.guarded").fetchone() == (0,)


def test_ddl_goes_through_the_owners_functions_only(app: Conn, admin_db: str) -> None:
    app.execute("SELECT pgvector_grpc.create_collection('scratch', 2, 'l2', 'hnsw', multi_tenant => true)")
    owner = app.execute(
        "SELECT pg_get_userbyid(relowner), relforcerowsecurity FROM pg_class"
        " WHERE oid = 'pgvector_grpc.scratch'::regclass"
    ).fetchone()
    assert owner == ("pgvector_grpc_owner", True)
    indexes = app.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'scratch' ORDER BY indexname").fetchall()
    assert len(indexes) == 4 and any("USING hnsw" in i[0] for i in indexes)
    assert any("(tenant_id, seq)" in i[0] for i in indexes)
    # Index builds run as the owner too.
    app.execute("SELECT pgvector_grpc.create_vector_index('scratch')")
    assert app.execute("SELECT pgvector_grpc.drop_collection('scratch')").fetchone() == (True,)
    # Nobody but the app (and the owner) may call them: PUBLIC's EXECUTE is revoked.
    with psycopg.connect(admin_db, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS pgvector_grpc_test_other")
        admin.execute("CREATE ROLE pgvector_grpc_test_other LOGIN")
        admin.execute("GRANT USAGE ON SCHEMA pgvector_grpc TO pgvector_grpc_test_other")
    try:
        with psycopg.connect(app_conninfo(admin_db, "pgvector_grpc_test_other"), autocommit=True) as conn:
            for call in (
                "create_collection('evil', 2)",
                "drop_collection('guarded')",
                "create_vector_index('guarded')",
            ):
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(f"SELECT pgvector_grpc.{call}")
    finally:
        with psycopg.connect(admin_db, autocommit=True) as admin:
            admin.execute("DROP OWNED BY pgvector_grpc_test_other")
            admin.execute("DROP ROLE pgvector_grpc_test_other")


def test_the_identity_sequence_and_temp_staging_need_no_extra_grants(app: Conn) -> None:
    app.execute("CREATE TEMP TABLE IF NOT EXISTS t_probe (x int)")
    with as_tenant(app, "b"):
        app.execute("INSERT INTO pgvector_grpc.guarded (id) VALUES ('1')")  # the same id as A's
        assert app.execute("SELECT tenant_id, id FROM pgvector_grpc.guarded").fetchall() == [("b", "1")]
        raise psycopg.Rollback()


async def test_ensure_app_role_returns_a_conninfo_that_rls_holds(admin_db: str) -> None:
    conninfo = await ensure_app_role(admin_db)
    assert conninfo == await ensure_app_role(admin_db)  # idempotent
    assert conninfo_to_dict(conninfo)["user"] == APP_ROLE
    assert await role_problems(conninfo) == []
    await check_app_role(conninfo)
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP_ROLE,)


async def test_an_unsafe_pool_role_is_refused(admin_db: str) -> None:
    problems = await role_problems(admin_db)  # the admin: a superuser that owns the tables
    assert "is a superuser" in problems and any(p.startswith("owns table") for p in problems)
    with pytest.raises(UnsafeRoleError, match="superuser"):
        await check_app_role(admin_db)
    # A role widened by hand is reported, and narrowed again by the next schema run.
    app_db = await ensure_app_role(admin_db)
    with psycopg.connect(admin_db, autocommit=True) as admin:
        admin.execute("ALTER ROLE pgvector_grpc_app BYPASSRLS")
        try:
            assert await role_problems(app_db) == ["has BYPASSRLS"]
            await ensure_app_role(admin_db)
            assert await role_problems(app_db) == []
        finally:
            admin.execute("ALTER ROLE pgvector_grpc_app NOBYPASSRLS")
