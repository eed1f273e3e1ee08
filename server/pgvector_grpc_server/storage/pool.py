"""The connection pool: pgvector types, binary COPY dumpers and a staging table on every connection;
every statement bounded by the caller's deadline; fast failure while the database is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, AsyncCursor
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pgvector_grpc_server.domain.deadline import remaining_ms, remaining_seconds
from pgvector_grpc_server.domain.errors import DeadlineExceeded, Unavailable
from pgvector_grpc_server.storage.observed import StatementObserver, observed_cursor_class
from pgvector_grpc_server.storage.sessions import SessionSettings

log = logging.getLogger(__name__)


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
    id text COLLATE "C", content text, metadata jsonb, embedding vector, embedding_exact bytea, seq bigint
) ON COMMIT DELETE ROWS
"""


CLIENT_CHECK_MS = 1000


async def _configure(
    conn: AsyncConnection[TupleRow], statement_timeout_ms: int, observer: StatementObserver | None, writes: bool
) -> None:
    if observer is not None:
        conn.cursor_factory = observed_cursor_class(observer)
    await register_vector_async(conn)
    conn.adapters.register_dumper(JsonText, _JsonTextDumper)
    conn.adapters.register_dumper(PackedVector, _PackedVectorDumper)
    await conn.set_autocommit(True)
    if writes:  # a hot standby refuses even a temporary table
        await conn.execute(STAGING_DDL)
    await conn.execute("SET TimeZone = 'UTC'")  # timestamps without offset in filters are UTC
    await conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
    # A backend whose client is gone (a server killed mid-statement, a connection dropped after a
    # cancel) ends its statement within this time instead of waiting on, say, a lock for the full
    # statement timeout.
    await conn.execute(f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")


# A connection returned less than this long ago is handed out without a round trip: checking every
# time costs a round trip per request, and a connection broken within the window fails one
# request with UNAVAILABLE (retryable) and is then discarded by the pool.
CHECK_IDLE_AFTER_SECONDS = 1.0
# How long a caller waits for a pooled connection before the monitor is asked whether the database
# is still there (a saturated pool and a dead database look the same from the queue).
SUSPECT_AFTER_SECONDS = 0.5
# While the database is known to be unreachable a caller waits this long for a connection (one may
# come back before the monitor notices), then fails with UNAVAILABLE.
WHILE_DOWN_WAIT_SECONDS = 0.25
# The pool stops retrying a failed connection attempt after this long; a new one is started as soon
# as a caller needs it. Short, so that when the database returns no attempt sits in a long backoff.
RECONNECT_GIVE_UP_SECONDS = 3.0
PROBE_TIMEOUT_SECONDS = 1.0


class DatabaseMonitor:
    """Whether the database answers, asked on a connection of its own: a pool saturated by slow
    statements must not look like a dead database. Probes are shared (one at a time); listeners
    hear every change."""

    def __init__(self, conninfo: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
        self.reachable = True
        self._conninfo = conninfo
        self._timeout = timeout
        self._conn: AsyncConnection[TupleRow] | None = None
        self._probing: asyncio.Future[bool] | None = None
        self._listeners: list[Callable[[bool], Awaitable[None]]] = []
        self._asking = asyncio.Lock()  # one statement at a time on the connection

    def listen(self, listener: Callable[[bool], Awaitable[None]]) -> None:
        """Call ``listener(reachable)`` on every change."""
        self._listeners.append(listener)

    async def probe(self) -> bool:
        """Ask the database now (or join the probe under way); True when it answered in time."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._probing)

    def suspect(self) -> None:
        """Something failed that a dead database would explain: probe soon, without waiting."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe())

    async def _probe(self) -> bool:
        return await self.ask("SELECT 1") is not None

    async def ask(self, query: str) -> TupleRow | None:
        """The first row of ``query`` (our own SQL, without parameters) on the monitor's connection;
        None when the database did not answer in time. Listeners hear a change, as with :meth:`probe`."""
        row: TupleRow | None = None
        async with self._asking:
            try:
                async with asyncio.timeout(self._timeout):
                    if self._conn is None or self._conn.closed:
                        self._conn = await AsyncConnection.connect(
                            self._conninfo, autocommit=True, connect_timeout=max(1, round(self._timeout))
                        )
                    cursor = await self._conn.execute(query.encode())
                    row = await cursor.fetchone() or ()
            except (psycopg.Error, OSError, TimeoutError):
                await self._drop_connection()
        await self._heard(row is not None)
        return row

    async def _heard(self, reachable: bool) -> None:
        if reachable != self.reachable:
            self.reachable = reachable
            log.warning("database %s", "reachable again" if reachable else "unreachable")
            for listener in self._listeners:
                await listener(reachable)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the probe's connection."""
        if self._probing is not None:
            with contextlib.suppress(Exception):
                await self._probing
        await self._drop_connection()


class _IdleCheck:
    """The pool's ``check`` callback: check only connections that sat idle in the pool. A failed
    check makes the monitor probe the database."""

    def __init__(self, monitor: DatabaseMonitor) -> None:
        self._returned: WeakKeyDictionary[AsyncConnection[TupleRow], float] = WeakKeyDictionary()
        self._monitor = monitor

    def returned(self, conn: AsyncConnection[TupleRow]) -> None:
        self._returned[conn] = time.monotonic()

    async def check(self, conn: AsyncConnection[TupleRow]) -> None:
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > CHECK_IDLE_AFTER_SECONDS:
            try:
                await AsyncConnectionPool.check_connection(conn)
            except psycopg.Error:
                self._monitor.suspect()
                raise


class BoundedPool(AsyncConnectionPool[AsyncConnection[TupleRow]]):
    """The pool, with the server's statement time limit and the database monitor."""

    def __init__(
        self,
        conninfo: str,
        *,
        statement_cap_ms: int,
        monitor: DatabaseMonitor,
        observer: StatementObserver | None,
        **kwargs: Any,
    ) -> None:
        self._idle_check = _IdleCheck(monitor)
        super().__init__(conninfo, check=self._idle_check.check, **kwargs)
        self.statement_cap_ms = statement_cap_ms
        self.sessions = SessionSettings(statement_cap_ms)
        self.monitor = monitor
        self.observer = observer
        self._background: set[asyncio.Task[None]] = set()

    async def putconn(self, conn: AsyncConnection[TupleRow]) -> None:
        # The return time is noted here rather than in a `reset` callback: with one, psycopg_pool
        # hands every returned connection to its worker task (a queue and a task per request).
        self._idle_check.returned(conn)
        await super().putconn(conn)

    def check_soon(self) -> None:
        """Check the idle connections in the background, replacing broken ones."""
        task = asyncio.ensure_future(self.check())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


Pool = BoundedPool


async def open_pool(
    conninfo: str,
    *,
    min_size: int,
    max_size: int,
    max_waiting: int,
    timeout: float,
    statement_timeout_ms: int,
    observer: StatementObserver | None = None,
    read_replica: bool = False,
) -> Pool:
    """An open pool whose idle connections are checked before use, so it recovers after a database restart.
    Its statements are reported to ``observer`` (metrics, traces). A ``read_replica`` pool opens
    at once and connects in the background (the replica may be down), for reads only."""

    async def configure(conn: AsyncConnection[TupleRow]) -> None:
        await _configure(conn, statement_timeout_ms, observer, writes=not read_replica)

    monitor = DatabaseMonitor(conninfo)
    pool = BoundedPool(
        conninfo,
        statement_cap_ms=statement_timeout_ms,
        monitor=monitor,
        observer=observer,
        min_size=min_size,
        max_size=max_size,
        max_waiting=max_waiting,
        timeout=timeout,
        open=False,
        configure=configure,
        kwargs={"autocommit": True},
        reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
    )

    async def on_change(reachable: bool) -> None:
        if reachable:  # connections that sat in the pool through the outage are broken: replace them now
            pool.check_soon()

    monitor.listen(on_change)
    await pool.open(wait=not read_replica, timeout=timeout)
    return pool


async def close_pool(pool: Pool) -> None:
    """Close the pool and the monitor's connection."""
    await pool.close()
    await pool.monitor.close()


def statement_timeout_ms(pool: Pool, cap_ms: int | None = None) -> int | None:
    """The time limit of the current request's next statement: the time left before its deadline,
    at most ``cap_ms`` (default: the server's limit, which the session has already); None = the
    session's limit applies."""
    cap = pool.statement_cap_ms if cap_ms is None else cap_ms
    left = remaining_ms()
    if left is None:
        return None if cap_ms is None else cap
    return left if cap == 0 else min(left, cap)


async def _getconn(pool: Pool) -> AsyncConnection[TupleRow]:
    remaining = remaining_seconds()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("the deadline passed before the request reached the database", "DEADLINE_PASSED")
    limit = pool.timeout if remaining is None else min(pool.timeout, remaining)
    if not pool.monitor.reachable:
        limit = min(limit, WHILE_DOWN_WAIT_SECONDS)
    first = min(limit, SUSPECT_AFTER_SECONDS)
    try:
        return await pool.getconn(first)
    except PoolTimeout:
        if first < limit and await pool.monitor.probe():
            with contextlib.suppress(PoolTimeout):
                return await pool.getconn(limit - first)
    if not pool.monitor.reachable:
        raise Unavailable("the database is unreachable", "DATABASE_UNAVAILABLE")
    if remaining is not None and limit >= remaining:
        raise DeadlineExceeded("no database connection became free before the deadline", "POOL_WAIT_DEADLINE")
    raise Unavailable("no database connection became free in time", "DATABASE_UNAVAILABLE")


@asynccontextmanager
async def acquired(pool: Pool) -> AsyncIterator[AsyncConnection[TupleRow]]:
    """A pooled connection for the current request, within its deadline.

    A request whose deadline has passed never takes a connection; while the database is known to be
    unreachable the wait is short (UNAVAILABLE); a connection lost mid-request makes the monitor probe."""
    conn = await _getconn(pool)
    try:
        async with conn:
            yield conn
    except psycopg.OperationalError:
        if conn.broken or conn.closed:
            pool.monitor.suspect()
        raise
    finally:
        await pool.putconn(conn)


# The first statement of every transaction on a multi-tenant collection sets the tenant. is_local =
# true: the setting ends with the transaction, so a pooled connection never carries it to the next caller.
TENANT_SETTING = "pgvector_grpc.tenant"


def _prologue(
    pool: Pool,
    conn: AsyncConnection[TupleRow],
    tenant: str | None,
    settings: Mapping[str, str],
    cap_ms: int | None = None,
) -> tuple[str, list[str]] | None:
    """One statement making the transaction's settings (is_local): the statement time limit, the
    tenant, then ``settings``; None when there is nothing to set."""
    pairs: list[tuple[str, str]] = []
    timeout = statement_timeout_ms(pool, cap_ms)
    if timeout is None and pool.sessions.timeout_ms(conn) != str(pool.statement_cap_ms):
        timeout = pool.statement_cap_ms  # the session keeps a shorter limit from an earlier read
    if timeout is not None:
        pairs.append(("statement_timeout", str(timeout)))
    if tenant is not None:
        pairs.append((TENANT_SETTING, tenant))
    pairs.extend(settings.items())
    return set_config_statement(pairs) if pairs else None


def set_config_statement(
    pairs: Sequence[tuple[str, str]], session: Sequence[tuple[str, str]] = ()
) -> tuple[str, list[str]]:
    """One statement setting each of ``pairs`` for the current transaction only (is_local), then
    each of ``session`` for the session."""
    calls = ["set_config(%s, %s, true)"] * len(pairs) + ["set_config(%s, %s, false)"] * len(session)
    return f"SELECT {', '.join(calls)}", [value for pair in (*pairs, *session) for value in pair]


@asynccontextmanager
async def transaction_as(
    pool: Pool, tenant: str | None, *, settings: Mapping[str, str] | None = None, cap_ms: int | None = None
) -> AsyncIterator[AsyncConnection[TupleRow]]:
    """A pooled connection in a transaction for the current request, acting as ``tenant``.

    The transaction first sets its statements' time limit (the caller's deadline, at most the
    server's limit or ``cap_ms``; 0 = none), the tenant (row-level security then shows and accepts
    only that tenant's rows) and ``settings``, all ending with it."""
    async with acquired(pool) as conn, conn.transaction():
        prologue = _prologue(pool, conn, tenant, settings or {}, cap_ms)  # after the wait for a connection
        if prologue is not None:
            await conn.execute(*prologue)
        yield conn


@asynccontextmanager
async def _executed(
    pool: Pool,
    tenant: str | None,
    query: Any,
    params: Sequence[Any] | Mapping[str, Any] | None,
    binary: bool,
    settings: Mapping[str, str] | None,
) -> AsyncIterator[AsyncCursor[TupleRow]]:
    async with acquired(pool) as conn:
        # After the wait for a connection, so that the time limit is the time left now. The tenant is
        # set for this statement only; the rest on the session, unless it has them already.
        local = [] if tenant is None else [(TENANT_SETTING, tenant)]
        wanted_timeout = statement_timeout_ms(pool)
        session = pool.sessions.changes(
            conn, pool.statement_cap_ms if wanted_timeout is None else wanted_timeout, settings or {}
        )
        if not local and not session:
            yield await conn.execute(query, params, binary=binary)
            return
        # One round trip: the settings and the statement share a pipeline, whose implicit transaction
        # ends at its Sync, so the tenant (is_local) ends with the statement. A statement's time
        # limit is armed when it starts, so it must be set by an earlier statement.
        queued = False
        try:
            async with conn.pipeline():
                await conn.execute(*set_config_statement(local, session))
                cursor = await conn.execute(query, params, binary=binary)
                queued = True
        except BaseException as exc:
            pool.sessions.forget(conn)  # its settings went with the failed transaction
            if isinstance(exc, psycopg.Error) and queued and pool.observer is not None:
                pool.observer.failed(exc.sqlstate)  # failed at the Sync, after the cursor reported success
            raise
        pool.sessions.applied(conn, session)
        yield cursor


async def fetch_all(
    pool: Pool,
    tenant: str | None,
    query: Any,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    binary: bool = False,
    settings: Mapping[str, str] | None = None,
) -> list[TupleRow]:
    """The rows of one statement run for the current request as ``tenant``, bounded by its deadline
    (see :func:`transaction_as`; without a tenant, and on a session that has ``settings`` and a time
    limit that fits: the statement alone, see storage/sessions.py)."""
    async with _executed(pool, tenant, query, params, binary, settings) as cursor:
        return await cursor.fetchall()


async def fetch_one(pool: Pool, tenant: str | None, query: Any, params: Sequence[Any] | None = None) -> TupleRow | None:
    """The first row of one statement (see :func:`fetch_all`)."""
    async with _executed(pool, tenant, query, params, False, None) as cursor:
        return await cursor.fetchone()


async def execute_counting(pool: Pool, tenant: str | None, query: Any, params: Sequence[Any] | None = None) -> int:
    """The number of rows one statement affected (see :func:`fetch_all`)."""
    async with _executed(pool, tenant, query, params, False, None) as cursor:
        return cursor.rowcount
