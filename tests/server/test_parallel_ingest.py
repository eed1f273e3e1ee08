"""Ingest into an indexed collection with batches committed on several connections: in order,
each batch whole, nothing after a failed batch, and no acknowledged batch lost to a kill -9."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from pgvector_grpc import (
    AlreadyExistsError,
    Client,
    Document,
    HnswIndex,
    IngestAck,
    InvalidArgumentError,
    UnavailableError,
)

from tests.fix_server import ServerThread
from tests.processes import Served

BATCH = 50


def batch_docs(
    batches: int, dim: int = 16, bad_batch: int | None = None, bad_dim: int | None = None
) -> Iterator[Document]:
    rng = np.random.default_rng(7)
    for b in range(batches):
        width = bad_dim if b == bad_batch and bad_dim else dim
        for i in range(BATCH):
            yield Document(f"b{b:03d}-{i:03d}", f"text {b}/{i}", {"batch": b}, rng.random(width, dtype=np.float32))


def stored_batches(conninfo: str, collection: str) -> dict[int, int]:
    """Rows stored per batch number."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            f"SELECT (metadata->>'batch')::int, count(*) FROM pgvector_grpc.\"{collection}\" GROUP BY 1"
        ).fetchall()
    return {b: n for b, n in rows}


@pytest.fixture(scope="module")
def parallel_server(database: str) -> Iterator[ServerThread]:
    running = ServerThread(database, ingest_parallel_batches=4)
    yield running
    running.stop()


def test_parallel_commits_acknowledge_and_list_in_stream_order(
    parallel_server: ServerThread, collection_name: str
) -> None:
    with Client(parallel_server.address) as client:
        client.create_collection(collection_name, 16, index=HnswIndex())
        acks: list[IngestAck] = []
        summary = client.ingest(collection_name, batch_docs(40), batch_size=BATCH, on_ack=acks.append)
        assert [a.sequence for a in acks] == list(range(40))
        assert summary.inserted == 40 * BATCH
        assert client.count(collection_name) == 40 * BATCH
        listed = [d.id for d in client.list(collection_name, order="insertion", page_size=500)]
        assert listed == [d.id for d in batch_docs(40)]


def test_a_failing_batch_leaves_none_of_its_rows_nor_of_later_batches(
    parallel_server: ServerThread, database: str, collection_name: str
) -> None:
    with Client(parallel_server.address) as client:
        client.create_collection(collection_name, 16, index=HnswIndex())
        taken = next(d for d in batch_docs(13) if d.id == "b012-007")
        client.ingest(collection_name, [taken])  # batch 12 of the next stream collides with it
        acks: list[IngestAck] = []
        with pytest.raises(AlreadyExistsError) as raised:
            client.ingest(collection_name, batch_docs(20), batch_size=BATCH, on_conflict="fail", on_ack=acks.append)
        assert [a.sequence for a in acks] == list(range(12))
        assert raised.value.acknowledged.inserted == 12 * BATCH
    assert stored_batches(database, collection_name) == {**{b: BATCH for b in range(12)}, 12: 1}


def test_an_invalid_batch_ends_the_stream_after_the_earlier_ones(
    parallel_server: ServerThread, database: str, collection_name: str
) -> None:
    with Client(parallel_server.address) as client:
        client.create_collection(collection_name, 16, index=HnswIndex())
        acks: list[IngestAck] = []
        with pytest.raises(InvalidArgumentError, match=r"batches\[6\]"):
            client.ingest(
                collection_name, batch_docs(10, bad_batch=6, bad_dim=15), batch_size=BATCH, on_ack=acks.append
            )
        assert [a.sequence for a in acks] == list(range(6))
    assert stored_batches(database, collection_name) == {b: BATCH for b in range(6)}


def test_a_killed_server_loses_no_acknowledged_batch(database: str) -> None:
    served = Served("--admin-database-url", database, "--no-reflection")
    collection = "killed_mid_stream"
    acked: list[int] = []
    stopped = threading.Event()

    def produce() -> Iterator[Document]:
        for doc in batch_docs(400, dim=64):
            if stopped.is_set():
                return
            yield doc

    def on_ack(ack: IngestAck) -> None:
        acked.append(ack.sequence)

    def ingest_until_killed(client: Client) -> None:
        with contextlib.suppress(UnavailableError):
            client.ingest(collection, produce(), batch_size=BATCH, on_ack=on_ack)

    try:
        with Client(served.address, retries=0) as client:
            client.create_collection(collection, 64, index=HnswIndex())
            worker = threading.Thread(target=ingest_until_killed, args=(client,), daemon=True)
            worker.start()
            deadline = time.monotonic() + 60
            while len(acked) < 8:
                assert time.monotonic() < deadline and worker.is_alive()
                time.sleep(0.01)
            served.kill()
            stopped.set()
            worker.join(timeout=30)
    finally:
        served.process.kill()
    stored = stored_batches(database, collection)
    assert acked == list(range(len(acked)))
    assert all(n == BATCH for n in stored.values())  # each batch whole or absent
    assert sorted(stored) == list(range(len(stored)))  # committed in order: a prefix of the stream
    assert len(stored) >= len(acked)  # every acknowledged batch survived
    with psycopg.connect(database) as conn:
        in_insertion_order = [r[0] for r in conn.execute(f"SELECT id FROM pgvector_grpc.{collection} ORDER BY seq")]
    assert in_insertion_order == sorted(in_insertion_order)  # ids name (batch, index): the stream's order
