"""Insertion order (List's order="insertion") follows the stream when batches are written side by
side: a later batch that finishes writing first still comes after the earlier one, in a
single-tenant and in a multi-tenant collection.

The earlier batch is held back for certain: it replaces a document whose row the test keeps
locked, so it waits inside its INSERT while the later batches write and wait for their turn to
commit. Only then is the lock released."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from pgvector_grpc import Client, Document, IngestAck

from tests.fix_server import ServerThread
from tests.security.keys import bearer, create_key

HELD = "held"
EARLY = ["a1", "a2"]
LATER = ["b1", "b2", "b3", "c1", "c2", "c3"]


def doc(doc_id: str) -> Document:
    return Document(doc_id, f"text of {doc_id}", {"id": doc_id}, [1.0, 0.5, 0.25, float(len(doc_id))])


@pytest.fixture(scope="module")
def keys(database: str) -> dict[str, str]:
    return {
        "admin": create_key(database, "admin", tenant="operations"),
        "writer": create_key(database, "writer", tenant="alpha"),
    }


@pytest.fixture(scope="module")
def parallel_server(database: str, keys: dict[str, str]) -> Iterator[ServerThread]:
    running = ServerThread(database, ingest_parallel_batches=4)
    yield running
    running.stop()


def wait_until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the batches never reached the expected state"
        time.sleep(0.02)


def held_back_and_later_ones_written(database: str) -> Callable[[], bool]:
    """True once one app transaction waits for the row lock and two others finished writing (idle
    in their transaction, waiting for their turn to commit)."""

    def check() -> bool:
        with psycopg.connect(database, autocommit=True) as conn:
            waiting, written = conn.execute(
                "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),"
                " count(*) FILTER (WHERE state = 'idle in transaction'"
                "   AND (query LIKE 'RELEASE%' OR query LIKE '%insert_from_staging%'))"
                " FROM pg_stat_activity WHERE usename = 'pgvector_grpc_app' AND datname = current_database()"
            ).fetchone() or (0, 0)
        return waiting == 1 and written == 2

    return check


@pytest.mark.parametrize("multi_tenant", [False, True], ids=["single-tenant", "multi-tenant"])
def test_insertion_order_is_the_streams(
    parallel_server: ServerThread, database: str, keys: dict[str, str], collection_name: str, multi_tenant: bool
) -> None:
    with (
        Client(parallel_server.address, timeout=60, metadata=bearer(keys["admin"])) as admin,
        Client(parallel_server.address, timeout=60, metadata=bearer(keys["writer"])) as writer,
    ):
        admin.create_collection(collection_name, 4, multi_tenant=multi_tenant)
        writer.ingest(collection_name, [doc(HELD)])
        acks: list[IngestAck] = []
        with psycopg.connect(database) as locker:
            locker.execute(f'SELECT 1 FROM pgvector_grpc."{collection_name}" WHERE id = %s FOR UPDATE', (HELD,))
            # batch 0 replaces the locked document first, then adds a1, a2; batches 1 and 2 are new
            stream = [doc(i) for i in [HELD, *EARLY, *LATER]]
            ingest = threading.Thread(
                target=lambda: writer.ingest(collection_name, stream, batch_size=3, on_ack=acks.append)
            )
            ingest.start()
            try:
                wait_until(held_back_and_later_ones_written(database))
                assert acks == []  # nothing commits before batch 0
            finally:
                locker.rollback()
                ingest.join(timeout=60)
        assert [a.sequence for a in acks] == [0, 1, 2]
        listed = [d.id for d in writer.list(collection_name, order="insertion", page_size=4)]
        assert listed == [HELD, *EARLY, *LATER]
