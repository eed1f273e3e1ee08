"""Document use cases: streaming ingest with bounded read-ahead, search, reads, updates, deletes
and metadata aggregates."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pgvector_grpc_server.domain.errors import InvalidArgument, NotFound
from pgvector_grpc_server.domain.models import (
    Checkpoint,
    CollectionSpec,
    ConflictPolicy,
    DocumentOrder,
    DocumentRecord,
    FieldInfo,
    FieldRange,
    FieldValues,
    Filter,
    Hit,
    Include,
    IngestResult,
    SearchQuery,
    StoredDocument,
)
from pgvector_grpc_server.domain.validation import (
    check_documents,
    check_filter,
    check_ids,
    check_metadata_json,
    check_query,
)
from pgvector_grpc_server.services.collections import Collections, not_found
from pgvector_grpc_server.storage.documents import DocumentStore
from pgvector_grpc_server.storage.search import SearchStore

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Limits:
    """Server-wide request limits."""

    max_top_k: int = 1000
    max_batch_documents: int = 10_000
    read_ahead_batches: int = 2


@dataclass(frozen=True)
class IngestBatch:
    """One batch of an Ingest stream, as received (collection and policy may be empty after the first)."""

    collection: str
    policy: ConflictPolicy | None
    documents: list[DocumentRecord]
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class IngestAck:
    """A committed batch."""

    sequence: int
    result: IngestResult


@dataclass(frozen=True)
class _Prepared:
    sequence: int
    spec: CollectionSpec
    policy: ConflictPolicy
    documents: list[DocumentRecord]
    checkpoint: Checkpoint | None


_END = object()


class Documents:
    """Document use cases."""

    def __init__(
        self, collections: Collections, store: DocumentStore, search_store: SearchStore, limits: Limits
    ) -> None:
        self._collections = collections
        self._store = store
        self._search = search_store
        self.limits = limits

    async def _on_collection(self, name: str, action: Callable[[CollectionSpec], Awaitable[T]]) -> T:
        spec = await self._collections.spec(name)
        try:
            return await action(spec)
        except NotFound:
            self._collections.forget(name)
            raise not_found(name) from None

    # -- ingest -------------------------------------------------------------------------------

    async def ingest(self, batches: AsyncIterator[IngestBatch]) -> AsyncIterator[IngestAck]:
        """Commit each batch in its own transaction and yield its acknowledgement after COMMIT.

        A reader task validates up to ``read_ahead_batches`` batches ahead while the current one is
        written, so memory stays bounded however long the stream is."""
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=self.limits.read_ahead_batches)
        reader = asyncio.create_task(self._read_batches(batches, queue))
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                assert isinstance(item, _Prepared)
                yield IngestAck(item.sequence, await self._write(item))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read_batches(self, batches: AsyncIterator[IngestBatch], queue: asyncio.Queue[object]) -> None:
        try:
            collection: str | None = None
            policy: ConflictPolicy = "upsert"
            sequence = 0
            async for batch in batches:
                prefix = f"batches[{sequence}]."
                if collection is None:
                    collection, policy = batch.collection, batch.policy or "upsert"
                    if not collection:
                        raise InvalidArgument.of(prefix + "collection", "must name the target collection", "MISSING")
                elif batch.collection and batch.collection != collection:
                    raise InvalidArgument.of(prefix + "collection", "must not change within a stream", "BAD_STREAM")
                elif batch.policy and batch.policy != policy:
                    raise InvalidArgument.of(prefix + "on_conflict", "must not change within a stream", "BAD_STREAM")
                if len(batch.documents) > self.limits.max_batch_documents:
                    raise InvalidArgument.of(
                        prefix + "documents",
                        f"a batch holds at most {self.limits.max_batch_documents} documents, "
                        f"got {len(batch.documents)}",
                        "BATCH_TOO_LARGE",
                    )
                spec = await self._collections.spec(collection, prefix + "collection")
                try:
                    check_documents(batch.documents, spec.dimension, spec.metric, full_metadata=False)
                except InvalidArgument as exc:
                    raise exc.under(prefix) from None
                if batch.checkpoint is not None and not batch.checkpoint.key:
                    raise InvalidArgument.of(prefix + "checkpoint.key", "must not be empty", "MISSING")
                await queue.put(_Prepared(sequence, spec, policy, batch.documents, batch.checkpoint))
                sequence += 1
            await queue.put(_END)
        except Exception as exc:
            await queue.put(exc)

    async def _write(self, batch: _Prepared) -> IngestResult:
        try:
            return await self._on_collection(
                batch.spec.name,
                lambda spec: self._store.write_batch(spec, batch.documents, batch.policy, batch.checkpoint),
            )
        except InvalidArgument:
            # PostgreSQL rejected a value the quick checks let through: find and name it.
            try:
                check_documents(batch.documents, batch.spec.dimension, batch.spec.metric, full_metadata=True)
            except InvalidArgument as exc:
                raise exc.under(f"batches[{batch.sequence}].") from None
            raise

    async def write(
        self, collection: str, documents: list[DocumentRecord], policy: ConflictPolicy, checkpoint: Checkpoint | None
    ) -> IngestResult:
        """Validate and commit one batch with its checkpoint (a loader inside the server)."""
        spec = await self._collections.spec(collection)
        check_documents(documents, spec.dimension, spec.metric, full_metadata=False)
        return await self._write(_Prepared(0, spec, policy, documents, checkpoint))

    # -- search -------------------------------------------------------------------------------

    async def search(self, query: SearchQuery, field: str = "") -> list[Hit]:
        """Validate and run one query."""
        spec = await self._collections.spec(query.collection, field + "collection")
        check_query(query, spec.dimension, spec.metric, self.limits.max_top_k, field)
        return await self._on_collection(query.collection, lambda _: self._search.search(query))

    # -- reads and deletes --------------------------------------------------------------------

    async def get(self, collection: str, ids: Sequence[str], include: Include) -> list[StoredDocument]:
        """Documents by id, in the order asked."""
        self._check_id_list(ids)
        return await self._on_collection(collection, lambda spec: self._store.get(spec, ids, include))

    async def delete(
        self, collection: str, ids: Sequence[str] | None, filter: Filter | None, all_documents: bool
    ) -> int:
        """Delete by ids and/or filter; everything only when asked explicitly."""
        self._check_selection(ids, filter, all_documents)
        return await self._on_collection(collection, lambda spec: self._store.delete(spec, ids, filter))

    async def count(self, collection: str, filter: Filter | None) -> int:
        """The number of matching documents."""
        if filter is not None:
            check_filter(filter)
        return await self._on_collection(collection, lambda spec: self._store.count(spec, filter))

    async def list_page(
        self,
        collection: str,
        filter: Filter | None,
        page_size: int,
        page_token: str,
        include: Include,
        order: DocumentOrder = "id",
    ) -> tuple[list[StoredDocument], str]:
        """One page in id or insertion order and the token of the next ("" on the last page)."""
        size = _page_size(page_size)
        after = decode_page_token(page_token, order) if page_token else None
        if filter is not None:
            check_filter(filter)
        rows = await self._on_collection(
            collection, lambda spec: self._store.page(spec, filter, order, after, size + 1, include)
        )
        docs = [doc for doc, _ in rows[:size]]
        if len(rows) <= size:
            return docs, ""
        return docs, encode_page_token(rows[size - 1][1])

    async def update_metadata(
        self, collection: str, ids: Sequence[str] | None, filter: Filter | None, all_documents: bool, patch_json: str
    ) -> int:
        """Merge ``patch_json`` into the metadata of the selected documents; their number."""
        self._check_selection(ids, filter, all_documents)
        check_metadata_json(patch_json, "metadata_json")
        return await self._on_collection(
            collection, lambda spec: self._store.update_metadata(spec, ids, filter, patch_json)
        )

    async def describe_metadata(self, collection: str, filter: Filter | None) -> list[FieldInfo]:
        """The top-level metadata keys with document counts per value type."""
        if filter is not None:
            check_filter(filter)
        return await self._on_collection(collection, lambda spec: self._store.describe_metadata(spec, filter))

    async def field_values(
        self,
        collection: str,
        path: Sequence[str],
        filter: Filter | None,
        search_term: str,
        offset: int,
        page_size: int,
        count_only: bool,
    ) -> FieldValues:
        """A page of a field's distinct values and their total."""
        _check_path(path)
        if offset < 0:
            raise InvalidArgument.of("offset", f"must not be negative, got {offset}", "BAD_OFFSET")
        if filter is not None:
            check_filter(filter)
        limit = 0 if count_only else _page_size(page_size)
        return await self._on_collection(
            collection, lambda spec: self._store.field_values(spec, path, filter, search_term, offset, limit)
        )

    async def field_range(self, collection: str, path: Sequence[str], filter: Filter | None) -> FieldRange | None:
        """The smallest and largest value of a field, None when no document has one."""
        _check_path(path)
        if filter is not None:
            check_filter(filter)
        return await self._on_collection(collection, lambda spec: self._store.field_range(spec, path, filter))

    async def checkpoint(self, collection: str, key: str) -> str | None:
        """The checkpoint an Ingest stream saved under ``key``, if any."""
        if not key:
            raise InvalidArgument.of("key", "must not be empty", "MISSING")
        return await self._on_collection(collection, lambda spec: self._store.checkpoint(spec, key))

    def _check_selection(self, ids: Sequence[str] | None, filter: Filter | None, all_documents: bool) -> None:
        if ids is None and filter is None and not all_documents:
            raise InvalidArgument.of("ids", "give ids, a filter, or all_documents=true", "NOTHING_SELECTED")
        if ids is not None:
            self._check_id_list(ids)
        if filter is not None:
            check_filter(filter)

    def _check_id_list(self, ids: Sequence[str]) -> None:
        if len(ids) > self.limits.max_batch_documents:
            raise InvalidArgument.of(
                "ids", f"at most {self.limits.max_batch_documents} ids per request, got {len(ids)}", "TOO_MANY_IDS"
            )
        check_ids(ids)


