"""The ordered-commit pipeline on its own: writes overlap, commits and acknowledgements keep stream
order, nothing after a failed batch commits, and connections are taken in stream order
(deterministic: each write is told when it gets its connection and when to finish)."""

from __future__ import annotations

import asyncio

import pytest
from pgvector_grpc_server.services.ingest_pipeline import Keys, Turns, write_in_order

END = object()


class FakeTransactions:
    """Writes that finish when the test says so; ``committed`` records COMMIT order. With
    ``pool_gated`` each write waits until the test grants it a connection."""

    def __init__(self, failing: int | None = None, pool_gated: bool = False) -> None:
        self.release: dict[int, asyncio.Event] = {}
        self.granted: dict[int, asyncio.Event] = {}
        self.pool_gated = pool_gated
        self.asked: list[int] = []
        self.started: list[int] = []
        self.committed: list[int] = []
        self.rolled_back: list[int] = []
        self.failing = failing

    async def write(self, item: tuple[int, frozenset[str]], turns: Turns) -> int:
        number = item[0]
        self.asked.append(number)
        if self.pool_gated:
            await self.granted.setdefault(number, asyncio.Event()).wait()
        turns.connected()
        self.started.append(number)
        await self.release.setdefault(number, asyncio.Event()).wait()
        try:
            if number == self.failing:
                raise ValueError(f"batch {number} is bad")
            await turns.commit()
        except BaseException:
            self.rolled_back.append(number)
            raise
        self.committed.append(number)
        return number

    def finish(self, number: int) -> None:
        self.release.setdefault(number, asyncio.Event()).set()

    def grant(self, number: int) -> None:
        self.granted.setdefault(number, asyncio.Event()).set()


def keys(item: tuple[int, frozenset[str]]) -> Keys:
    return Keys(item[1], checkpoint=False)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def feed(items: list[object]) -> asyncio.Queue[object]:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for item in items:
        await queue.put(item)
    return queue


async def test_later_batches_finish_first_but_commit_and_acknowledge_in_order() -> None:
    tx = FakeTransactions()
    queue = await feed([(n, frozenset({f"d{n}"})) for n in range(4)] + [END])
    acks: list[int] = []

    async def consume() -> None:
        async for ack in write_in_order(queue, END, keys, tx.write, window=3):
            acks.append(ack)

    consumer = asyncio.create_task(consume())
    await settle()
    assert tx.started == [0, 1, 2]  # the window: three at once
    tx.finish(2)
    tx.finish(1)
    await settle()
    assert tx.committed == [] and acks == []  # 1 and 2 wait for 0's commit
    tx.finish(0)
    await settle()
    assert tx.committed == [0, 1, 2] and acks == [0, 1, 2]
    assert tx.started == [0, 1, 2, 3]
    tx.finish(3)
    await consumer
    assert acks == [0, 1, 2, 3]


async def test_a_failed_batch_ends_the_stream_and_later_ones_roll_back() -> None:
    tx = FakeTransactions(failing=1)
    queue = await feed([(n, frozenset({f"d{n}"})) for n in range(4)] + [END])
    acks: list[int] = []

    async def consume() -> None:
        async for ack in write_in_order(queue, END, keys, tx.write, window=3):
            acks.append(ack)

    consumer = asyncio.create_task(consume())
    await settle()
    tx.finish(2)  # done before the failing batch 1: waits for its turn, which never comes
    tx.finish(0)
    await settle()
    tx.finish(1)
    with pytest.raises(ValueError, match="batch 1"):
        await consumer
    assert acks == [0]
    assert tx.committed == [0]
    assert 2 in tx.rolled_back and 3 not in tx.committed


async def test_a_batch_sharing_an_id_with_one_in_flight_waits_for_its_commit() -> None:
    tx = FakeTransactions()
    queue = await feed([(0, frozenset({"a", "b"})), (1, frozenset({"c"})), (2, frozenset({"b"})), END])
    consumer = asyncio.create_task(_drain(write_in_order(queue, END, keys, tx.write, window=3)))
    await settle()
    assert tx.started == [0, 1]  # 2 writes "b" too
    tx.finish(0)
    await settle()
    assert tx.started == [0, 1, 2]
    tx.finish(1)
    tx.finish(2)
    assert await consumer == [0, 1, 2]


async def test_an_error_read_after_some_batches_comes_after_their_acknowledgements() -> None:
    tx = FakeTransactions()
    queue = await feed([(0, frozenset({"a"})), (1, frozenset({"b"})), ValueError("batches[2] is malformed")])
    acks: list[int] = []

    async def consume() -> None:
        async for ack in write_in_order(queue, END, keys, tx.write, window=3):
            acks.append(ack)

    consumer = asyncio.create_task(consume())
    await settle()
    tx.finish(1)
    tx.finish(0)
    with pytest.raises(ValueError, match="batches\\[2\\]"):
        await consumer
    assert acks == [0, 1] and tx.committed == [0, 1]


async def _drain(acks):  # type: ignore[no-untyped-def]
    return [ack async for ack in acks]


async def test_a_write_asks_for_its_connection_only_once_the_one_before_holds_one() -> None:
    tx = FakeTransactions(pool_gated=True)
    queue = await feed([(n, frozenset({f"d{n}"})) for n in range(3)] + [END])
    consumer = asyncio.create_task(_drain(write_in_order(queue, END, keys, tx.write, window=3)))
    await settle()
    assert tx.asked == [0]  # 1 and 2 are in the window but wait for 0 to hold its connection
    tx.grant(0)
    await settle()
    assert tx.asked == [0, 1]
    tx.grant(1)
    tx.grant(2)
    await settle()
    assert tx.asked == [0, 1, 2] and tx.started == [0, 1, 2]
    for n in (2, 1, 0):
        tx.finish(n)
    assert await consumer == [0, 1, 2]
