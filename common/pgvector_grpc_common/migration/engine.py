"""The migration itself: any Source → a collection of ours, resumable and verified.

The same engine runs inside the server (Migrate RPC, writing through the storage layer) and in
the client (writing through Ingest): each side supplies a :class:`Target`. Pages are read in a
worker thread while the previous one is written; every page is written with upserts together
with its checkpoint in one transaction, so re-running resumes after the last committed page and
can never duplicate a document. With ``mirror``, the target documents the source does not hold
are then deleted, so that a source's deletions reach the target too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator

from pgvector_grpc_common.migration.events import Event, MigrationError, Progress, Report, SourceSummary
from pgvector_grpc_common.migration.options import MigrationOptions, check_options
from pgvector_grpc_common.migration.protocols import Cursor, Page, Source, Target
from pgvector_grpc_common.migration.verify import target_only_ids, verify


async def migrate(
    source: Source, source_key: str, target: Target, options: MigrationOptions
) -> AsyncGenerator[Event, None]:
    """Copy ``source`` into the target collection, yielding a SourceSummary, Progress and a Report."""
    check_options(options)
    info = await asyncio.to_thread(source.describe)
    name = options.target or info.name
    index = options.index or info.index
    metric = options.metric or info.metric
    existing = await target.describe(name)
    yield SourceSummary(
        info.name, info.count, info.dimension, info.metric, info.metadata_keys, name, index, bool(existing)
    )
    if options.dry_run:
        return
    if existing is None:
        await target.create(name, info.dimension, metric, index)
    elif existing != (info.dimension, metric):
        raise MigrationError(
            f"target collection {name!r} exists with dimension {existing[0]} and metric {existing[1]}, but the "
            f"source has dimension {info.dimension} and metric {metric}",
            "TARGET_MISMATCH",
        )

    start = Cursor() if options.restart else await _resume_point(source, target, name, source_key)
    done = start.offset
    async for progress in _copy(source, target, name, source_key, start, info.count, options.batch_size):
        done = progress.done
        yield progress
    deleted = 0
    if options.mirror:
        async for progress, deleted_so_far in _mirror(source, target, name, options.batch_size):
            deleted = deleted_so_far
            yield progress
    yield Progress("indexing", done, done)
    await target.build_index(name)
    async for event in verify(source, target, name, metric, options):
        if isinstance(event, Report):
            event.deleted_count = deleted
        yield event


async def _resume_point(source: Source, target: Target, name: str, key: str) -> Cursor:
    """Where the last run stopped; the start when there is no checkpoint or the source changed under it."""
    saved = await target.checkpoint(name, key)
    if saved is None:
        return Cursor()
    state = json.loads(saved)
    cursor = Cursor(int(state.get("offset", 0)), state.get("last_id"))
    if cursor.offset > 0 and await asyncio.to_thread(source.continues_after, cursor):
        return cursor
    return Cursor()  # the source's order changed: copy everything again (upserts keep it exact)


async def _mirror(source: Source, target: Target, name: str, page_size: int) -> AsyncIterator[tuple[Progress, int]]:
    """Delete the target documents whose ids the source does not hold; (progress, deleted so far)."""
    total = await target.count(name)
    deleted, began = 0, time.monotonic()
    yield Progress("mirroring", 0, total), deleted
    async for checked, extra in target_only_ids(source, target, name, page_size):
        if extra:
            deleted += await target.delete(name, extra)
        rate = checked / max(time.monotonic() - began, 1e-9)
        total = max(total, checked)
        yield Progress("mirroring", checked, total, rate, (total - checked) / rate), deleted


async def _copy(
    source: Source, target: Target, name: str, key: str, start: Cursor, total: int, batch_size: int
) -> AsyncIterator[Progress]:
    pages: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=2)

    async def read() -> None:
        cursor = start
        try:
            while True:
                page = await asyncio.to_thread(source.page, cursor, batch_size)
                if page.records:
                    await pages.put(page)
                if len(page.records) < batch_size:
                    break
                cursor = page.end()
            await pages.put(None)
        except Exception as exc:  # handed to the writer, which raises it
            # (not a cancellation: the writer that cancels has stopped reading, and putting into
            # the full queue would then wait forever, holding the migration's guard)
            await pages.put(exc)

    reader = asyncio.create_task(read())
    began = time.monotonic()
    done = start.offset
    yield Progress("writing", done, max(total, done), resumed_from=start.offset)
    try:
        while (page := await pages.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            end = page.end()
            done = end.offset
            checkpoint = json.dumps({"offset": end.offset, "last_id": end.last_id}, ensure_ascii=False)
            await target.write(name, page, key, checkpoint)
            rate = (done - start.offset) / max(time.monotonic() - began, 1e-9)
            total = max(total, done)
            yield Progress("writing", done, total, rate, (total - done) / rate if rate else 0.0, start.offset)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
