"""The database role the server's pool should use: one that row-level security applies to.

sql/002_roles.sql creates ``pgvector_grpc_app`` (LOGIN, NOSUPERUSER, NOBYPASSRLS, owns nothing) and
sql/090_privileges.sql gives it DML and EXECUTE only. The admin conninfo stays for applying sql/;
the pool connects as the app role and sets the tenant in each transaction:
``SELECT set_config('pgvector_grpc.tenant', %s, true)``."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgvector_grpc_server.storage.schema import sql_dir

APP_ROLE = "pgvector_grpc_app"
OWNER_ROLE = "pgvector_grpc_owner"

# What makes row-level security not apply to the connected role, one row per problem found.
_HYGIENE_SQL = """
SELECT 'is a superuser' FROM pg_roles WHERE rolname = current_user AND rolsuper
UNION ALL
SELECT 'has BYPASSRLS' FROM pg_roles WHERE rolname = current_user AND rolbypassrls
UNION ALL
SELECT 'is a member of ' || %(owner)s WHERE pg_has_role(current_user, %(owner)s, 'MEMBER')
UNION ALL
SELECT format('owns table %%I.%%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'pgvector_grpc' AND c.relkind IN ('r', 'p') AND pg_has_role(current_user, c.relowner, 'USAGE')
"""
# Asked only where the catalogue exists: a standby may not have replayed sql/ yet, and the role's own
# problems must not wait for it.
_CATALOGUE_EXISTS_SQL = "SELECT to_regclass('pgvector_grpc.collections') IS NOT NULL"
_POLICIES_SQL = """
SELECT format('multi-tenant collection %I lacks ENABLE / FORCE ROW LEVEL SECURITY', k.name)
FROM pgvector_grpc.collections k
JOIN pg_class c ON c.relname = k.name AND c.relnamespace = 'pgvector_grpc'::regnamespace
WHERE k.multi_tenant AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
"""


class UnsafeRoleError(RuntimeError):
    """The pool's role would not be held to row-level security."""


def app_conninfo(admin_conninfo: str, role: str = APP_ROLE) -> str:
    """The admin's conninfo (same host, socket and database) for ``role``, without the admin's password.

    Enough for the embedded PostgreSQL, which trusts its unix socket; elsewhere give the role a
    password and the server its own URL."""
    params = conninfo_to_dict(admin_conninfo)
    params.pop("password", None)
    params["user"] = role
    return make_conninfo("", **params)


async def ensure_app_role(admin_conninfo: str) -> str:
    """Create the app and owner roles if missing (sql/002_roles.sql, idempotent); the app's conninfo.

    Call with the admin (schema-owner) conninfo at start, before or after applying sql/ (which runs
    the same file and grants the app its privileges); open the pool on the conninfo returned."""
    script = (sql_dir() / "002_roles.sql").read_bytes()
    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as conn:
        await conn.execute(script)  # our own file, no parameters
    return app_conninfo(admin_conninfo)


async def role_problems(conninfo: str) -> list[str]:
    """Why row-level security would not hold the role ``conninfo`` logs in as (empty: it would)."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        rows = await (await conn.execute(_HYGIENE_SQL, {"owner": OWNER_ROLE})).fetchall()
        catalogue = await (await conn.execute(_CATALOGUE_EXISTS_SQL)).fetchone()
        if catalogue is not None and catalogue[0]:
            rows += await (await conn.execute(_POLICIES_SQL)).fetchall()
    return [str(row[0]) for row in rows]


async def check_app_role(conninfo: str) -> None:
    """Refuse (UnsafeRoleError) a pool role that is superuser, BYPASSRLS, or owns the tables."""
    problems = await role_problems(conninfo)
    if problems:
        raise UnsafeRoleError(f"the pool's database role {'; '.join(problems)}: tenants would not be isolated")
