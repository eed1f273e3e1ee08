"""Answering the requests of a bidirectional stream concurrently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")

_END = object()


@dataclass(frozen=True)
class _RequestsFailed:
    error: Exception


async def answered_concurrently(
    requests: AsyncIterator[Request], answer: Callable[[Request], Awaitable[Answer]], limit: int
) -> AsyncIterator[Answer]:
    """The answers to ``requests`` in the order they are ready, at most ``limit`` in progress.

    The next request is read only when a slot is free, so a fast caller cannot make the server
    hold an unbounded number of queries. ``answer`` must not raise: a failed request is answered.
    When reading the requests fails, the answers to those read come first, then that error."""
    answers: asyncio.Queue[object] = asyncio.Queue()
    slots = asyncio.Semaphore(limit)

    async def answer_one(request: Request) -> None:
        try:
            await answers.put(await answer(request))
        finally:
            slots.release()

    async def read() -> None:
        end: object = _END
        async with asyncio.TaskGroup() as group:
            try:
                async for request in requests:
                    await slots.acquire()
                    group.create_task(answer_one(request))
            except Exception as exc:  # e.g. an undecodable request: answer those read, then fail
                end = _RequestsFailed(exc)
        await answers.put(end)

    reader = asyncio.create_task(read())
    try:
        while (item := await answers.get()) is not _END:
            if isinstance(item, _RequestsFailed):
                raise item.error
            yield item  # type: ignore[misc]
        await reader
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
