"""Ingest batches written in parallel transactions, committed and acknowledged in stream order.

Batch n+1 may COPY and insert into the vector index while batch n still does (an HNSW insert is
the slow part, and PostgreSQL runs each transaction on its own core), but it commits only after
batch n committed: its transaction waits for its turn just before COMMIT. So:

- acknowledgements come in order, each after its batch's COMMIT;
- a batch that fails ends the stream with its error; every batch before it was committed and
  acknowledged, and every later batch in flight is rolled back (its turn never comes);
- two batches that write the same id, or both save a checkpoint, never run together: the later
  one waits until the earlier committed, so the transactions of one stream never wait for each
  other's row locks (which, with the turn order, could deadlock);
- batch n+1 asks for a pooled connection only once batch n holds one. A batch waiting for its
  turn holds its connection, so were a later batch to get one first (a saturated pool, a retried
  wait), every connection could end up held by batches waiting for earlier ones that wait for a
  connection. Taken in order, the earliest batch of each stream always holds one and finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class EarlierBatchFailed(Exception):
    """The turn of a batch that follows a failed one: its transaction rolls back."""


class Turns:
    """A write's places in its stream's order. The write calls ``connected()`` as soon as it holds
    its database connection, and awaits ``commit()`` in its transaction just before COMMIT: that
    returns once the write before it committed, or raises EarlierBatchFailed if that one failed."""

    def __init__(self, holding: asyncio.Future[None], turn: asyncio.Future[None] | None) -> None:
        self._holding = holding
        self._turn = turn

    def connected(self) -> None:
        if not self._holding.done():
            self._holding.set_result(None)

    async def commit(self) -> None:
        if self._turn is not None and not await _succeeded(self._turn):
            raise EarlierBatchFailed


@dataclass(eq=False)
class _Write(Generic[R]):
    task: asyncio.Task[R]
    ids: frozenset[str]
    checkpoint: bool
    connected: asyncio.Future[None]
    committed: asyncio.Future[None]

    def conflicts_with(self, ids: frozenset[str], checkpoint: bool) -> bool:
        return (checkpoint and self.checkpoint) or not self.ids.isdisjoint(ids)


@dataclass(frozen=True)
class Keys:
    """What a batch writes that another batch of the stream may write too."""

    ids: frozenset[str]
    checkpoint: bool


async def write_in_order(
    items: asyncio.Queue[object],
    end: object,
    keys_of: Callable[[T], Keys],
    write: Callable[[T, Turns], Awaitable[R]],
    window: int,
) -> AsyncIterator[R]:
    """Results of ``write(item, turns)`` for the items taken from ``items`` until ``end``, in
    order, with up to ``window`` writes in flight; ``write`` keeps its :class:`Turns`. An exception
    put on ``items`` is raised after the writes started before it were acknowledged."""
    writes: deque[_Write[R]] = deque()
    held: T | None = None
    next_item: asyncio.Task[object] | None = None
    ended: BaseException | None = None
    finished = False
    try:
        while True:
            if held is not None and _may_start(writes, keys_of(held), window):
                writes.append(_start(writes[-1] if writes else None, held, keys_of(held), write))
                held = None
            if next_item is None and held is None and not finished:
                next_item = asyncio.ensure_future(items.get())
            waiting: set[asyncio.Future[object]] = set()
            if writes:
                waiting.add(writes[0].task)  # type: ignore[arg-type]
            if next_item is not None:
                waiting.add(next_item)
            if not waiting:
                if ended is not None:
                    raise ended
                return
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if writes and writes[0].task.done():
                yield writes.popleft().task.result()
                continue
            if next_item is not None and next_item.done():
                item, next_item = next_item.result(), None
                if item is end:
                    finished = True
                elif isinstance(item, BaseException):
                    finished, ended = True, item
                else:
                    held = item  # type: ignore[assignment]
    finally:
        if next_item is not None:
            next_item.cancel()
        for pending in writes:
            pending.task.cancel()
        for pending in writes:
            with contextlib.suppress(BaseException):
                await pending.task


def _may_start(writes: deque[_Write[R]], keys: Keys, window: int) -> bool:
    if len(writes) >= window:
        return False
    return not any(w.conflicts_with(keys.ids, keys.checkpoint) for w in writes)


def _start(
    previous: _Write[R] | None,
    item: T,
    keys: Keys,
    write: Callable[[T, Turns], Awaitable[R]],
) -> _Write[R]:
    loop = asyncio.get_running_loop()
    connected: asyncio.Future[None] = loop.create_future()
    committed: asyncio.Future[None] = loop.create_future()
    turns = Turns(connected, None if previous is None else previous.committed)

    async def run() -> R:
        try:
            if previous is not None:
                await asyncio.shield(previous.connected)
                if previous.committed.done() and previous.committed.exception() is not None:
                    raise EarlierBatchFailed
            result = await write(item, turns)
        except BaseException:
            committed.set_exception(EarlierBatchFailed())
            committed.exception()  # marked retrieved: the task itself reports the failure
            raise
        committed.set_result(None)
        return result

    task = asyncio.ensure_future(run())
    task.add_done_callback(lambda _: turns.connected())  # one that never connected lets the next one go
    return _Write(task, keys.ids, keys.checkpoint, connected, committed)


async def _succeeded(turn: asyncio.Future[None]) -> bool:
    try:
        await asyncio.shield(turn)
    except EarlierBatchFailed:
        return False
    return True