def _page_size(page_size: int) -> int:
    if page_size < 0:
        raise InvalidArgument.of("page_size", f"must not be negative, got {page_size}", "BAD_PAGE_SIZE")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _check_path(path: Sequence[str]) -> None:
    if not path or any(not key for key in path):
        raise InvalidArgument.of("path", "must name a metadata field (non-empty keys)", "BAD_PATH")


# A token is the position of the last document of a page: its id, or its insertion number.
_TOKEN_PREFIX = {"id": b"v1:", "insertion": b"v1s:"}


def encode_page_token(position: str | int) -> str:
    """An opaque token for the page after ``position``."""
    if isinstance(position, int):
        return base64.urlsafe_b64encode(_TOKEN_PREFIX["insertion"] + str(position).encode()).decode()
    return base64.urlsafe_b64encode(_TOKEN_PREFIX["id"] + position.encode()).decode()


def decode_page_token(token: str, order: DocumentOrder = "id") -> str | int:
    """The position of the previous page's last document; INVALID_ARGUMENT if the token was not
    made by us for this order."""
    prefix = _TOKEN_PREFIX[order]
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        if raw.startswith(prefix):
            text = raw[len(prefix) :].decode()
            return int(text) if order == "insertion" else text
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise InvalidArgument.of(
        "page_token", f"is not a token returned by ListDocuments in {order} order", "BAD_PAGE_TOKEN"
    )
