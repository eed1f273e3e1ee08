"""API keys in pgvector_grpc.api_keys (sql/080_api_keys.sql): only digests of secrets are stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.rows import TupleRow

from pgvector_grpc_server.domain.api_keys import ApiKeyRecord, NewApiKey
from pgvector_grpc_server.domain.principal import Role
from pgvector_grpc_server.storage.errors import translated
from pgvector_grpc_server.storage.pool import Pool, fetch_one
from pgvector_grpc_server.storage.schema import sql_dir

Connection = AsyncConnection[TupleRow]
_COLUMNS = "key_id, tenant, role, name, collections, created_at, revoked_at"


def _record(row: tuple[Any, ...]) -> ApiKeyRecord:
    key_id, tenant, role, name, collections, created_at, revoked_at = row
    granted = None if collections is None else frozenset(collections)
    return ApiKeyRecord(key_id, tenant, Role.named(role), name, granted, created_at, revoked_at)


async def insert_key(
    conn: Connection, key: NewApiKey, *, tenant: str, role: Role, name: str, collections: Iterable[str] | None
) -> None:
    await conn.execute(
        "INSERT INTO pgvector_grpc.api_keys (key_id, secret_sha256, tenant, role, name, collections)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (key.key_id, key.secret_sha256, tenant, role.label, name, None if collections is None else list(collections)),
    )


async def list_keys(conn: Connection) -> list[ApiKeyRecord]:
    cursor = await conn.execute(f"SELECT {_COLUMNS} FROM pgvector_grpc.api_keys ORDER BY created_at, key_id")
    return [_record(row) for row in await cursor.fetchall()]


async def revoke_key(conn: Connection, key_id: str) -> bool:
    """Revoke an active key; False when there is no such active key."""
    cursor = await conn.execute(
        "UPDATE pgvector_grpc.api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
    )
    return cursor.rowcount == 1


class ApiKeyStore:
    """The server's reads of the key table, through its pool."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def find_active(self, key_id: str) -> tuple[ApiKeyRecord, bytes] | None:
        """The unrevoked key with this id and its secret's digest."""
        # Through fetch_one, as every read of a request: with the request's time limit on the session.
        async with translated():
            try:
                row = await fetch_one(
                    self._pool,
                    None,
                    f"SELECT {_COLUMNS}, secret_sha256 FROM pgvector_grpc.api_keys"
                    " WHERE key_id = %s AND revoked_at IS NULL",
                    (key_id,),
                )
            except errors.UndefinedTable:
                return None
        return None if row is None else (_record(row[:-1]), bytes(row[-1]))

    async def any_exist(self) -> bool:
        """Whether any key was ever created (revoked ones count: revoking keys never turns auth off)."""
        async with translated():
            try:
                row = await fetch_one(self._pool, None, "SELECT EXISTS (SELECT FROM pgvector_grpc.api_keys)")
            except errors.UndefinedTable:
                return False  # schema not applied here (--no-apply-schema): no key can exist
        return bool(row and row[0])


@asynccontextmanager
async def key_admin_connection(conninfo: str) -> AsyncIterator[Connection]:
    """A connection for the `keys` command, with the key table created if this database lacks it."""
    async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute((sql_dir() / "080_api_keys.sql").read_text().encode())  # our own idempotent file
        yield conn
