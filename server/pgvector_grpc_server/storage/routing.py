"""Read replicas: which database answers the current request's reads, how far each replica lags
the primary, and another database when the one chosen fails.

A read goes to a replica only when the request allowed it (domain.consistency) and the replica
lags by at most ``max_lag`` seconds; the replicas in use take turns, and the primary answers when
none is. Writes never come here: they use the primary's pool directly.

The lag is measured against the primary's WAL, not a clock. Every ``interval`` the primary's WAL
write position is sampled, then each replica's replayed position. A replica that has replayed
the position the primary had at time t holds every write acknowledged before t: it is fresh as of
the latest such sample, and its lag is the time since. So an idle primary (no WAL, no new
transactions) leaves a replica that replayed everything at a lag of about one interval, where
``now() - pg_last_xact_replay_timestamp()`` would grow without bound; and a replica cut off from
its primary ages although it has replayed all it received. The figure is an upper bound, coarse
by one interval. While the primary does not answer no position is sampled, so replicas age too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg
from psycopg.rows import TupleRow

from pgvector_grpc_server.domain.consistency import replica_reads_allowed
from pgvector_grpc_server.domain.errors import Unavailable
from pgvector_grpc_server.storage.pool import Pool, close_pool, fetch_all, fetch_one
from pgvector_grpc_server.storage.roles import role_problems

log = logging.getLogger(__name__)
T = TypeVar("T")

_PRIMARY_POSITION = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8"
_REPLICA_POSITION = "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8"


class Replica:
    """One read replica: its pool, and what the last check found."""

    def __init__(self, label: str, conninfo: str, pool: Pool) -> None:
        self.label = label
        self.conninfo = conninfo
        self.pool = pool
        # The monotonic time as of which it held every write the primary had acknowledged.
        self.fresh_as_of: float | None = None
        # Why it is not used, whatever its lag (None: nothing wrong).
        self.problem: str | None = "not checked yet"
        # Its role was found held to row-level security (checked once, on first contact), or why not.
        self.vetted = False
        self.unsafe: str | None = None
        self.reads = 0
        self.reported_in_use: bool | None = None

    def lag(self, now: float) -> float | None:
        """Seconds of writes it may lack; None when unknown."""
        return None if self.fresh_as_of is None else max(0.0, now - self.fresh_as_of)

    def skipped_because(self, now: float, max_lag: float) -> str | None:
        """Why reads skip it now, None when it may answer."""
        if self.problem is not None:
            return self.problem
        lag = self.lag(now)
        if lag is None:
            return "its lag is not known yet"
        if lag > max_lag:
            return f"it lags the primary by {lag:.2f} s (more than {max_lag:g} s)"
        return None


@dataclass(frozen=True)
class ReplicaStatus:
    """A replica as metrics show it."""

    label: str
    in_use: bool
    lag_seconds: float | None
    reads: int
    pool_stats: Mapping[str, int]


def replica_failed(exc: BaseException) -> bool:
    """Whether ``exc`` says the database failed rather than the request, so that another may answer
    it: no connection (down, or none free in time), a lost connection, a server shutting down or
    starting, or a query cancelled by a conflict with recovery (40001 on a hot standby, which
    has no writes of its own to conflict with). A statement timeout is the caller's deadline: no."""
    if isinstance(exc, Unavailable):
        return True
    if isinstance(exc, pg.SerializationFailure):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or (state.startswith("57") and not isinstance(exc, pg.QueryCanceled))
    return False


