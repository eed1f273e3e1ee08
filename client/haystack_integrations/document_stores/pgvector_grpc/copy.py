"""Copy the documents of any Haystack DocumentStore into a PgvectorGrpcDocumentStore.

The migration engine does the work (the same checkpoints, progress and verification as a Chroma
migration): the source is read by :class:`HaystackSource`, pages go through Ingest, one
transaction each with its checkpoint, ids kept. A re-run of a PgvectorDocumentStore's copy
resumes after the last committed page; other stores are copied whole again.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from haystack.document_stores.types import DocumentStore
from haystack_integrations.document_stores.pgvector_grpc.document_store import PgvectorGrpcDocumentStore
from pgvector_grpc_common.migration.engine import migrate
from pgvector_grpc_common.migration.events import Event, Progress, Report
from pgvector_grpc_common.migration.options import MigrationOptions
from pgvector_grpc_common.migration.protocols import Page
from pgvector_grpc_common.migration.sources.haystack import HaystackSource
from pgvector_grpc_common.migration.verify import verify
from pgvector_grpc_common.vocabulary import DocumentRecord, Index, Metric, Vector

from pgvector_grpc import Client, Document, NotFoundError
from pgvector_grpc.cli.client_target import client_document, stored_record

MAX_LISTED_MISMATCHES = 20


@dataclass(frozen=True)
class CopyProgress:
    """Documents committed so far, of ``total``, at ``rate`` documents per second."""

    copied: int
    total: int
    rate: float


@dataclass(frozen=True)
class CopyReport:
    """What a copy did and what its document-by-document verification found: ``extra_count``
    target documents the source does not hold (``extra_ids`` lists the first), and the
    ``deleted_count`` of them a mirror copy deleted."""

    source_count: int
    copied: int
    resumed_from: int
    target_count: int
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    mismatch_count: int = 0
    extra_ids: list[str] = field(default_factory=list)
    extra_count: int = 0
    deleted_count: int = 0

    @property
    def ok(self) -> bool:
        """Every source document is in the target, identical, and the target holds no other."""
        return self.mismatch_count == 0 and self.compared == self.source_count and self.extra_count == 0


def copy_documents(
    source: DocumentStore,
    target: PgvectorGrpcDocumentStore,
    *,
    filters: dict[str, Any] | None = None,
    batch_size: int = 500,
    restart: bool = False,
    verify: bool = True,
    mirror: bool = False,
    on_progress: Callable[[CopyProgress], None] | None = None,
) -> CopyReport:
    """Copy ``source`` (optionally only the documents matching ``filters``) into ``target``.

    Each page is one Ingest batch committed with its checkpoint; ids, content, metadata and
    embeddings are kept exactly. A document with a blob or sparse embedding stops the copy with a
    ValueError naming it. A target collection that does not exist yet is created without its
    vector index, which is built once the documents are in (several times faster than inserting
    into an index). ``verify`` re-reads the source and compares every document with the target,
    field by field, and lists target documents the source does not hold as extra. ``mirror``
    deletes those after the copy (with ``filters``: every target document that is not a matching
    source document), so that deletions in the source reach the target. Blocks; call it outside
    a running event loop."""
    client = target.connect(defer_index=True)
    options = MigrationOptions(
        target=target.collection,
        restart=restart,
        metric=target.metric,
        batch_size=batch_size,
        verification="every_document" if verify else "counts_only",
        mirror=mirror,
    )
    state = _CopyState(on_progress)
    with HaystackSource(source, filters, dimension=target.embedding_dimension) as reader:
        _drive(migrate(reader, reader.key, StoreTarget(client), options), state.take)
    return _copy_report(state.report, state.copied, state.resumed_from, verified=verify)


def verify_copy(
    source: DocumentStore,
    target: PgvectorGrpcDocumentStore,
    report: CopyReport,
    filters: dict[str, Any] | None = None,
    batch_size: int = 500,
) -> CopyReport:
    """``report`` with every source document compared with the target's, field by field."""
    options = MigrationOptions(batch_size=batch_size, verification="every_document")
    state = _CopyState()
    with HaystackSource(source, filters, dimension=target.embedding_dimension) as reader:
        _drive(verify(reader, StoreTarget(target.client), target.collection, target.metric, options), state.take)
    state.report.deleted_count = report.deleted_count
    return _copy_report(state.report, report.copied, report.resumed_from, verified=True)


