"""Ingest: acknowledgements, conflict policies, missing values, bad input leaving nothing behind."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator

import grpc
import numpy as np
import psycopg
import pytest
from pgvector_grpc import (
    AlreadyExistsError,
    AsyncClient,
    Client,
    Document,
    InvalidArgumentError,
    NoIndex,
    NotFoundError,
)
from pgvector_grpc.v1 import document_pb2, document_service_pb2, document_service_pb2_grpc

from tests.fix_server import ServerThread


def docs(n: int, dim: int = 4, start: int = 0, prefix: str = "d") -> Iterator[Document]:
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        yield Document(
            f"{prefix}{i}", f"text {i}", {"i": i, "even": i % 2 == 0}, rng.random(dim, dtype=np.float32) + 0.01
        )


def test_batches_are_acknowledged_in_order(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 4)
    acks = []
    summary = client.ingest(collection_name, docs(1050), batch_size=100, on_ack=acks.append)
    assert [a.sequence for a in acks] == list(range(11))
    assert [a.inserted for a in acks] == [100] * 10 + [50]
    assert (summary.batches, summary.inserted, summary.updated, summary.skipped) == (11, 1050, 0, 0)
    assert client.count(collection_name) == 1050


def test_round_trip_keeps_missing_values_missing(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 3)
    given = [
        Document(
            "full", "text", {"n": 1, "f": 1.5, "b": True, "s": "x", "z": None, "l": [1, "a"], "o": {"k": 1}}, [1, 2, 3]
        ),
        Document("no-text", None, {}, [0.5, 0.5, 0.5]),
        Document("empty-text", "", {}, [1, 0, 0]),
        Document("no-vector", "only text", {"k": "v"}),
        Document("ünïcødé/🚀 id with spaces", "ok", {"ключ": "значение"}, [0, 0, 1]),
    ]
    client.ingest(collection_name, given)
    got = {d.id: d for d in client.get(collection_name, [d.id for d in given], include_embedding=True)}
    for doc in given:
        back = got[doc.id]
        assert back.content == doc.content
        assert back.metadata == doc.metadata
        assert type(back.metadata.get("n", 0)) is type(doc.metadata.get("n", 0))  # int stays int
        if doc.embedding is None:
            assert back.embedding is None
        else:
            np.testing.assert_array_equal(back.embedding, doc.embedding)
    hits = client.search(collection_name, [1, 2, 3], top_k=10)
    assert "no-vector" not in {h.id for h in hits}
    assert len(hits) == 4


def test_conflict_policies(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 4)
    client.ingest(collection_name, docs(10))
    changed = [Document(d.id, "changed", d.metadata, d.embedding) for d in docs(5, start=8)]  # d8..d12

    skip = client.ingest(collection_name, changed, on_conflict="skip")
    assert (skip.inserted, skip.updated, skip.skipped) == (3, 0, 2)
    assert client.get(collection_name, ["d8"])[0].content == "text 8"

    upsert = client.ingest(collection_name, changed, on_conflict="upsert")
    assert (upsert.inserted, upsert.updated, upsert.skipped) == (0, 5, 0)
    assert client.get(collection_name, ["d8"])[0].content == "changed"

    with pytest.raises(AlreadyExistsError) as err:
        client.ingest(collection_name, [*docs(2, start=100), *docs(1, start=3)], on_conflict="fail")
    assert err.value.metadata["id"] == "d3"
    assert client.get(collection_name, ["d100", "d101"]) == []  # the batch left nothing
    assert client.count(collection_name) == 13


def test_repeated_id_in_a_batch_keeps_the_last(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    batch = [Document("x", "first", {}, [1, 0]), Document("y", "y", {}, [0, 1]), Document("x", "last", {}, [1, 1])]
    for policy in ("upsert", "skip", "fail"):
        client.delete(collection_name, all_documents=True)
        summary = client.ingest(collection_name, batch, on_conflict=policy)  # type: ignore[arg-type]
        assert (summary.inserted, summary.skipped) == (2, 1)
        assert client.get(collection_name, ["x"])[0].content == "last"


BAD_DOCUMENTS = [
    (Document("ok", None, {}, [1, 2, 3]), "embedding", "DIMENSION_MISMATCH"),
    (Document("ok", None, {}, [1, math.nan, 3, 4]), "embedding", "NON_FINITE_VALUE"),
    (Document("ok", None, {}, [1, math.inf, 3, 4]), "embedding", "NON_FINITE_VALUE"),
    (Document("ok", None, {}, [0, 0, 0, 0]), "embedding", "ZERO_VECTOR"),
    (Document("", None, {}, [1, 2, 3, 4]), "id", "BAD_ID"),
    (Document("x" * 513, None, {}, [1, 2, 3, 4]), "id", "BAD_ID"),
    (Document("ok", "nul\x00byte", {}, [1, 2, 3, 4]), "content", "BAD_CONTENT"),
]


@pytest.mark.parametrize(("bad", "field", "reason"), BAD_DOCUMENTS)
def test_bad_document_rejects_its_batch_only(
    client: Client, collection_name: str, bad: Document, field: str, reason: str
) -> None:
    client.create_collection(collection_name, 4)
    batches = [*docs(3), *docs(2, start=3), bad]  # batch 0 = d0..d2, batch 1 = d3, d4 + the bad one at index 2
    with pytest.raises(InvalidArgumentError) as err:
        client.ingest(collection_name, batches, batch_size=3)
    assert err.value.field == f"batches[1].documents[2].{field}"
    assert err.value.reason == reason
    assert err.value.acknowledged is not None and err.value.acknowledged.inserted == 3
    assert sorted(d.id for d in client.list(collection_name)) == ["d0", "d1", "d2"]


def _raw_ingest(server: ServerThread, requests: list[document_service_pb2.IngestRequest]) -> grpc.RpcError:
    with grpc.insecure_channel(server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Ingest(iter(requests), timeout=10))
    return err.value


@pytest.mark.parametrize(
    ("metadata_json", "reason"),
    [
        ("[1, 2]", "BAD_METADATA"),
        ('{"a": }', "BAD_METADATA"),
        ('"text"', "BAD_METADATA"),
        ('{"a": NaN}', "BAD_METADATA"),
    ],
)
def test_metadata_must_be_a_json_object(
    client: Client, server: ServerThread, collection_name: str, metadata_json: str, reason: str
) -> None:
    client.create_collection(collection_name, 2)
    good = document_pb2.Document(id="good", metadata_json="{}", embedding=document_pb2.Vector(values=[1, 2]))
    bad = document_pb2.Document(id="bad", metadata_json=metadata_json, embedding=document_pb2.Vector(values=[1, 2]))
    error = _raw_ingest(server, [document_service_pb2.IngestRequest(collection=collection_name, documents=[good, bad])])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batches[0].documents[1].metadata_json" in error.details()
    assert client.count(collection_name) == 0


def test_repeated_float_embeddings_are_accepted(client: Client, server: ServerThread, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    doc = document_pb2.Document(id="f", metadata_json="", embedding=document_pb2.Vector(values=[0.25, 0.5]))
    with grpc.insecure_channel(server.address) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        acks = list(
            stub.Ingest(iter([document_service_pb2.IngestRequest(collection=collection_name, documents=[doc])]))
        )
    assert acks[0].inserted == 1
    np.testing.assert_array_equal(client.get(collection_name, ["f"], include_embedding=True)[0].embedding, [0.25, 0.5])


def test_unknown_collection(client: Client) -> None:
    with pytest.raises(NotFoundError) as err:
        client.ingest("no_such_collection", docs(1))
    assert err.value.metadata["collection"] == "no_such_collection"


def test_stream_must_keep_its_collection(client: Client, server: ServerThread, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    first = document_service_pb2.IngestRequest(collection=collection_name)
    second = document_service_pb2.IngestRequest(collection="other")
    error = _raw_ingest(server, [first, second])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batches[1].collection" in error.details()


def test_oversized_message_is_resource_exhausted(server: ServerThread, database: str, collection_name: str) -> None:
    small = ServerThread(database, max_message_bytes=64 * 1024)
    try:
        with Client(small.address) as c:
            c.create_collection(collection_name, 256)
            with pytest.raises(Exception) as err:
                c.ingest(collection_name, docs(100, dim=256), batch_size=100)
            assert getattr(err.value, "code", None) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert c.count(collection_name) == 0  # the server still answers
    finally:
        small.stop()


def test_batch_size_limit(server: ServerThread, database: str, collection_name: str) -> None:
    limited = ServerThread(database, max_batch_documents=10)
    try:
        with Client(limited.address) as c:
            c.create_collection(collection_name, 4)
            with pytest.raises(InvalidArgumentError) as err:
                c.ingest(collection_name, docs(11), batch_size=11)
            assert err.value.reason == "BATCH_TOO_LARGE"
    finally:
        limited.stop()


async def test_async_ingest_from_an_async_generator(server: ServerThread, collection_name: str) -> None:
    async def produce():  # type: ignore[no-untyped-def]
        for doc in docs(250):
            yield doc

    async with AsyncClient(server.address) as c:
        await c.create_collection(collection_name, 4)
        summary = await c.ingest(collection_name, produce(), batch_size=100)
        assert (summary.batches, summary.inserted) == (3, 250)
        assert await c.count(collection_name) == 250


async def test_cancel_mid_stream_keeps_only_acknowledged_batches(
    server: ServerThread, database: str, collection_name: str
) -> None:
    """The client stops after two acknowledgements while a third batch is in flight."""
    async with AsyncClient(server.address) as c:
        await c.create_collection(collection_name, 4)
        gate = asyncio.Event()
        acked: list[int] = []

        async def produce():  # type: ignore[no-untyped-def]
            for b in range(3):
                if b == 2:
                    await gate.wait()
                for doc in docs(100, start=b * 100):
                    yield doc
            await asyncio.sleep(3600)  # never finishes: the client cancels

        def on_ack(ack):  # type: ignore[no-untyped-def]
            acked.append(ack.sequence)
            if len(acked) == 2:
                gate.set()

        task = asyncio.create_task(c.ingest(collection_name, produce(), batch_size=100, on_ack=on_ack))
        while len(acked) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)
        count = await c.count(collection_name)
    assert count in (200, 300)  # batch 2 was either committed before the cancel arrived, or not at all
    assert count % 100 == 0
    with psycopg.connect(database) as conn:
        busy = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
        ).fetchone()
    assert busy == (0,)


def test_metadata_types_survive(client: Client, collection_name: str) -> None:
    client.create_collection(collection_name, 2)
    meta = {
        "int": 7,
        "float": 7.0,
        "big": 2**53 + 1,
        "neg": -0.5,
        "t": True,
        "nil": None,
        "nested": {"a": [1, {"b": 2}]},
    }
    client.ingest(collection_name, [Document("m", None, meta, [1, 1])])
    back = client.get(collection_name, ["m"])[0].metadata
    assert json.dumps(back, sort_keys=True) == json.dumps(meta, sort_keys=True)
    assert isinstance(back["int"], int) and isinstance(back["float"], float)


def test_a_stalled_database_stalls_the_producer(client: Client, database: str, collection_name: str) -> None:
    """Flow control: while batch 0 waits on a lock, the server reads only a bounded number of batches
    ahead, so the client's generator is not drained into server memory."""
    client.create_collection(collection_name, 384, index=NoIndex())
    produced = 0

    def produce() -> Iterator[Document]:
        nonlocal produced
        for doc in docs(20_000, dim=384):
            produced += 1
            yield doc

    with psycopg.connect(database, autocommit=True) as conn:
        lock = conn.transaction()
        lock.__enter__()
        conn.execute(f'LOCK TABLE pgvector_grpc."{collection_name}" IN ACCESS EXCLUSIVE MODE')
        import threading

        result: list[object] = []
        worker = threading.Thread(
            target=lambda: result.append(client.ingest(collection_name, produce(), batch_size=100)), daemon=True
        )
        worker.start()
        time.sleep(3)
        stalled_at = produced
        lock.__exit__(None, None, None)
    worker.join(timeout=120)
    print(f"documents produced while the database was blocked: {stalled_at}")
    assert stalled_at < 10_000, f"{stalled_at} documents were read while the database was blocked"
    assert result and result[0].inserted == 20_000  # type: ignore[attr-defined]
