"""Ingest: documents batched into requests, and the acknowledgements."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

import numpy as np
from pgvector_grpc_common.metadata_json import metadata_json

from pgvector_grpc._convert.document import DocumentLike, document_to_pb
from pgvector_grpc.types import DocumentColumns, IngestAck, OnConflict
from pgvector_grpc.v1 import document_service_pb2

Documents = Iterable[DocumentLike] | DocumentColumns

_POLICIES = {
    "upsert": document_service_pb2.CONFLICT_POLICY_UPSERT,
    "skip": document_service_pb2.CONFLICT_POLICY_SKIP,
    "fail": document_service_pb2.CONFLICT_POLICY_FAIL,
}


def policy_pb(on_conflict: OnConflict) -> int:
    """The ConflictPolicy value."""
    if on_conflict not in _POLICIES:
        raise ValueError(f"on_conflict must be one of {sorted(_POLICIES)}, got {on_conflict!r}")
    return _POLICIES[on_conflict]


class _Batcher:
    """Collects documents into IngestRequests of ``batch_size``.

    With a checkpoint, one full request is held back so that the checkpoint can ride on the
    last request of the call."""

    def __init__(
        self, collection: str, batch_size: int, on_conflict: OnConflict, checkpoint: tuple[str, str] | None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._collection = collection
        self._policy = policy_pb(on_conflict)
        self._size = batch_size
        self._checkpoint = checkpoint
        self._held: document_service_pb2.IngestRequest | None = None
        self._request = self._new_request()

    def _new_request(self) -> document_service_pb2.IngestRequest:
        return document_service_pb2.IngestRequest(collection=self._collection, on_conflict=self._policy)  # type: ignore[arg-type]

    def add(self, doc: DocumentLike) -> document_service_pb2.IngestRequest | None:
        """A request ready to send once ``batch_size`` documents are in, else None."""
        document_to_pb(doc, self._request.documents.add())  # built in place: no per-document copy
        if len(self._request.documents) < self._size:
            return None
        full, self._request = self._request, self._new_request()
        if self._checkpoint is None:
            return full
        ready, self._held = self._held, full
        return ready

    def finish(self) -> list[document_service_pb2.IngestRequest]:
        """The requests still to send, the checkpoint set on the last one."""
        pending = [r for r in (self._held, self._request) if r is not None and r.documents]
        if pending and self._checkpoint is not None:
            pending[-1].checkpoint.key, pending[-1].checkpoint.value = self._checkpoint
        return pending


def ingest_requests(
    collection: str,
    documents: Documents,
    batch_size: int,
    on_conflict: OnConflict,
    checkpoint: tuple[str, str] | None = None,
) -> Iterator[document_service_pb2.IngestRequest]:
    """Lazily batch any iterable into IngestRequests (constant memory); columns into columnar ones."""
    if isinstance(documents, DocumentColumns):
        yield from column_requests(collection, documents, batch_size, on_conflict, checkpoint)
        return
    batcher = _Batcher(collection, batch_size, on_conflict, checkpoint)
    for doc in documents:
        if request := batcher.add(doc):
            yield request
    yield from batcher.finish()


async def ingest_requests_async(
    collection: str,
    documents: Documents | AsyncIterable[DocumentLike],
    batch_size: int,
    on_conflict: OnConflict,
    checkpoint: tuple[str, str] | None = None,
) -> AsyncIterator[document_service_pb2.IngestRequest]:
    """The asyncio twin of :func:`ingest_requests`, also for async iterables."""
    if not isinstance(documents, AsyncIterable):
        for each in ingest_requests(collection, documents, batch_size, on_conflict, checkpoint):
            yield each
        return
    batcher = _Batcher(collection, batch_size, on_conflict, checkpoint)
    async for doc in documents:
        if request := batcher.add(doc):
            yield request
    for each in batcher.finish():
        yield each


def column_requests(
    collection: str,
    columns: DocumentColumns,
    batch_size: int,
    on_conflict: OnConflict,
    checkpoint: tuple[str, str] | None = None,
) -> Iterator[document_service_pb2.IngestRequest]:
    """IngestRequests of ``batch_size`` rows each in columnar form, the checkpoint on the last."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    policy = policy_pb(on_conflict)
    n = len(columns)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        request = document_service_pb2.IngestRequest(collection=collection, on_conflict=policy)  # type: ignore[arg-type]
        _fill_columns(request.columns, columns, start, stop)
        if checkpoint is not None and stop == n:
            request.checkpoint.key, request.checkpoint.value = checkpoint
        yield request


def _fill_columns(pb: document_service_pb2.DocumentColumns, columns: DocumentColumns, start: int, stop: int) -> None:
    pb.ids.extend(columns.ids[start:stop])
    if columns.contents is not None:
        contents = columns.contents[start:stop]
        pb.contents.extend("" if c is None else c for c in contents)
        if any(c is None for c in contents):
            pb.content_missing.extend(c is None for c in contents)
    if columns.metadatas is not None:
        pb.metadata_json.extend("" if m is None else metadata_json(dict(m)) for m in columns.metadatas[start:stop])
    if columns.embeddings is not None:
        matrix = columns.embeddings[start:stop]
        pb.dimension = matrix.shape[1]
        single = matrix.astype("<f4", copy=False)
        if matrix.dtype == np.float64 and not np.array_equal(single, matrix):
            pb.embeddings_f64 = matrix.astype("<f8", copy=False).tobytes()  # float32 would round
        else:
            pb.embeddings = single.tobytes()


def ack_from_pb(pb: document_service_pb2.IngestResponse) -> IngestAck:
    """An IngestAck."""
    return IngestAck(pb.sequence, pb.inserted, pb.updated, pb.skipped)
