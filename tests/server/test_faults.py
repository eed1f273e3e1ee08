"""Fault suite: a lock storm with short deadlines, a database that goes away and comes back, and a
server killed with SIGKILL mid-ingest. Real PostgreSQL, real servers on real sockets.

PGVECTOR_GRPC_SOAK=1 kills the ingesting server 20 times instead of 3."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector_grpc import Client, DeadlineExceededError, Document, PgvectorGrpcError, UnavailableError
from pgvector_grpc._channel import RETRY_BUDGET_SECONDS
from pgvector_grpc_server.embedded import EmbeddedPostgres, Postmaster

from tests.fix_server import ServerThread
from tests.processes import free_port

STORM_DEADLINE = 0.3
SOAK = os.environ.get("PGVECTOR_GRPC_SOAK", "") not in ("", "0")


def documents(n: int, dim: int = 4, prefix: str = "d", **metadata: Any) -> list[Document]:
    rng = np.random.default_rng(len(prefix) + n)
    return [Document(f"{prefix}{i}", f"text {i}", dict(metadata), rng.random(dim).tolist()) for i in range(n)]


def eventually(condition: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    """Whether ``condition`` holds at some point within ``within`` seconds."""
    give_up = time.monotonic() + within
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(step)
    return True


# -- a lock storm ----------------------------------------------------------------------------------


def backends_waiting_on_a_lock(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND usename = 'pgvector_grpc_app' AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_lock_storm_ends_in_the_database_by_the_deadlines_and_spares_other_collections(
    server: ServerThread, database: str
) -> None:
    with Client(server.address, timeout=30) as setup:
        for name in ("stormy", "calm"):
            setup.create_collection(name, 4)
            setup.ingest(name, documents(50))
    query = [0.5, 0.5, 0.5, 0.5]
    calls: list[Callable[[Client], object]] = [
        lambda c: c.count("stormy"),
        lambda c: c.get("stormy", ["d1", "d2"]),
        lambda c: c.list("stormy"),
        lambda c: c.search("stormy", query, top_k=3),
        lambda c: c.search_many("stormy", [query, query], top_k=3),
    ]

    def outcome(call: Callable[[Client], object], client: Client) -> str:
        try:
            result = call(client)
            if hasattr(result, "__next__"):  # list() pages lazily
                list(result)  # type: ignore[call-overload]
        except PgvectorGrpcError as exc:
            return type(exc).__name__
        return "OK"

    holder = psycopg.connect(database)
    try:
        holder.execute("LOCK TABLE pgvector_grpc.stormy IN ACCESS EXCLUSIVE MODE")
        with Client(server.address, timeout=STORM_DEADLINE, retries=0) as storm, ThreadPoolExecutor(30) as threads:
            futures = [threads.submit(outcome, calls[i % len(calls)], storm) for i in range(150)]
            time.sleep(STORM_DEADLINE / 2)
            with Client(server.address, timeout=2, retries=0) as bystander:
                hits = bystander.search("calm", query, top_k=3)  # a pool held by expired calls would fail this
                health = bystander.health()
            outcomes = [f.result() for f in futures]
        assert len(hits) == 3
        assert health == "SERVING"  # a locked table is not an unreachable database
        assert set(outcomes) == {"DeadlineExceededError"}
        # every statement of the storm ended in PostgreSQL by its deadline (generous bound: 2 s)
        assert eventually(lambda: backends_waiting_on_a_lock(database) == 0, within=2.0)
        with Client(server.address, timeout=2, retries=0) as after:
            assert after.count("calm") == 50
    finally:
        holder.close()
    with Client(server.address, timeout=5) as after:
        assert after.count("stormy") == 50


def test_a_call_whose_deadline_passed_in_the_queue_is_deadline_exceeded(server: ServerThread, database: str) -> None:
    with Client(server.address, timeout=30) as setup:
        setup.create_collection("queued", 4)
    holder = psycopg.connect(database)
    try:
        holder.execute("LOCK TABLE pgvector_grpc.queued IN ACCESS EXCLUSIVE MODE")
        with Client(server.address, timeout=0.2, retries=0) as c, pytest.raises(DeadlineExceededError):
            c.count("queued")
    finally:
        holder.close()


# -- the database goes away and comes back ----------------------------------------------------------


def kill_postmaster(postgres: EmbeddedPostgres) -> None:
    """SIGKILL to the postmaster: the database vanishes as in a crash."""
    postmaster = Postmaster.read(postgres.data_dir)
    assert postmaster is not None
    os.kill(postmaster.pid, signal.SIGKILL)
    assert eventually(lambda: not postmaster.alive(), within=10)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, which it may kill and start again."""
    postgres = EmbeddedPostgres(tmp_path / "pg")
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()


