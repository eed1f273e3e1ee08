"""Document use cases: streaming ingest with bounded read-ahead, search, reads, updates, deletes
and metadata aggregates."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pgvector_grpc_common.vocabulary import DocumentRecord

from pgvector_grpc_server.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from pgvector_grpc_server.domain.models import (
    Checkpoint,
    CollectionSpec,
    ConflictPolicy,
    DocumentOrder,
    FieldInfo,
    FieldRange,
    FieldValues,
    Filter,
    Include,
    IngestBatch,
    IngestResult,
    IngestTarget,
    SearchQuery,
    SearchResult,
    Selection,
)
from pgvector_grpc_server.domain.validation import (
    check_checkpoint_key,
    check_documents,
    check_ingest_batch,
    check_metadata_json,
    check_offset,
    check_path,
    check_query,
    check_selection,
    page_size_of,
)
from pgvector_grpc_server.services.collections import Collections, not_found
from pgvector_grpc_server.services.ingest_pipeline import Keys, Turns, write_in_order
from pgvector_grpc_server.services.tenancy import tenant_for
from pgvector_grpc_server.storage.documents import DocumentStore
from pgvector_grpc_server.storage.hybrid import TextSearchStore
from pgvector_grpc_server.storage.search import SearchStore

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """Server-wide request limits."""

    max_top_k: int = 1000
    max_batch_documents: int = 10_000
    read_ahead_batches: int = 2
    parallel_batches: int = 4


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
    order: list[int] | None = None  # the documents' insertion order, reserved in stream order


_END = object()


def _keys_of(batch: _Prepared) -> Keys:
    return Keys(frozenset(doc.id for doc in batch.documents), batch.checkpoint is not None)


@contextlib.contextmanager
def _in_batch(sequence: int) -> Iterator[None]:
    """Bad input in an Ingest batch is named with the batch's place in the stream, as in
    ``batches[3].documents[2].embedding``: this is the one place that numbers batches."""
    try:
        yield
    except InvalidArgument as exc:
        raise exc.under(f"batches[{sequence}].") from None


class Documents:
    """Document use cases."""

    def __init__(
        self,
        collections: Collections,
        store: DocumentStore,
        search_store: SearchStore,
        limits: Limits,
        text_search_store: TextSearchStore,
    ) -> None:
        self._collections = collections
        self._store = store
        self._search = search_store
        self._text_search = text_search_store
        self.limits = limits

    async def _on_collection(self, name: str, action: Callable[[CollectionSpec, str | None], Awaitable[T]]) -> T:
        """Run ``action`` with the collection's definition and the tenant the call acts as."""
        spec = await self._collections.spec(name)
        tenant = tenant_for(spec)
        try:
            return await action(spec, tenant)
        except NotFound:
            self._collections.forget(name)
            raise not_found(name) from None

    def _selection(
        self,
        ids: Sequence[str] | None = None,
        filter: Filter | None = None,
        all_documents: bool = False,
        *,
        explicit: bool = False,
    ) -> Selection:
        return check_selection(
            Selection(ids, filter, all_documents), self.limits.max_batch_documents, explicit=explicit
        )

    # -- ingest -------------------------------------------------------------------------------

    async def ingest(self, batches: AsyncIterator[IngestBatch]) -> AsyncIterator[IngestAck]:
        """Commit each batch in its own transaction and yield its acknowledgement after COMMIT.

        A reader task validates up to ``read_ahead_batches`` batches ahead and reserves their
        insertion order one after another, and up to ``parallel_batches`` are written at once on
        their own connections but committed in stream order (services/ingest_pipeline.py), so
        memory stays bounded however long the stream is, and List's insertion order is the
        stream's whichever batch finishes writing first.
        Bad input raised while reading a batch, including by ``batches`` itself, is named with the
        batch's number, after the batches before it were acknowledged."""
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=self.limits.read_ahead_batches)
        reader = asyncio.create_task(self._read_batches(batches, queue))
        try:
            async for ack in write_in_order(
                queue, _END, _keys_of, self._write_acknowledged, max(1, self.limits.parallel_batches)
            ):
                yield ack
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _write_acknowledged(self, batch: _Prepared, turns: Turns) -> IngestAck:
        return IngestAck(batch.sequence, await self._write(batch, turns))

    async def _read_batches(self, batches: AsyncIterator[IngestBatch], queue: asyncio.Queue[object]) -> None:
        try:
            target: IngestTarget | None = None
            sequence = 0
            while True:
                with _in_batch(sequence):
                    batch = await anext(batches, None)
                    if batch is None:
                        break
                    target = check_ingest_batch(batch, target, self.limits.max_batch_documents)
                    spec = await self._collections.spec(target.collection)
                    check_documents(
                        batch.documents, spec.dimension, spec.metric, full_metadata=False, storage=spec.index.storage
                    )
                order = await self._reserve_order(spec, len(batch.documents))
                await queue.put(_Prepared(sequence, spec, target.policy, batch.documents, batch.checkpoint, order))
                sequence += 1
            await queue.put(_END)
        except Exception as exc:
            await queue.put(exc)

    async def _reserve_order(self, spec: CollectionSpec, count: int) -> list[int]:
        return await self._on_collection(spec.name, lambda spec, _tenant: self._store.reserve_order(spec, count))

    async def _write(self, batch: _Prepared, turns: Turns | None = None) -> IngestResult:
        try:
            return await self._on_collection(
                batch.spec.name,
                lambda spec, tenant: self._store.write_batch(
                    spec,
                    batch.documents,
                    batch.policy,
                    batch.checkpoint,
                    tenant=tenant,
                    order=batch.order,
                    on_connected=None if turns is None else turns.connected,
                    before_commit=None if turns is None else turns.commit,
                ),
            )
        except InvalidArgument:
            # PostgreSQL rejected a value the quick checks let through: find and name it.
            with _in_batch(batch.sequence):
                spec = batch.spec
                check_documents(
                    batch.documents, spec.dimension, spec.metric, full_metadata=True, storage=spec.index.storage
                )
            raise

    async def write(
        self, collection: str, documents: list[DocumentRecord], policy: ConflictPolicy, checkpoint: Checkpoint | None
    ) -> IngestResult:
        """Validate and commit one batch with its checkpoint (a loader inside the server)."""
        spec = await self._collections.spec(collection)
        check_documents(documents, spec.dimension, spec.metric, full_metadata=False, storage=spec.index.storage)
        return await self._write(_Prepared(0, spec, policy, documents, checkpoint))

    # -- search -------------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchResult:
        """Validate and run one query (vector, keyword or hybrid)."""
        spec = await self._collections.spec(query.collection)
        mode = check_query(query, spec.dimension, spec.metric, self.limits.max_top_k, spec.index.storage)
        if mode != "vector" and spec.text_search is None:
            raise FailedPrecondition(
                f"query_text: collection {spec.name!r} has no full-text index (create it with text_search)",
                "TEXT_SEARCH_NOT_ENABLED",
                {"collection": spec.name, "field": "query_text"},
            )
        if mode == "vector":
            return await self._on_collection(
                query.collection, lambda spec, tenant: self._search.search(spec, query, tenant=tenant)
            )
        return await self._on_collection(
            query.collection, lambda spec, tenant: self._text_search.search(spec, query, mode, tenant=tenant)
        )

    # -- reads and deletes --------------------------------------------------------------------

    async def get(self, collection: str, ids: Sequence[str], include: Include) -> list[DocumentRecord]:
        """Documents by id, in the order asked."""
        self._selection(ids)
        return await self._on_collection(
            collection, lambda spec, tenant: self._store.get(spec, ids, include, tenant=tenant)
        )

    async def delete(
        self, collection: str, ids: Sequence[str] | None, filter: Filter | None, all_documents: bool
    ) -> int:
        """Delete by ids and/or filter; everything only when asked explicitly."""
        selection = self._selection(ids, filter, all_documents, explicit=True)
        return await self._on_collection(
            collection, lambda spec, tenant: self._store.delete(spec, selection, tenant=tenant)
        )

    async def count(self, collection: str, filter: Filter | None) -> int:
        """The number of matching documents."""
        selection = self._selection(filter=filter)
        return await self._on_collection(
            collection, lambda spec, tenant: self._store.count(spec, selection, tenant=tenant)
        )

    async def list_page(
        self,
        collection: str,
        filter: Filter | None,
        page_size: int,
        page_token: str,
        include: Include,
        order: DocumentOrder = "id",
    ) -> tuple[list[DocumentRecord], str]:
        """One page in id or insertion order and the token of the next ("" on the last page)."""
        size = page_size_of(page_size)
        after = decode_page_token(page_token, order) if page_token else None
        selection = self._selection(filter=filter)
        rows = await self._on_collection(
            collection,
            lambda spec, tenant: self._store.page(spec, selection, order, after, size + 1, include, tenant=tenant),
        )
        docs = [doc for doc, _ in rows[:size]]
        if len(rows) <= size:
            return docs, ""
        return docs, encode_page_token(rows[size - 1][1])

    async def update_metadata(
        self, collection: str, ids: Sequence[str] | None, filter: Filter | None, all_documents: bool, patch_json: str
    ) -> int:
        """Merge ``patch_json`` into the metadata of the selected documents; their number."""
        selection = self._selection(ids, filter, all_documents, explicit=True)
        check_metadata_json(patch_json, "metadata_json")
        return await self._on_collection(
            collection, lambda spec, tenant: self._store.update_metadata(spec, selection, patch_json, tenant=tenant)
        )

    async def describe_metadata(self, collection: str, filter: Filter | None) -> list[FieldInfo]:
        """The top-level metadata keys with document counts per value type."""
        selection = self._selection(filter=filter)
        return await self._on_collection(
            collection, lambda spec, tenant: self._store.describe_metadata(spec, selection, tenant=tenant)
        )

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
        check_path(path)
        check_offset(offset)
        selection = self._selection(filter=filter)
        limit = 0 if count_only else page_size_of(page_size)
        return await self._on_collection(
            collection,
            lambda spec, tenant: self._store.field_values(
                spec, selection, path, search_term, offset, limit, tenant=tenant
            ),
        )

    async def field_range(self, collection: str, path: Sequence[str], filter: Filter | None) -> FieldRange | None:
        """The smallest and largest value of a field, None when no document has one."""
        check_path(path)
        selection = self._selection(filter=filter)
        return await self._on_collection(
            collection, lambda spec, tenant: self._store.field_range(spec, selection, path, tenant=tenant)
        )

    async def checkpoint(self, collection: str, key: str) -> str | None:
        """The checkpoint an Ingest stream saved under ``key``, if any."""
        check_checkpoint_key(key)
        return await self._on_collection(
            collection, lambda spec, tenant: self._store.checkpoint(spec, key, tenant=tenant)
        )


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