def _copy_report(report: Report, copied: int, resumed_from: int, verified: bool) -> CopyReport:
    if not verified:
        return CopyReport(
            report.source_count, copied, resumed_from, report.target_count, deleted_count=report.deleted_count
        )
    missing = [f"{doc_id!r}: missing" for doc_id in report.missing_ids]
    return CopyReport(
        report.source_count,
        copied,
        resumed_from,
        report.target_count,
        compared=report.sampled,
        mismatches=[*missing, *report.mismatches][:MAX_LISTED_MISMATCHES],
        mismatch_count=report.missing_count + report.differing_count,
        extra_ids=report.extra_ids[:MAX_LISTED_MISMATCHES],
        extra_count=report.extra_count,
        deleted_count=report.deleted_count,
    )


class _CopyState:
    """What the engine's events say about a copy: how far it got and the final report."""

    def __init__(self, on_progress: Callable[[CopyProgress], None] | None = None) -> None:
        self.copied = self.resumed_from = 0
        self.report = Report()
        self._on_progress = on_progress

    def take(self, event: Event) -> None:
        if isinstance(event, Progress) and event.phase == "writing":
            self.copied, self.resumed_from = event.done, event.resumed_from
            if self._on_progress is not None and event.done > event.resumed_from:
                self._on_progress(CopyProgress(event.done, event.total, event.rate))
        elif isinstance(event, Report):
            self.report = event


def _drive(events: AsyncGenerator[Event, None], take: Callable[[Event], None]) -> None:
    """Run the engine on an event loop of this thread, handing each event to ``take`` outside the
    loop: whatever the caller's callback raises stops the copy there, after the page it saw."""

    async def following() -> Event:
        return await anext(events)

    with asyncio.Runner() as runner:
        try:
            while True:
                try:
                    event = runner.run(following())
                except StopAsyncIteration:
                    return
                take(event)
        finally:
            runner.run(events.aclose())


def _next_ids(documents: Iterator[Document], count: int) -> list[str]:
    return [doc.id for doc in itertools.islice(documents, count)]


class StoreTarget:
    """The engine's Target over a store's synchronous client (each call in a worker thread)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def describe(self, name: str) -> tuple[int, Metric] | None:
        try:
            collection = await asyncio.to_thread(self._client.get_collection, name)
        except NotFoundError:
            return None
        return collection.dimension, collection.metric

    async def create(self, name: str, dimension: int, metric: Metric, index: Index) -> None:
        await asyncio.to_thread(
            self._client.create_collection,
            name,
            dimension,
            metric=metric,
            index=index,
            if_not_exists=True,
            defer_index=True,
        )

    async def checkpoint(self, name: str, key: str) -> str | None:
        return await asyncio.to_thread(self._client.get_checkpoint, name, key)

    async def write(self, name: str, page: Page, key: str, checkpoint: str) -> None:
        documents = [client_document(record) for record in page.records]
        await asyncio.to_thread(
            self._client.ingest,
            name,
            documents,
            batch_size=len(documents),
            on_conflict="upsert",
            checkpoint=(key, checkpoint),
        )

    async def build_index(self, name: str) -> None:
        await asyncio.to_thread(self._client.build_index, name)

    async def count(self, name: str) -> int:
        return await asyncio.to_thread(self._client.count, name)

    async def ids(self, name: str, page_size: int) -> AsyncIterator[list[str]]:
        listing = self._client.list(name, page_size=page_size, include_content=False, include_metadata=False)
        while page := await asyncio.to_thread(_next_ids, listing, page_size):
            yield page

    async def delete(self, name: str, ids: Sequence[str]) -> int:
        return await asyncio.to_thread(self._client.delete, name, ids)

    async def fetch(self, name: str, ids: Sequence[str], fields: bool) -> dict[str, DocumentRecord]:
        docs = await asyncio.to_thread(self._client.get, name, ids, include_embedding=fields)
        return {d.id: stored_record(d) for d in docs}

    async def nearest(self, name: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        hits = await asyncio.to_thread(
            self._client.search, name, vector, top_k=k, exact=True, include_content=False, include_metadata=False
        )
        return [(hit.id, hit.distance) for hit in hits]