def test_while_the_database_is_down_calls_fail_fast_and_service_resumes_by_itself(
    own_postgres: EmbeddedPostgres,
) -> None:
    server = ServerThread(own_postgres.conninfo)
    try:
        with Client(server.address, timeout=5, retries=0) as c:
            c.create_collection("kept", 4)
            c.ingest("kept", documents(20))
            kill_postmaster(own_postgres)
            reads: list[Callable[[], object]] = [
                lambda: c.count("kept"),
                lambda: c.search("kept", [0.1, 0.2, 0.3, 0.4]),
                lambda: c.get("kept", ["d1"]),
                lambda: c.list_collections(),
                lambda: c.count("kept"),
            ]
            for read in reads:
                started = time.monotonic()
                with pytest.raises(UnavailableError) as failed:
                    read()
                assert time.monotonic() - started < 1.0
                assert failed.value.reason == "DATABASE_UNAVAILABLE"
            assert eventually(lambda: c.health() == "NOT_SERVING", within=5.0)

            with Client(server.address, timeout=5) as retrying:  # default retries: bounded by the budget
                started = time.monotonic()
                with pytest.raises(UnavailableError):
                    retrying.count("kept")
                assert time.monotonic() - started < RETRY_BUDGET_SECONDS + 1.0

            own_postgres.restart()

            def served() -> bool:
                try:
                    return c.count("kept") == 20
                except UnavailableError:
                    return False

            assert eventually(served, within=15.0, step=0.2)
            assert eventually(lambda: c.health() == "SERVING", within=5.0)
            assert [h.id for h in c.search("kept", [0.1, 0.2, 0.3, 0.4], top_k=1)]
    finally:
        server.stop()


# -- the server is killed mid-ingest ----------------------------------------------------------------

BATCH = 50


class ServerProcess:
    """`pgvector-grpc serve` in a subprocess on ``conninfo`` (applying sql/ as its admin, unless told not to)."""

    def __init__(self, conninfo: str, *options: str) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "pgvector-grpc"),
                "serve",
                "--listen",
                self.address,
                "--admin-database-url",
                conninfo,
                "--log-level",
                "WARNING",
                *options,
            ],
            stdout=subprocess.DEVNULL,
        )
        with Client(self.address, timeout=1, retries=0) as c:

            def healthy() -> bool:
                assert self.process.poll() is None, "the server exited"
                try:
                    return c.health() == "SERVING"
                except PgvectorGrpcError:
                    return False

            assert eventually(healthy, within=60, step=0.1)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def batches(round_number: int) -> Iterator[Document]:
    """Documents of batches tagged ``r<round>-b<batch>``, more than a round can send."""
    rng = np.random.default_rng(round_number)
    for b in range(10_000):
        vectors = rng.random((BATCH, 8))
        for i in range(BATCH):
            yield Document(f"r{round_number}-b{b}-{i}", None, {"batch": f"r{round_number}-b{b}"}, vectors[i].tolist())


def ingest_until_killed(server: ServerProcess, round_number: int) -> list[str]:
    """Ingest into ``killed`` until the server is killed at a random moment after the first
    acknowledgement; the batches acknowledged before that."""
    acknowledged: list[str] = []
    failures: list[BaseException] = []

    def ingest() -> None:
        try:
            with Client(server.address) as c:
                c.ingest(
                    "killed",
                    batches(round_number),
                    batch_size=BATCH,
                    on_ack=lambda ack: acknowledged.append(f"r{round_number}-b{ack.sequence}"),
                )
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=ingest)
    thread.start()
    assert eventually(lambda: len(acknowledged) > 0, within=30)
    time.sleep(random.uniform(0.0, 0.5))
    server.kill()
    thread.join(timeout=30)
    assert len(failures) == 1 and isinstance(failures[0], PgvectorGrpcError), failures  # the stream broke
    return acknowledged


def test_a_server_killed_mid_ingest_keeps_every_acknowledged_batch_and_no_partial_one(database: str) -> None:
    acknowledged: set[str] = set()
    for round_number in range(20 if SOAK else 3):
        server = ServerProcess(database, *(["--no-apply-schema"] if round_number else []))
        if round_number == 0:
            with Client(server.address) as c:
                c.create_collection("killed", 8)
        acknowledged.update(ingest_until_killed(server, round_number))

    with psycopg.connect(database) as conn:
        stored: dict[str, int] = dict(
            conn.execute("SELECT metadata->>'batch', count(*) FROM pgvector_grpc.killed GROUP BY 1").fetchall()
        )
    assert acknowledged <= set(stored), "an acknowledged batch is missing"
    assert set(stored.values()) == {BATCH}, "a batch was stored in part"