class ReadRouting:
    """The primary's pool and the replicas': where each read goes, and the checks that decide it.

    ``allow_privileged_role``: use a replica whose role row-level security would not hold (tenants
    not isolated), as the primary's pool may be allowed to."""

    def __init__(
        self,
        primary: Pool,
        replicas: Sequence[Replica] = (),
        *,
        max_lag: float = 5.0,
        interval: float = 0.5,
        allow_privileged_role: bool = False,
    ) -> None:
        self.primary = primary
        self.replicas = list(replicas)
        self.max_lag = max_lag
        self.primary_reads = 0
        self._interval = interval
        self._allow_privileged_role = allow_privileged_role
        self._turns = itertools.count()
        # (monotonic time, primary's WAL write position), oldest first, spanning max_lag and a little.
        self._positions: deque[tuple[float, int]] = deque()
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check the replicas once, then every interval in the background."""
        if not self.replicas:
            return
        await self.check()
        self._watcher = asyncio.create_task(self._watch())

    async def close(self) -> None:
        """Stop checking and close the replicas' pools (not the primary's)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for replica in self.replicas:
            await close_pool(replica.pool)

    async def run(self, read: Callable[[Pool], Awaitable[T]]) -> T:
        """``read`` on the database that should answer the current request; when a replica fails
        (see :func:`replica_failed`), on the next replica in use, the primary last."""
        for replica in self._candidates():
            pool = self.primary if replica is None else replica.pool
            try:
                result = await read(pool)
            except Exception as exc:
                if replica is None or not replica_failed(exc):
                    raise
                self._set_problem(replica, f"a read failed ({type(exc).__name__}); waiting for its next check")
                continue
            if replica is None:
                self.primary_reads += 1
            else:
                replica.reads += 1
            return result
        raise AssertionError("unreachable: the primary is always the last candidate")

    def _candidates(self) -> list[Replica | None]:
        """The replicas in use, starting with the next one's turn, then the primary (None)."""
        usable = self.in_use() if replica_reads_allowed() else []
        if not usable:
            return [None]
        turn = next(self._turns) % len(usable)
        return [*usable[turn:], *usable[:turn], None]

    def in_use(self) -> list[Replica]:
        """The replicas that may answer reads now."""
        now = time.monotonic()
        return [r for r in self.replicas if r.skipped_because(now, self.max_lag) is None]

    def statuses(self) -> list[ReplicaStatus]:
        """Every replica: in use or not, its lag, the reads it answered, its pool's figures."""
        now = time.monotonic()
        return [
            ReplicaStatus(
                r.label,
                r.skipped_because(now, self.max_lag) is None,
                r.lag(now),
                r.reads,
                r.pool.get_stats(),
            )
            for r in self.replicas
        ]

    # -- checks ---------------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:  # a check must never stop the checks
                log.exception("checking the read replicas failed")

    async def check(self) -> None:
        """Sample the primary's WAL position, then every replica's replayed position and state."""
        row = await self.primary.monitor.ask(_PRIMARY_POSITION)
        now = time.monotonic()
        if row is not None and row[0] is not None:
            self._positions.append((now, int(row[0])))
        horizon = now - self.max_lag - 2 * self._interval
        while len(self._positions) > 1 and self._positions[0][0] < horizon:
            self._positions.popleft()
        await asyncio.gather(*(self._check(replica) for replica in self.replicas))

    async def _check(self, replica: Replica) -> None:
        row = await replica.pool.monitor.ask(_REPLICA_POSITION)
        if row is None:
            replica.problem = "it does not answer"
            replica.fresh_as_of = None  # restarted, it may resume replay from an earlier point
        elif not row[0]:
            replica.problem = "it is not a standby (pg_is_in_recovery() is false), so its data may differ"
        else:
            # A replica that answers keeps what it replayed: behind every position still sampled, it
            # is as fresh as it was found before.
            fresh = self._fresh_as_of(int(row[1] or 0))
            if fresh is not None and (replica.fresh_as_of is None or fresh > replica.fresh_as_of):
                replica.fresh_as_of = fresh
            replica.problem = replica.unsafe or (None if replica.vetted else await self._vet(replica))
        self._report(replica)

    def _fresh_as_of(self, replayed: int) -> float | None:
        """The time of the latest sampled primary position that ``replayed`` reaches."""
        for sampled, position in reversed(self._positions):
            if position <= replayed:
                return sampled
        return None

    async def _vet(self, replica: Replica) -> str | None:
        """None when row-level security holds the replica's role (or may be bypassed), else why not."""
        try:
            problems = await role_problems(replica.conninfo)
        except (psycopg.Error, OSError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"its role could not be checked yet ({type(exc).__name__}: {first_line})"
        if problems and not self._allow_privileged_role:
            replica.unsafe = f"its database role {'; '.join(problems)}, so row-level security would not isolate tenants"
            log.error("read replica %s is not used: %s", replica.label, replica.unsafe)
            return replica.unsafe
        if problems:
            log.warning("read replica %s: its role %s (allowed by --allow-privileged-role)", replica.label, problems)
        replica.vetted = True
        return None

    def _set_problem(self, replica: Replica, problem: str) -> None:
        replica.problem = problem
        self._report(replica)

    def _report(self, replica: Replica) -> None:
        """Log a replica going out of use or into it."""
        now = time.monotonic()
        why = replica.skipped_because(now, self.max_lag)
        if (why is None) == replica.reported_in_use:
            return
        replica.reported_in_use = why is None
        if why is None:
            log.info("read replica %s in use (lag %.1f s)", replica.label, replica.lag(now) or 0.0)
        else:
            log.warning("read replica %s skipped: %s", replica.label, why)


async def read_all(
    routing: ReadRouting,
    tenant: str | None,
    query: Any,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    binary: bool = False,
    settings: Mapping[str, str] | None = None,
) -> list[TupleRow]:
    """:func:`fetch_all` on the database that should answer the current request's reads."""
    return await routing.run(lambda pool: fetch_all(pool, tenant, query, params, binary=binary, settings=settings))


async def read_one(
    routing: ReadRouting, tenant: str | None, query: Any, params: Sequence[Any] | None = None
) -> TupleRow | None:
    """:func:`fetch_one` on the database that should answer the current request's reads."""
    return await routing.run(lambda pool: fetch_one(pool, tenant, query, params))
