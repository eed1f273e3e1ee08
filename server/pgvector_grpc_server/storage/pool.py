"""The connection pool: pgvector types, binary COPY dumpers and a staging table on every connection."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from weakref import WeakKeyDictionary

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from pgvector_grpc_server.domain.deadline import remaining_ms
from pgvector_grpc_server.storage.observed import StatementObserver, observed_cursor_class

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


class JsonText(str):
    """JSON text that goes to a jsonb column as is (binary jsonb = version byte + text)."""

    __slots__ = ()


class PackedVector(bytes):
    """A vector already in pgvector's binary format (dim, unused, big-endian float4s)."""

    __slots__ = ()


class _JsonTextDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: JsonText) -> bytes:
        return b"\x01" + obj.encode()


class _PackedVectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: PackedVector) -> bytes:
        return obj


# One staging table per connection for upserts: COPY cannot say ON CONFLICT. The vector column
# has no dimension so that every collection shares it; the INSERT into the target checks it.
STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS pgvector_grpc_staging (
    id text COLLATE "C", content text, metadata jsonb, embedding vector, embedding_exact bytea
) ON COMMIT DELETE ROWS
"""


async def _configure(
    conn: AsyncConnection[TupleRow], statement_timeout_ms: int, observer: StatementObserver | None
) -> None:
    if observer is not None:
        conn.cursor_factory = observed_cursor_class(observer)
    await register_vector_async(conn)
    conn.adapters.register_dumper(JsonText, _JsonTextDumper)
    conn.adapters.register_dumper(PackedVector, _PackedVectorDumper)
    await conn.set_autocommit(True)
    await conn.execute(STAGING_DDL)
    await conn.execute("SET TimeZone = 'UTC'")  # timestamps without offset in filters are UTC
    await conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")


# A connection returned less than this long ago is handed out without a round trip: checking every
# time costs a round trip per request, and a connection broken within the window fails one
# request with UNAVAILABLE (retryable) and is then discarded by the pool.
CHECK_IDLE_AFTER_SECONDS = 1.0


class _IdleCheck:
    """``check`` / ``reset`` callbacks: check only connections that sat idle in the pool."""

    def __init__(self) -> None:
        self._returned: WeakKeyDictionary[AsyncConnection[TupleRow], float] = WeakKeyDictionary()

    async def reset(self, conn: AsyncConnection[TupleRow]) -> None:
        self._returned[conn] = time.monotonic()

    async def check(self, conn: AsyncConnection[TupleRow]) -> None:
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > CHECK_IDLE_AFTER_SECONDS:
            await AsyncConnectionPool.check_connection(conn)


async def open_pool(
    conninfo: str,
    *,
    min_size: int,
    max_size: int,
    max_waiting: int,
    timeout: float,
    statement_timeout_ms: int,
    observer: StatementObserver | None = None,
) -> Pool:
    """An open pool whose idle connections are checked before use, so it recovers after a database restart.
    Its statements are reported to ``observer`` (metrics, traces)."""

    async def configure(conn: AsyncConnection[TupleRow]) -> None:
        await _configure(conn, statement_timeout_ms, observer)

    idle_check = _IdleCheck()
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        max_waiting=max_waiting,
        timeout=timeout,
        open=False,
        configure=configure,
        check=idle_check.check,
        reset=idle_check.reset,
        kwargs={"autocommit": True},
        reconnect_timeout=60.0,
    )
    await pool.open(wait=True, timeout=timeout)
    return pool


async def limit_to_deadline(conn: AsyncConnection[TupleRow]) -> None:
    """In a transaction: end its statements by the caller's deadline (SET LOCAL statement_timeout)."""
    ms = remaining_ms()
    if ms is not None:
        await conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(ms),))


# The first statement of every transaction on a multi-tenant collection. is_local = true: the setting
# ends with the transaction, so a pooled connection never carries it to the next caller.
SET_TENANT = "SELECT set_config('pgvector_grpc.tenant', %s, true)"


@asynccontextmanager
async def connection_as(
    pool: Pool, tenant: str | None, *, transaction: bool = False, deadline: bool = False
) -> AsyncIterator[AsyncConnection[TupleRow]]:
    """A pooled connection for one operation, acting as ``tenant``.

    With a tenant (a multi-tenant collection) the operation runs in a transaction that first makes
    it the tenant's: row-level security then shows and accepts only that tenant's rows. Without
    one (a single-tenant collection) it runs in autocommit, one round trip per statement, unless
    ``transaction`` asks for one. ``deadline`` ends the transaction's statements by the caller's
    deadline."""
    async with pool.connection() as conn:
        if tenant is None and not transaction:
            yield conn
            return
        async with conn.transaction():
            if tenant is not None:
                await conn.execute(SET_TENANT, (tenant,))
            if deadline:
                await limit_to_deadline(conn)
            yield conn


async def ping(pool: Pool, timeout: float = 2.0) -> bool:
    """True when a pooled connection answers ``SELECT 1`` in time."""
    try:
        async with pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")
        return True
    except Exception:
        return False
