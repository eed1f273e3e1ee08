"""Ingest batches written in parallel transactions, committed and acknowledged in stream order.

Batch n+1 may COPY and insert into the vector index while batch n still does (an HNSW insert is
the slow part, and PostgreSQL runs each transaction on its own core), but it commits only after
batch n committed: its transaction waits for its turn just before COMMIT. So:

- acknowledgements come in order, each after its batch's COMMIT;
- a batch that fails ends the stream with its error; every batch before it was committed and
  acknowledged, and every later batch in flight is rolled back (its turn never comes);
- two batches that write the same id, or both save a checkpoint, never run together: the later
  one waits until the earlier committed, so the transactions of one stream never wait for each
  other's row locks (which, with the turn order, could deadlock).
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

BeforeCommit = Callable[[], Awaitable[None]]


class EarlierBatchFailed(Exception):
    """The turn of a batch that follows a failed one: its transaction rolls back."""


@dataclass(eq=False)
class _Write(Generic[R]):
    task: asyncio.Task[R]
    ids: frozenset[str]
    checkpoint: bool
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
    write: Callable[[T, BeforeCommit], Awaitable[R]],
    window: int,
) -> AsyncIterator[R]:
    """Results of ``write(item, before_commit)`` for the items taken from ``items`` until ``end``,
    in order, with up to ``window`` writes in flight. ``write`` must await ``before_commit()``
    inside its transaction just before committing. An exception put on ``items`` is raised after
    the writes started before it were acknowledged."""
    writes: deque[_Write[R]] = deque()
    held: T | None = None
    next_item: asyncio.Task[object] | None = None
    ended: BaseException | None = None
    finished = False
    try:
        while True:
            if held is not None and _may_start(writes, keys_of(held), window):
                writes.append(_start(writes[-1].committed if writes else None, held, keys_of(held), write))
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
    turn: asyncio.Future[None] | None,
    item: T,
    keys: Keys,
    write: Callable[[T, BeforeCommit], Awaitable[R]],
) -> _Write[R]:
    committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def wait_for_turn() -> None:
        if turn is not None and not await _succeeded(turn):
            raise EarlierBatchFailed

    async def run() -> R:
        try:
            result = await write(item, wait_for_turn)
        except BaseException:
            committed.set_exception(EarlierBatchFailed())
            committed.exception()  # marked retrieved: the task itself reports the failure
            raise
        committed.set_result(None)
        return result

    return _Write(asyncio.ensure_future(run()), keys.ids, keys.checkpoint, committed)


async def _succeeded(turn: asyncio.Future[None]) -> bool:
    try:
        await asyncio.shield(turn)
    except EarlierBatchFailed:
        return False
    return True
