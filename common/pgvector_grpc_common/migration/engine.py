"""The migration itself: Chroma collection → a collection of ours, resumable and verified.

The same engine runs inside the server (Migrate RPC, writing through the storage layer) and in
the client (writing through Ingest): each side supplies a :class:`Target`. Pages are read in a
worker thread while the previous one is written; every page is written with upserts together
with its checkpoint in one transaction, so re-running resumes after the last committed page and
can never duplicate a document.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pgvector_grpc_common.migration.events import (
    Event,
    IndexPlan,
    Metric,
    MigrationError,
    Progress,
    SourceSummary,
)
from pgvector_grpc_common.migration.sources.chroma import ChromaCollection, Page
from pgvector_grpc_common.migration.verify import verify

DEFAULT_BATCH_SIZE = 1000
DEFAULT_SAMPLE_SIZE = 100


@dataclass(frozen=True)
class MigrationOptions:
    """How to migrate one collection."""

    target: str = ""
    dry_run: bool = False
    restart: bool = False
    index: IndexPlan | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    verify_sample_size: int = DEFAULT_SAMPLE_SIZE


@dataclass(frozen=True)
class TargetDocument:
    """A stored document as the verification sees it."""

    id: str
    content: str | None
    metadata_json: str
    embedding: np.ndarray[Any, np.dtype[np.float32]] | None


class Target(Protocol):
    """The collection being written, as the engine needs it."""

    async def describe(self, name: str) -> tuple[int, Metric] | None:
        """(dimension, metric) of an existing collection, or None."""

    async def create(self, name: str, dimension: int, metric: Metric, index: IndexPlan) -> None:
        """Create the collection with its vector index deferred."""

    async def checkpoint(self, name: str, key: str) -> str | None:
        """The checkpoint saved under ``key``."""

    async def write(self, name: str, page: Page, key: str, checkpoint: str) -> None:
        """Upsert the page and save the checkpoint in one transaction."""

    async def build_index(self, name: str) -> None:
        """Build the deferred vector index (no-op when built)."""

    async def count(self, name: str) -> int:
        """The number of documents."""

    async def fetch(self, name: str, ids: Sequence[str], fields: bool) -> dict[str, TargetDocument]:
        """The documents with these ids that exist (with content, metadata and embedding if ``fields``)."""

    async def nearest(
        self, name: str, vector: np.ndarray[Any, np.dtype[np.float32]], k: int
    ) -> list[tuple[str, float]]:
        """The exact k nearest (id, distance), closest first."""


def check_options(options: MigrationOptions) -> None:
    """Reject options out of range, naming the field."""
    if not 1 <= options.batch_size <= 10_000:
        raise MigrationError(f"batch_size must be between 1 and 10000, got {options.batch_size}", "BAD_BATCH_SIZE")
    if options.verify_sample_size < 0:
        raise MigrationError(
            f"verify_sample_size must not be negative, got {options.verify_sample_size}", "BAD_SAMPLE_SIZE"
        )


async def migrate(
    source: ChromaCollection, source_key: str, target: Target, options: MigrationOptions
) -> AsyncIterator[Event]:
    """Copy ``source`` into the target collection, yielding a SourceSummary, Progress and a Report."""
    check_options(options)
    info = await asyncio.to_thread(source.describe)
    name = options.target or info.name
    index = options.index or info.index
    existing = await target.describe(name)
    yield SourceSummary(
        info.name, info.count, info.dimension, info.metric, info.metadata_keys, name, index, bool(existing)
    )
    if options.dry_run:
        return
    if existing is None:
        await target.create(name, info.dimension, info.metric, index)
    elif existing != (info.dimension, info.metric):
        raise MigrationError(
            f"target collection {name!r} exists with dimension {existing[0]} and metric {existing[1]}, but the "
            f"source has dimension {info.dimension} and metric {info.metric}",
            "TARGET_MISMATCH",
        )

    start = 0 if options.restart else await _resume_offset(source, target, name, source_key)
    done = start
    async for progress in _copy(source, target, name, source_key, start, info.count, options.batch_size):
        done = progress.done
        yield progress
    yield Progress("indexing", done, done)
    await target.build_index(name)
    async for event in verify(source, target, name, info.metric, options.verify_sample_size, options.batch_size):
        yield event


async def _resume_offset(source: ChromaCollection, target: Target, name: str, key: str) -> int:
    """Where the last run stopped; 0 when there is no checkpoint or the source changed under it."""
    saved = await target.checkpoint(name, key)
    if saved is None:
        return 0
    state = json.loads(saved)
    offset, last_id = int(state["offset"]), state["last_id"]
    if offset > 0 and await asyncio.to_thread(source.id_at, offset - 1) == last_id:
        return offset
    return 0  # the source's order changed: copy everything again (upserts keep it exact)


async def _copy(
    source: ChromaCollection, target: Target, name: str, key: str, start: int, total: int, batch_size: int
) -> AsyncIterator[Progress]:
    pages: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=2)

    async def read() -> None:
        offset = start
        try:
            while True:
                page = await asyncio.to_thread(source.page, offset, batch_size)
                if page.ids:
                    await pages.put(page)
                if len(page.ids) < batch_size:
                    break
                offset += len(page.ids)
            await pages.put(None)
        except Exception as exc:  # handed to the writer, which raises it
            # (not a cancellation: the writer that cancels has stopped reading, and putting into
            # the full queue would then wait forever, holding the migration's guard)
            await pages.put(exc)

    reader = asyncio.create_task(read())
    began = time.monotonic()
    done = start
    yield Progress("writing", done, max(total, done), resumed_from=start)
    try:
        while (page := await pages.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            done = page.offset + len(page.ids)
            checkpoint = json.dumps({"offset": done, "last_id": page.ids[-1]}, ensure_ascii=False)
            await target.write(name, page, key, checkpoint)
            rate = (done - start) / max(time.monotonic() - began, 1e-9)
            total = max(total, done)
            yield Progress("writing", done, total, rate, (total - done) / rate if rate else 0.0, start)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
